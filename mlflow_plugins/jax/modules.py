"""Flax NNX modules the plugin provides so their effect can be probed like any normalization."""

from __future__ import annotations

import jax
import jax.numpy as jnp
from flax import nnx


class L2Normalize(nnx.Module):
    """x / max(|x|, eps) along `axis`: the latent normalization of document 000 (bug #2).

    Args:
        axis: the axis normalized to unit L2 norm.
        eps: floor on the norm, avoids division by zero.
    """

    def __init__(self, axis: int = -1, eps: float = 1e-8) -> None:
        if isinstance(eps, bool) or not isinstance(eps, (int, float)) or not eps > 0:
            raise ValueError(f"eps={eps!r} is out of range; allowed: a number > 0")
        self.axis, self.eps = int(axis), float(eps)

    def __call__(self, x: jax.Array) -> jax.Array:
        norm = jnp.sqrt(jnp.sum(jnp.square(x), axis=self.axis, keepdims=True))
        return x / jnp.maximum(norm, self.eps)
