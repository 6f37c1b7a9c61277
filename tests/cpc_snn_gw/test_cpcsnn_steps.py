"""Jitted functional steps: the train-step contract, determinism, learning on an easy task."""

from __future__ import annotations

import dataclasses

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
from flax import nnx

from _gw_synthetic import synthetic_strain
from jax_modules.cpc_snn_gw import (ModelConfig, build_model, make_eval_step, make_predict, make_train_step,
                                    predict_in_batches, split_model, variant_config)
from mlflow_plugins.jax.modules import L2Normalize

TINY = ModelConfig(kind="cpc", encoder_widths=(8, 16), encoder_strides=(4, 8), latent_dim=16, context_dim=16,
                   l2_normalize=True, infonce_weight=0.5, prediction_steps=2)


@pytest.fixture(scope="module")
def easy() -> tuple[np.ndarray, np.ndarray]:
    """Short windows (0.5 s) with loud chirps: learnable in a few dozen steps."""
    return synthetic_strain(16 * 30, seed=0, n_samples=1024, amplitude=2.0)


def _train(cfg: ModelConfig, data: tuple[np.ndarray, np.ndarray], steps: int, lr: float = 1e-3,
           seed: int = 0, train_step=None) -> list[dict[str, float]]:
    model = build_model(cfg, seed)
    graphdef, params, rest = split_model(model)
    tx = optax.adam(lr)
    opt_state = tx.init(params)
    train_step = train_step or make_train_step(graphdef, tx, cfg.infonce_weight)
    x, y = data
    history = []
    for i in range(steps):
        batch = slice(16 * i, 16 * (i + 1))
        params, opt_state, metrics, _ = train_step(params, rest, opt_state, x[batch], y[batch])
        history.append({k: float(v) for k, v in metrics.items()})
    return history


@pytest.mark.parametrize("name", ["cpc_fixed", "aresgw_baseline"])
def test_a_few_dozen_steps_reduce_the_loss(easy: tuple[np.ndarray, np.ndarray], name: str) -> None:
    history = _train(variant_config(name), easy, steps=30)
    first = np.mean([h["loss"] for h in history[:5]])
    last = np.mean([h["loss"] for h in history[-5:]])
    assert last < 0.6 * first, (first, last)
    assert np.mean([h["acc"] for h in history[-5:]]) > 0.75


def test_same_seed_same_losses(easy: tuple[np.ndarray, np.ndarray]) -> None:
    graphdef = split_model(build_model(TINY, 0))[0]
    step = make_train_step(graphdef, optax.adam(1e-3), TINY.infonce_weight)
    runs = [_train(TINY, easy, steps=3, seed=7, train_step=step) for _ in range(2)]
    assert runs[0] == runs[1]
    assert set(runs[0][0]) == {"loss", "bce", "acc", "infonce", "infonce_acc"}
    assert runs[0][0]["loss"] == pytest.approx(runs[0][0]["bce"] + 0.5 * runs[0][0]["infonce"], rel=1e-5)
    assert runs[0] != _train(TINY, easy, steps=3, seed=8, train_step=step)


class _SowingL2(L2Normalize):
    """A probe the way the plugin plants one: sows the norm of what enters the normalization."""

    def __call__(self, x: jax.Array) -> jax.Array:
        self.sow(nnx.Intermediate, "in_norm", jnp.linalg.norm(x))
        return super().__call__(x)


def test_step_returns_sowed_intermediates_and_works_with_a_wrapped_optimizer(easy) -> None:
    model = build_model(TINY, 0)
    model.encoder.l2 = _SowingL2()
    graphdef, params, rest = split_model(model)
    assert len(jax.tree_util.tree_leaves(rest)) == 0
    tx = optax.chain(optax.clip_by_global_norm(1.0), optax.adam(1e-3))
    opt_state = tx.init(params)
    step = make_train_step(graphdef, tx, TINY.infonce_weight)
    x, y = easy[0][:8], easy[1][:8]
    expected = make_eval_step(graphdef, TINY.infonce_weight)(params, rest, x, y)
    new_params, _, metrics, inter = step(params, rest, opt_state, x, y)
    sowed = nnx.to_pure_dict(inter)["encoder"]["l2"]["in_norm"]
    assert len(sowed) == 1 and float(sowed[0]) > 0
    assert float(metrics["loss"]) == pytest.approx(float(expected["loss"]), rel=1e-5)  # pre-update params
    changed = jax.tree_util.tree_map(lambda a, b: bool(jnp.any(a != b)), params, new_params)
    assert all(jax.tree_util.tree_leaves(changed))  # every parameter got a gradient and moved


def test_predict_gives_sigmoid_probabilities(easy: tuple[np.ndarray, np.ndarray]) -> None:
    model = build_model(TINY, 0)
    graphdef, params, rest = split_model(model)
    probs = make_predict(graphdef)(params, rest, easy[0][:8])
    assert probs.shape == (8,) and probs.dtype == jnp.float32
    logits = jax.jit(lambda x: model(x))(easy[0][:8])
    np.testing.assert_allclose(np.asarray(probs), np.asarray(jax.nn.sigmoid(logits)), rtol=1e-5)


def test_batched_prediction_matches_one_call_and_pads_the_tail(easy: tuple[np.ndarray, np.ndarray]) -> None:
    graphdef, params, rest = split_model(build_model(TINY, 0))
    predict = make_predict(graphdef)
    x = easy[0][:11]
    batched = predict_in_batches(predict, params, rest, x, batch=4)   # 4 + 4 + 3 (padded)
    assert batched.shape == (11,) and batched.dtype == np.float32
    np.testing.assert_allclose(batched, np.asarray(predict(params, rest, x)), rtol=1e-5, atol=1e-6)
    assert predict_in_batches(predict, params, rest, x[:0], batch=4).shape == (0,)


def test_infonce_weight_needs_a_cpc_model(easy: tuple[np.ndarray, np.ndarray]) -> None:
    cfg = dataclasses.replace(TINY, infonce_weight=0.0)
    graphdef, params, rest = split_model(build_model(cfg, 0))
    tx = optax.adam(1e-3)
    step = make_train_step(graphdef, tx, infonce_weight=1.0)
    with pytest.raises(ValueError, match="infonce_weight=1.0 needs a model built with infonce_weight > 0"):
        step(params, rest, tx.init(params), easy[0][:4], easy[1][:4])
    with pytest.raises(ValueError, match="infonce_weight=-0.1 is out of range"):
        make_train_step(graphdef, tx, infonce_weight=-0.1)
