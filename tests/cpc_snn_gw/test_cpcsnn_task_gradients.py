"""Per-task encoder gradients: they match a direct gradient, and only the parts a model has appear."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
from flax import nnx

from jax_modules.cpc_snn_gw import build_model, split_model, variant_config
from jax_modules.cpc_snn_gw.task_gradients import make_task_probe

X = np.random.default_rng(0).standard_normal((8, 2, 256)).astype(np.float32)
Y = (np.arange(8) % 2).astype(np.int32)


def _small(name: str):
    import dataclasses
    cfg = dataclasses.replace(variant_config(name), encoder_widths=(8, 16), encoder_strides=(4, 4),
                              context_dim=16, snn_hidden=(8,))
    return split_model(build_model(cfg, seed=0))


def test_bce_norm_is_the_encoder_gradient_of_the_classification_loss():
    graphdef, params, rest = _small("cpc_original")
    metrics = make_task_probe(graphdef)(params, rest, X, Y)

    def bce(p):
        logits = nnx.merge(graphdef, p, rest)(X)
        return optax.sigmoid_binary_cross_entropy(logits, Y.astype(jnp.float32)).mean()

    grads = jax.grad(bce)(params)
    direct = np.sqrt(sum(float(jnp.sum(leaf ** 2)) for leaf in jax.tree.leaves(grads["encoder"])))
    assert float(metrics["encoder_grad_bce"]) == pytest.approx(direct, rel=1e-4)
    assert {"encoder_grad_infonce", "encoder_grad_cosine", "spike_rate", "surrogate_active"} <= set(metrics)
    assert -1.0 <= float(metrics["encoder_grad_cosine"]) <= 1.0
    assert 0.0 <= float(metrics["surrogate_active"]) <= 1.0


def test_single_task_model_reports_only_the_classification_gradient():
    graphdef, params, rest = _small("cpc_fixed")
    metrics = make_task_probe(graphdef)(params, rest, X, Y)
    assert set(metrics) == {"encoder_grad_bce"} and float(metrics["encoder_grad_bce"]) > 0
