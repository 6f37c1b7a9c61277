"""Deep Adaptive Input Normalization (DAIN, Passalis et al. 2019) for (B, T, C) series."""

from __future__ import annotations

import jax
import jax.numpy as jnp
from flax import nnx


class DAIN(nnx.Module):
    """Learned per-sample shift, scale and gate from each channel's summary statistics over time.

    alpha = W_a mean_t(x);  x1 = x - alpha
    beta  = W_b sqrt(mean_t(x1^2));  x2 = x1 / beta   (beta <= eps is replaced by 1)
    gamma = sigmoid(W_c mean_t(x2) + d);  out = x2 * gamma

    W_a and W_b start as the identity, so DAIN starts as per-sample standardization.

    Args:
        channels: C.
        eps: floor under which a scale is treated as zero.
    """

    def __init__(self, channels: int, *, eps: float = 1e-8, rngs: nnx.Rngs) -> None:
        identity = nnx.initializers.constant(jnp.eye(channels, dtype=jnp.float32))
        self.shift = nnx.Linear(channels, channels, use_bias=False, kernel_init=identity, rngs=rngs)
        self.scale = nnx.Linear(channels, channels, use_bias=False, kernel_init=identity, rngs=rngs)
        self.gate = nnx.Linear(channels, channels, rngs=rngs)
        self.eps = float(eps)

    def __call__(self, x: jax.Array) -> jax.Array:
        x = x - self.shift(jnp.mean(x, axis=1))[:, None, :]
        beta = self.scale(jnp.sqrt(jnp.mean(jnp.square(x), axis=1) + self.eps))
        x = x / jnp.where(beta <= self.eps, 1.0, beta)[:, None, :]
        return x * nnx.sigmoid(self.gate(jnp.mean(x, axis=1)))[:, None, :]
