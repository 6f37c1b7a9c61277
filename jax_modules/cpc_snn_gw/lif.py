"""Leaky integrate-and-fire (LIF) layers over time and the SNN classifier built from them.

Units: the membrane decays by beta = exp(-dt / tau) per step, with dt (the time between
feature steps) and tau (the membrane time constant) both in seconds. For CPC latents dt is the
encoder's total stride / sample rate: 32 / 2048 Hz = 15.6 ms, so tau = 20 ms gives beta = 0.46.
"""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp
from flax import nnx

from .spike_bridge import spike


def membrane_decay(dt: float, tau: float) -> float:
    """Per-step membrane decay exp(-dt / tau); dt and tau in seconds."""
    for name, value in (("dt", dt), ("tau", tau)):
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 < value < math.inf:
            raise ValueError(f"{name}={value!r} is out of range; allowed: a finite number of seconds > 0")
    return math.exp(-dt / tau)


def lif_scan(currents: jax.Array, beta: float, threshold: float, slope: float) -> tuple[jax.Array, jax.Array]:
    """Run LIF neurons over time: v_t = beta v_{t-1} + I_t, spike s_t = H(v_t - threshold),
    then reset by subtraction v_t -= threshold s_t.

    The reset is taken out of the gradient (as in snnTorch's default), so gradients flow only
    through the surrogate of the spike itself.

    Args:
        currents: (B, S, H) input current per step.
    Returns:
        spikes (B, S, H) in {0, 1} and the membrane potentials (B, S, H) before reset.
    """

    def step(v: jax.Array, current: jax.Array) -> tuple[jax.Array, tuple[jax.Array, jax.Array]]:
        v = beta * v + current
        s = spike(v - threshold, slope)
        return v - jax.lax.stop_gradient(s) * threshold, (s, v)

    v0 = jnp.zeros(currents.shape[:1] + currents.shape[2:], currents.dtype)
    _, (spikes, membranes) = jax.lax.scan(step, v0, jnp.moveaxis(currents, 1, 0))
    return jnp.moveaxis(spikes, 0, 1), jnp.moveaxis(membranes, 0, 1)


def leaky_integrate(currents: jax.Array, beta: float) -> jax.Array:
    """Membrane of non-spiking leaky integrators, v_t = beta v_{t-1} + I_t, over axis 1 of (B, S, H)."""

    def step(v: jax.Array, current: jax.Array) -> tuple[jax.Array, jax.Array]:
        v = beta * v + current
        return v, v

    v0 = jnp.zeros(currents.shape[:1] + currents.shape[2:], currents.dtype)
    _, membranes = jax.lax.scan(step, v0, jnp.moveaxis(currents, 1, 0))
    return jnp.moveaxis(membranes, 0, 1)


class LIFClassifier(nnx.Module):
    """Spikes (B, S, F) -> LIF layers -> a leaky-integrator output neuron -> logit (B,).

    The logit is the output neuron's membrane potential averaged over time.

    Args:
        in_features: F.
        hidden: sizes of the LIF layers.
        dt: seconds per time step of the input.
        tau: membrane time constant in seconds (all layers).
        threshold: LIF firing threshold.
        slope: surrogate-gradient slope.
    """

    def __init__(self, in_features: int, hidden: tuple[int, ...], *, dt: float, tau: float,
                 threshold: float = 1.0, slope: float = 10.0, rngs: nnx.Rngs) -> None:
        self.beta = membrane_decay(dt, tau)
        self.threshold, self.slope = float(threshold), float(slope)
        sizes = (in_features, *hidden)
        self.layers = nnx.List([nnx.Linear(a, b, rngs=rngs) for a, b in zip(sizes[:-1], sizes[1:])])
        self.readout = nnx.Linear(sizes[-1], 1, rngs=rngs)

    def __call__(self, spikes: jax.Array) -> jax.Array:
        for layer in self.layers:
            spikes, _ = lif_scan(layer(spikes), self.beta, self.threshold, self.slope)
        membrane = leaky_integrate(self.readout(spikes), self.beta)  # (B, S, 1)
        return jnp.mean(membrane[..., 0], axis=1)
