"""Normalization probes for Flax NNX: gradient taps and magnitude spread, inside the compiled step.

`probe_norms(model)` turns every normalization module of a model into a probed one, in place:
the module's class is swapped for a subclass whose `__call__` runs the original unchanged and
around it

- passes its input and its output through `grad_tap`, an identity whose backward pass returns
  the cotangent unchanged and, as the gradient of a scalar `NormTap` variable of the module
  (`norm_probe_grad_in`, `norm_probe_grad_out`), the L2 norm of that cotangent. `NormTap` is an
  `nnx.Param`, so the norms arrive in `grads` with the parameters, where `monitored` reads them
  into its state (NORM_GRAD_ATTENUATION: the ratio in/out);
- sows, as `nnx.Intermediate` `norm_probe_cv`, the coefficient of variation of the per-token
  (or per-sample) magnitudes of its input and of its output (NORM_ERASES_MAGNITUDE).

The taps' values are the probes' switch: at 1 the forward measures (its cost is four
reductions over the module's input and output), at 0 it sows zeros and the taps' gradients are
0. `monitored` sets them through their updates, to 1 only before its sampled updates (every
`log_every`-th), so off those steps a probe costs two scalar branches.

A class swap rather than a wrapper module keeps every parameter path (`encoder.norm.scale`,
not `encoder.norm.inner.scale`) and `isinstance` checks as they were; the outputs are exactly
those of the unprobed model. `unprobe_norms` swaps back and removes the taps.
"""

from __future__ import annotations

import warnings
from typing import Any, Callable, Iterable

import jax
import jax.numpy as jnp
from flax import nnx

from .modules import L2Normalize
from .paths import TAP_IN, TAP_NAMES, TAP_OUT

CV_NAME = "norm_probe_cv"  # the sown intermediate: [cv_in, cv_out]
_PER_SAMPLE = (nnx.BatchNorm, nnx.GroupNorm)  # magnitudes per sample, over all its axes
NORM_TYPES: tuple[type[nnx.Module], ...] = (nnx.LayerNorm, nnx.RMSNorm, L2Normalize) + _PER_SAMPLE


class NormTap(nnx.Param):
    """A scalar whose gradient is the norm of the cotangent passing a normalization's input or
    output. A `Param` so that it is split and differentiated with the parameters."""


@jax.custom_vjp
def grad_tap(x: jax.Array, tap: jax.Array) -> jax.Array:
    """Identity on `x`; in the backward pass, `tap`'s gradient is |dL/dx| (L2)."""
    return x


def _tap_fwd(x: jax.Array, tap: jax.Array) -> tuple[jax.Array, jax.Array]:
    return x, tap


def _tap_bwd(tap: jax.Array, g: jax.Array) -> tuple[jax.Array, jax.Array]:
    norm = jax.lax.cond(_armed(tap), lambda: jnp.sqrt(jnp.sum(_squared_magnitudes(g))),
                        lambda: jnp.zeros((), jnp.float32))
    return g, norm.astype(tap.dtype)


grad_tap.defvjp(_tap_fwd, _tap_bwd)


def magnitude_axes(module: nnx.Module, ndim: int) -> tuple[int, ...]:
    """The axes a module normalizes over: a token's (or sample's) magnitude spans them."""
    if isinstance(module, _PER_SAMPLE):
        return tuple(range(1, ndim))
    if isinstance(module, L2Normalize):
        return (module.axis % ndim,)
    axes = getattr(module, "reduction_axes", -1)
    axes = axes if isinstance(axes, (tuple, list)) else (axes,)
    return tuple(sorted(int(a) % ndim for a in axes))


def magnitude_cv(x: jax.Array, axes: tuple[int, ...]) -> jax.Array:
    """Coefficient of variation (std with ddof=1 over mean) of the magnitudes over all positions.
    A magnitude is the L2 norm over `axes`, of |z| when complex."""
    mags = jnp.sqrt(jnp.sum(_squared_magnitudes(x), axis=axes)).ravel()
    if mags.size < 2:
        return jnp.zeros((), jnp.float32)
    return jnp.std(mags, ddof=1) / jnp.maximum(jnp.mean(mags), 1e-12)


