"""Direct classifier head: pool features over time, then one linear logit."""

from __future__ import annotations

import jax
import jax.numpy as jnp
from flax import nnx

_POOLS = {"mean": jnp.mean, "max": jnp.max}


class DirectHead(nnx.Module):
    """Features (B, S, F) -> pool over S -> Linear -> logit (B,).

    Args:
        features: F.
        pool: "mean" or "max" over time (max suits a transient at an unknown time).
    """

    def __init__(self, features: int, *, pool: str = "mean", rngs: nnx.Rngs) -> None:
        if pool not in _POOLS:
            raise ValueError(f"pool={pool!r} is not allowed; allowed: {', '.join(map(repr, _POOLS))}")
        self.pool = pool
        self.linear = nnx.Linear(features, 1, rngs=rngs)

    def __call__(self, features: jax.Array) -> jax.Array:
        return self.linear(_POOLS[self.pool](features, axis=1))[:, 0]
