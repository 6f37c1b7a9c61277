"""Assembled models: shapes per variant, L2 normalization on/off, determinism, DAIN, bad input."""

from __future__ import annotations

import dataclasses

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx

from jax_modules.cpc_snn_gw import (DAIN, VARIANTS, CPCClassifier, ModelConfig, build_model, split_model,
                                    variant_config)
from mlflow_plugins.jax.modules import L2Normalize

X = jax.random.normal(jax.random.key(0), (2, 2, 2048))
SMALL = dict(encoder_widths=(8, 16), encoder_strides=(4, 8), latent_dim=16, context_dim=16)


@pytest.fixture(scope="module")
def abstract() -> dict[str, nnx.Module]:
    """The four variants as shapes only (nnx.eval_shape): full-size structure at no init cost."""
    return {name: nnx.eval_shape(lambda name=name: build_model(variant_config(name), seed=0)) for name in VARIANTS}


@pytest.mark.parametrize("name", list(VARIANTS))
def test_variant_output_shapes(abstract: dict[str, nnx.Module], name: str) -> None:
    cfg = variant_config(name)
    graphdef, params, rest = split_model(abstract[name])
    out = jax.eval_shape(lambda p, r, x: nnx.merge(graphdef, p, r).outputs(x), params, rest, X)
    assert out.logits.shape == (2,) and out.logits.dtype == jnp.float32
    if cfg.kind == "aresgw":
        assert out.latents is None and out.context is None and out.predictions is None
        return
    assert out.latents.shape == (2, 64, cfg.latent_dim)            # 2048 samples / stride 32
    assert out.context.shape == (2, 64, cfg.context_dim)
    if cfg.infonce_weight > 0:
        assert out.predictions.shape == (cfg.prediction_steps, 2, 64, cfg.latent_dim)
    else:
        assert out.predictions is None and abstract[name].predictor is None


@pytest.mark.parametrize("name, has_l2", [("cpc_original", True), ("cpc_simplified", True), ("cpc_fixed", False)])
def test_variants_hold_l2_normalize_exactly_when_asked(abstract: dict[str, nnx.Module], name: str,
                                                       has_l2: bool) -> None:
    found = [path for path, node in nnx.iter_graph(abstract[name]) if isinstance(node, L2Normalize)]
    assert found == ([("encoder", "l2")] if has_l2 else [])


def test_l2_normalize_normalizes_the_latents_when_on() -> None:
    model = build_model(ModelConfig(kind="cpc", l2_normalize=True, **SMALL), seed=0)
    z = np.asarray(jax.jit(model.encoder.encode)(jnp.swapaxes(X, 1, 2)))
    np.testing.assert_allclose(np.linalg.norm(z, axis=-1), 1.0, rtol=1e-5)


def test_latent_magnitudes_vary_when_off() -> None:
    model = build_model(ModelConfig(kind="cpc", l2_normalize=False, **SMALL), seed=0)
    assert model.encoder.l2 is None
    norms = np.linalg.norm(np.asarray(jax.jit(model.encoder.encode)(jnp.swapaxes(X, 1, 2))), axis=-1)
    assert np.std(norms) / np.mean(norms) > 0.05  # nothing normalized them


def test_same_seed_same_parameters_other_seed_differs() -> None:
    cfg = ModelConfig(kind="cpc_snn", snn_hidden=(16,), **SMALL)
    leaves = [jax.tree_util.tree_leaves(split_model(build_model(cfg, seed))[1]) for seed in (3, 3, 4)]
    assert all(np.array_equal(a, b) for a, b in zip(leaves[0], leaves[1]))
    assert not all(np.array_equal(a, b) for a, b in zip(leaves[0], leaves[2]))


def test_single_task_model_has_no_predictor_and_no_rest_state(abstract: dict[str, nnx.Module]) -> None:
    _, params, rest = split_model(abstract["cpc_fixed"])
    assert "predictor" not in params and len(jax.tree_util.tree_leaves(rest)) == 0
    assert "predictor" in split_model(abstract["cpc_original"])[1]


def test_dain_starts_as_per_sample_standardization() -> None:
    x = 3.0 + 5.0 * jax.random.normal(jax.random.key(1), (2, 256, 2))
    dain = DAIN(2, rngs=nnx.Rngs(0))
    out = np.asarray(dain(x))
    gate = np.asarray(nnx.sigmoid(dain.gate(jnp.zeros((2, 2)) + jnp.mean(out, axis=1))))
    standardized = out / gate[:, None, :]
    np.testing.assert_allclose(standardized.mean(axis=1), 0.0, atol=1e-5)
    np.testing.assert_allclose(standardized.std(axis=1), 1.0, rtol=1e-4)


def test_bad_input_shape_names_the_allowed_layout(abstract: dict[str, nnx.Module]) -> None:
    graphdef, params, rest = split_model(abstract["cpc_fixed"])
    with pytest.raises(ValueError, match=r"x has shape \(2, 2048, 2\); allowed: \(batch, 2, samples\)"):
        jax.eval_shape(lambda p, r, x: nnx.merge(graphdef, p, r)(x), params, rest, jnp.zeros((2, 2048, 2)))


def test_build_model_rejects_bad_arguments() -> None:
    with pytest.raises(ValueError, match="seed=-1 is not allowed; allowed: an integer >= 0"):
        build_model(ModelConfig(), seed=-1)
    with pytest.raises(ValueError, match="cfg is a dict; allowed: a ModelConfig"):
        build_model({"kind": "cpc"}, seed=0)
    with pytest.raises(ValueError, match="cfg.kind='aresgw' is not allowed here"):
        CPCClassifier(dataclasses.replace(ModelConfig(), kind="aresgw"), rngs=nnx.Rngs(0))
