"""Small Flax NNX models and the contract's functional train loop, for the JAX plugin tests.

Healthy models and planted bugs, as in tests/_models.py for torch. Compiled steps are cached by
(graph, optimizer configuration), so tests that train the same kind of model compile once.
"""

from __future__ import annotations

from typing import Any, Callable

import jax
import jax.numpy as jnp
import optax
from flax import nnx

from mlflow_plugins.jax import L2Normalize, monitored, probe_norms, watch_jax

IN, OUT = 16, 4


class Mlp(nnx.Module):
    """Linear -> LayerNorm -> GELU -> Linear -> GELU -> Linear: healthy."""

    def __init__(self, rngs: nnx.Rngs) -> None:
        self.encoder = nnx.Linear(IN, 32, rngs=rngs)
        self.norm = nnx.LayerNorm(32, rngs=rngs)
        self.hidden = nnx.Linear(32, 32, rngs=rngs)
        self.head = nnx.Linear(32, OUT, rngs=rngs)

    def __call__(self, x: jax.Array) -> jax.Array:
        h = nnx.gelu(self.norm(self.encoder(x)))
        return self.head(nnx.gelu(self.hidden(h)))


class ConvNet(nnx.Module):
    """Two 1-D convolutions, a per-sample LayerNorm between them, mean pool, head: healthy."""

    def __init__(self, rngs: nnx.Rngs) -> None:
        self.convs = nnx.List([nnx.Conv(1, 8, (3,), rngs=rngs), nnx.Conv(8, 8, (3,), rngs=rngs)])
        self.norm = nnx.LayerNorm(8, reduction_axes=(-2, -1), rngs=rngs)
        self.head = nnx.Linear(8, OUT, rngs=rngs)

    def __call__(self, x: jax.Array) -> jax.Array:  # x: (B, 16) read as 16 steps of 1 channel
        h = nnx.relu(self.norm(self.convs[0](x[:, :, None])))
        return self.head(nnx.relu(self.convs[1](h)).mean(axis=1))


HEALTHY: dict[str, Callable[[nnx.Rngs], nnx.Module]] = {"mlp": Mlp, "conv": ConvNet}


class StopGradBranch(nnx.Module):
    """Document 001's bug in JAX: a representation stage behind `stop_gradient`, optimized."""

    def __init__(self, rngs: nnx.Rngs) -> None:
        self.representation = nnx.Linear(IN, IN, rngs=rngs)
        self.readout = nnx.Linear(IN, OUT, rngs=rngs)

    def __call__(self, x: jax.Array) -> jax.Array:
        return self.readout(jax.lax.stop_gradient(self.representation(x)))


class TinyScale(nnx.Module):
    """The first layer's gradient is scaled by 1e-10: vanishing."""

    def __init__(self, rngs: nnx.Rngs) -> None:
        self.first = nnx.Linear(IN, IN, rngs=rngs)
        self.rest = nnx.Linear(IN, OUT, rngs=rngs)

    def __call__(self, x: jax.Array) -> jax.Array:
        return self.rest(jnp.tanh(self.first(x) * 1e-10 + x))


class LogBlock(nnx.Module):
    """`log` of a linear map's output: NaN wherever it is negative."""

    def __init__(self, rngs: nnx.Rngs) -> None:
        self.lin = nnx.Linear(IN, IN, rngs=rngs)

    def __call__(self, x: jax.Array) -> jax.Array:
        return jnp.log(self.lin(x))


class ExpBlock(nnx.Module):
    """`exp` of a large linear map's output: overflows float32 to Inf."""

    def __init__(self, rngs: nnx.Rngs) -> None:
        self.lin = nnx.Linear(IN, IN, rngs=rngs)

    def __call__(self, x: jax.Array) -> jax.Array:
        return jnp.exp(self.lin(x) * 1e3)


class Encoder(nnx.Module):
    def __init__(self, block: type[nnx.Module], rngs: nnx.Rngs) -> None:
        self.blocks = nnx.List([nnx.Linear(IN, IN, rngs=rngs), block(rngs)])

    def __call__(self, x: jax.Array) -> jax.Array:
        for b in self.blocks:
            x = b(x)
        return x


class NanInside(nnx.Module):
    """A non-finite activation produced in `encoder.blocks.1` (LogBlock or ExpBlock)."""

    def __init__(self, rngs: nnx.Rngs, block: type[nnx.Module] = LogBlock) -> None:
        self.encoder = Encoder(block, rngs)
        self.head = nnx.Linear(IN, OUT, rngs=rngs)

    def __call__(self, x: jax.Array) -> jax.Array:
        return self.head(self.encoder(x))


class SqrtAtZero(nnx.Module):
    """Finite forward, NaN gradient: d sqrt(u)/du at u = 0 (times 0)."""

    def __init__(self, rngs: nnx.Rngs) -> None:
        self.lin = nnx.Linear(IN, OUT, rngs=rngs)

    def __call__(self, x: jax.Array) -> jax.Array:
        return jnp.sqrt(nnx.relu(self.lin(x)) * 0.0) + self.lin(x)


class Scaled(nnx.Module):
    """A normalization fed inputs of large, varied magnitude: shrinks gradients ~1/scale."""

    def __init__(self, rngs: nnx.Rngs, norm: Callable[[nnx.Rngs], nnx.Module] | None = None,
                 scale: float = 300.0, residual: float = 0.0) -> None:
        self.encoder = nnx.Linear(IN, 32, rngs=rngs)
        self.encoder.kernel[...] = self.encoder.kernel[...] * scale
        self.norm = norm(rngs) if norm is not None else nnx.LayerNorm(32, rngs=rngs)
        self.head = nnx.Linear(32, OUT, rngs=rngs)
        self.residual = residual

    def __call__(self, x: jax.Array) -> jax.Array:
        h = self.encoder(x)
        return self.head(self.norm(h) + self.residual * h)


