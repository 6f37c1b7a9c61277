"""InfoNCE: log B for unrelated features, near zero for predictable ones; the predictor's layout."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx

from jax_modules.cpc_snn_gw import FuturePredictor, infonce_loss

B, S, D, K = 32, 8, 32, 3
jitted_infonce = jax.jit(infonce_loss)


def _chance_loss() -> float:
    return float(np.log(B))  # B - 1 negatives: the other sequences at the same time


def test_unrelated_features_score_about_log_b() -> None:
    predictions = jax.random.normal(jax.random.key(0), (K, B, S, D)) * 0.01
    latents = jax.random.normal(jax.random.key(1), (B, S, D))
    loss, acc = jitted_infonce(predictions, latents)
    assert float(loss) == pytest.approx(_chance_loss(), rel=0.01)
    assert float(acc) < 0.1


def test_predictable_future_scores_far_below_log_b() -> None:
    latents = jax.random.normal(jax.random.key(1), (B, S, D))
    # The prediction made at t for k steps ahead is z_{t+k} itself (the tail, never scored, is zeros).
    predictions = jnp.stack([jnp.pad(latents[:, k:], ((0, 0), (0, k), (0, 0))) for k in range(1, K + 1)])
    loss, acc = jitted_infonce(3.0 * predictions, latents)
    assert float(loss) < 0.05 * _chance_loss()
    assert float(acc) == 1.0


def test_shifted_targets_are_not_rewarded() -> None:
    """Predicting z_{t+k+1} instead of z_{t+k} must score like chance (the alignment is checked)."""
    latents = jax.random.normal(jax.random.key(1), (B, S, D))
    wrong = jnp.stack([jnp.pad(latents[:, k + 1:], ((0, 0), (0, k + 1), (0, 0))) for k in range(1, K + 1)])
    loss, acc = jitted_infonce(3.0 * wrong, latents)
    assert float(loss) > 0.8 * _chance_loss() and float(acc) < 0.1


def test_predictor_layout_and_gradient() -> None:
    predictor = FuturePredictor(8, D, K, rngs=nnx.Rngs(0))
    context = jax.random.normal(jax.random.key(2), (B, S, 8))
    predictions = predictor(context)
    assert predictions.shape == (K, B, S, D)
    kernel = predictor.linear.kernel[...]
    np.testing.assert_allclose(np.asarray(predictions[1, 0, 0]), np.asarray(context[0, 0] @ kernel[:, D:2 * D]),
                               rtol=1e-5, atol=1e-6)
    latents = jax.random.normal(jax.random.key(1), (B, S, D))
    graphdef, params = nnx.split(predictor)
    grads = jax.jit(jax.grad(lambda p: infonce_loss(nnx.merge(graphdef, p)(context), latents)[0]))(params)
    assert float(jnp.abs(grads["linear"]["kernel"][...]).max()) > 0


@pytest.mark.parametrize("pred_shape, latent_shape, message", [
    ((K, B, S, D), (B, S, D + 1), "latents has shape"),
    ((K, B, 3, D), (B, 3, D), "fewer steps ahead than latent steps"),
])
def test_bad_shapes_are_named(pred_shape: tuple, latent_shape: tuple, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        infonce_loss(jnp.zeros(pred_shape), jnp.zeros(latent_shape))
