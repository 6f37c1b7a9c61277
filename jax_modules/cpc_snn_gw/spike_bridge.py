"""Spikes with a surrogate gradient, and the spike bridge that turns CPC features into spikes."""

from __future__ import annotations

from functools import partial

import jax
import jax.numpy as jnp
from flax import nnx


@partial(jax.custom_vjp, nondiff_argnums=(1,))
def spike(v: jax.Array, slope: float) -> jax.Array:
    """Heaviside step H(v) (exactly 0 or 1) whose gradient is the fast-sigmoid surrogate.

    The true derivative of a step is zero almost everywhere; the backward pass instead uses
    d/dv ~ 1 / (1 + slope |v|)^2 (SuperSpike, Zenke & Ganguli 2018), largest at v = 0.
    """
    return (v > 0).astype(v.dtype)


def _spike_fwd(v: jax.Array, slope: float) -> tuple[jax.Array, jax.Array]:
    return spike(v, slope), v


def _spike_bwd(slope: float, v: jax.Array, g: jax.Array) -> tuple[jax.Array]:
    return (g / jnp.square(1.0 + slope * jnp.abs(v)),)


spike.defvjp(_spike_fwd, _spike_bwd)


class SpikeBridge(nnx.Module):
    """Binary spikes H(x - threshold) from features (..., features), one threshold per feature.

    Args:
        features: size of the last axis.
        threshold: initial threshold.
        learnable: train the threshold (an `nnx.Param`) or keep it fixed.
        slope: surrogate-gradient slope of `spike`.
    """

    def __init__(self, features: int, *, threshold: float = 0.0, learnable: bool = True,
                 slope: float = 10.0) -> None:
        if not slope > 0:
            raise ValueError(f"slope={slope!r} is out of range; allowed: a number > 0")
        # A fixed threshold is a static float, so it adds nothing to the model's state.
        self.threshold = nnx.Param(jnp.full((features,), threshold, jnp.float32)) if learnable \
            else float(threshold)
        self.slope = float(slope)

    def __call__(self, x: jax.Array) -> jax.Array:
        threshold = self.threshold[...] if isinstance(self.threshold, nnx.Param) else self.threshold
        return spike(x - threshold, self.slope)