class NormAfterLargeInput(nnx.Module):
    """L2-normalizes features of large and varied magnitude (document 000's latent normalization)."""

    def __init__(self, rngs: nnx.Rngs) -> None:
        self.encoder = nnx.Linear(IN, 32, rngs=rngs)
        self.encoder.kernel[...] = self.encoder.kernel[...] * 500.0
        self.normalize = L2Normalize(axis=-1)
        self.head = nnx.Linear(32, OUT, rngs=rngs)

    def __call__(self, x: jax.Array) -> jax.Array:
        return self.head(self.normalize(self.encoder(x)))


def data(n: int = 64, seed: int = 0, spread: bool = True) -> tuple[jax.Array, jax.Array]:
    """Inputs and a learnable label rule (which of the first four features is largest).

    With `spread`, sample magnitudes range from 0.2x to 3x of a normal draw: information that
    a normalization erases. Without, every sample has the same magnitude, sqrt(16).
    """
    x = jax.random.normal(jax.random.key(seed), (n, IN))
    y = jnp.argmax(x[:, :OUT], axis=1)
    if spread:
        return x * jnp.linspace(0.2, 3.0, n)[:, None], y
    return x / jnp.linalg.norm(x, axis=1, keepdims=True) * IN ** 0.5, y


_STEPS: dict[tuple, Callable[..., Any]] = {}


def train_step(graphdef: Any, tx: optax.GradientTransformation, key: tuple,
               loss_scale: float = 1.0, donate: bool = False) -> Callable[..., Any]:
    """The contract's jitted functional step; cached by `key` (the optimizer's configuration)."""
    cache_key = (graphdef, key, loss_scale, donate)
    if cache_key not in _STEPS:
        def loss_fn(params: Any, rest: Any, x: jax.Array, y: jax.Array) -> Any:
            model = nnx.merge(graphdef, params, rest)
            loss = optax.softmax_cross_entropy_with_integer_labels(model(x), y).mean() * loss_scale
            intermediates = nnx.pop(model, nnx.Intermediate)
            return loss, ({"loss": loss}, intermediates)

        def step(params: Any, opt_state: Any, rest: Any, x: jax.Array, y: jax.Array) -> Any:
            (_, (metrics, inter)), grads = jax.value_and_grad(loss_fn, has_aux=True)(
                params, rest, x, y)
            updates, opt_state = tx.update(grads, opt_state, params)
            return optax.apply_updates(params, updates), opt_state, metrics, inter

        _STEPS[cache_key] = jax.jit(step, donate_argnums=(0, 1) if donate else ())
    return _STEPS[cache_key]


class Run:
    """What `train` leaves: the monitor, the final parameters, the optimizer state, the model parts."""

    def __init__(self, monitor: Any, params: Any, opt_state: Any, graphdef: Any, rest: Any) -> None:
        self.monitor, self.params, self.opt_state = monitor, params, opt_state
        self.graphdef, self.rest = graphdef, rest

    @property
    def findings(self) -> list:
        return self.monitor.findings

    def finite(self) -> bool:
        return all(bool(jnp.isfinite(p).all()) for p in jax.tree.leaves(self.params))


def train(model: nnx.Module, steps: int = 12, *, loss_scale: float = 1.0, lr: float = 0.05,
          probe: bool = True, donate: bool = False, locate: bool = True, spread: bool = True,
          monitor_kwargs: dict | None = None, state: dict | None = None) -> Run:
    """The contract's training loop under `watch_jax`, SGD on `data(spread=spread)`;
    log_every=1 unless given; `state` (a monitor's `state_dict()`) is restored first."""
    kwargs = {"log_every": 1, **(monitor_kwargs or {})}
    if probe:
        probe_norms(model)
    graphdef, params, rest = nnx.split(model, nnx.Param, ...)
    skip = kwargs.get("policy") == "skip_step"
    tx = monitored(optax.sgd(lr), log_every=kwargs["log_every"], skip_step=skip)
    step_fn = train_step(graphdef, tx, ("sgd", lr, kwargs["log_every"], skip), loss_scale, donate)
    opt_state = tx.init(params)
    x, y = data(spread=spread)
    with watch_jax(params, **kwargs) as monitor:
        if state is not None:
            monitor.load_state_dict(state)
        for step in range(steps):
            before = params
            params, opt_state, _, inter = step_fn(params, opt_state, rest, x, y)
            where = (lambda b=before: (nnx.merge(graphdef, b, rest), (x,))) if locate else None
            monitor.observe(step, opt_state, intermediates=inter, locate=where)
    return Run(monitor, params, opt_state, graphdef, rest)


def tap_norms(probed: nnx.Module, x: jax.Array, y: jax.Array) -> tuple[float, float]:
    """The gradients the taps of a probed module `norm` receive from the cross-entropy loss:
    |dL/d input| and |dL/d output| as the probes measured them."""
    graphdef, params, rest = nnx.split(probed, nnx.Param, ...)

    def loss(params: Any) -> jax.Array:
        model = nnx.merge(graphdef, params, rest)
        return optax.softmax_cross_entropy_with_integer_labels(model(x), y).mean()

    grads = jax.jit(jax.grad(loss))(params)
    return float(grads["norm"]["norm_probe_grad_in"][...]), float(grads["norm"]["norm_probe_grad_out"][...])


def codes(findings: list) -> set[str]:
    return {f.code for f in findings}


def where(findings: list, code: str) -> set[str]:
    return {f.where for f in findings if f.code == code}