def probe_norms(model: nnx.Module, types: Iterable[type] = NORM_TYPES) -> list[str]:
    """Probes the normalization modules of `model` in place; returns their paths.

    Call it before `nnx.split` and before `tx.init` (the taps are parameters), and train with
    `monitored(...)`, which hides the taps from the optimizer and switches them. Probing twice
    is harmless. A module called several times in one forward keeps the magnitudes of its last
    call, and its taps sum the gradient norms of all calls.

    Args:
        model: the NNX model.
        types: module classes to probe; default LayerNorm, RMSNorm, L2Normalize, BatchNorm,
            GroupNorm. A custom normalization class can be added here.

    Raises:
        ValueError: `model` is not an `nnx.Module`, or `types` holds something else than
            `nnx.Module` subclasses.

    Example:
        >>> probed = probe_norms(model)  # e.g. ["encoder.norm", "head.l2"]
        >>> graphdef, params, rest = nnx.split(model, nnx.Param, ...)
    """
    if not isinstance(model, nnx.Module):
        raise ValueError(f"model={type(model).__name__} is not a flax.nnx.Module")
    types = tuple(types)
    bad = [t for t in types if not (isinstance(t, type) and issubclass(t, nnx.Module))]
    if not types or bad:
        raise ValueError(f"types={types!r} must be nnx.Module subclasses, e.g. {NORM_TYPES}")
    paths = []
    for path, module in nnx.iter_modules(model):
        if isinstance(module, types) or _is_probed(module):
            if not _is_probed(module):
                module.__class__ = _probed_class(type(module))
                for name in TAP_NAMES:  # armed: the first step is sampled
                    setattr(module, name, NormTap(jnp.ones((), jnp.float32)))
            paths.append(".".join(str(p) for p in path))
    return sorted(paths)


def unprobe_norms(model: nnx.Module) -> list[str]:
    """Undoes `probe_norms`: original classes back, taps removed; returns the paths."""
    paths = []
    for path, module in nnx.iter_modules(model):
        if _is_probed(module):
            module.__class__ = type(module).__bases__[0]
            for name in TAP_NAMES:
                if hasattr(module, name):
                    delattr(module, name)
            paths.append(".".join(str(p) for p in path))
    return sorted(paths)


_PROBED: dict[type, type] = {}


def _is_probed(module: nnx.Module) -> bool:
    return getattr(type(module), "_fixlab_probed", False)


def _probed_class(cls: type) -> type:
    """`cls` with `__call__` probed; one subclass per class, made once."""
    if cls not in _PROBED:
        _PROBED[cls] = type(f"Probed{cls.__name__}", (cls,), {
            "__call__": _probed_call(cls.__call__), "_fixlab_probed": True,
            "__module__": __name__, "__doc__": f"{cls.__name__}, probed by fixlab (probe_norms)."})
    return _PROBED[cls]


def _probed_call(original: Callable[..., Any]) -> Callable[..., Any]:
    def __call__(self: nnx.Module, x: Any, *args: Any, **kwargs: Any) -> Any:
        if not _probeable(x):
            return original(self, x, *args, **kwargs)
        tap_in = getattr(self, TAP_IN)[...]
        y = original(self, grad_tap(x, tap_in), *args, **kwargs)
        if not _probeable(y) or y.shape != x.shape:
            return y
        axes = magnitude_axes(self, x.ndim)
        # Stopped before the branch: no tangent enters it, so it saves no residuals.
        x_, y_ = jax.lax.stop_gradient(x), jax.lax.stop_gradient(y)
        cv = jax.lax.cond(_armed(tap_in),
                          lambda: jnp.stack([magnitude_cv(x_, axes), magnitude_cv(y_, axes)]),
                          lambda: jnp.zeros((2,), jnp.float32))
        with warnings.catch_warnings():  # sow outside nnx.capture: the nnx.pop contract
            warnings.filterwarnings("ignore", "Using 'Module.sow", DeprecationWarning)
            self.sow(nnx.Intermediate, CV_NAME, cv, reduce_fn=_keep_last)
        return grad_tap(y, getattr(self, TAP_OUT)[...])

    return __call__


def _armed(tap: jax.Array) -> jax.Array:
    return tap > 0.5


def _keep_last(_previous: tuple, value: jax.Array) -> tuple:
    # Not sow's default append: an intermediate nobody popped must not grow or go stale.
    return (value,)


def _probeable(x: Any) -> bool:
    return isinstance(x, jax.Array) and x.ndim >= 2 and jnp.issubdtype(x.dtype, jnp.inexact)


def _squared_magnitudes(x: jax.Array) -> jax.Array:
    """|x|^2 elementwise in float32, from the real and imaginary parts when complex
    (`astype(float32)` would drop the imaginary part)."""
    if jnp.iscomplexobj(x):
        return jnp.square(x.real.astype(jnp.float32)) + jnp.square(x.imag.astype(jnp.float32))
    return jnp.square(x.astype(jnp.float32))
