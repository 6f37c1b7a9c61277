"""Locate the first NNX module whose output went non-finite, by re-running the failing batch.

NNX has no forward hooks. `nnx.capture(..., method_outputs=...)` sows every method's output,
but loses the order in which modules finished (which is what names the culprit) and skips
inherited `__call__`s, so the re-run instead wraps, for its duration only, the `__call__` of
every module class in the model and restores them in `finally`.
"""

from __future__ import annotations

import contextlib
from typing import Any, Callable, Iterator

import jax
import jax.numpy as jnp
from flax import nnx

from ..analysis import NonfiniteEvent

OnOutput = Callable[[str, nnx.Module, Any], None]


def first_array_problem(value: Any) -> tuple[jax.Array, bool, bool] | None:
    """(array, has_nan, has_inf) for the first floating array in a pytree that is non-finite."""
    for leaf in jax.tree.leaves(value):
        if not isinstance(leaf, jax.Array) or isinstance(leaf, jax.core.Tracer):
            continue
        if not (jnp.issubdtype(leaf.dtype, jnp.floating)
                or jnp.issubdtype(leaf.dtype, jnp.complexfloating)):
            continue
        if not bool(jnp.isfinite(leaf).all()):
            return leaf, bool(jnp.isnan(leaf).any()), bool(jnp.isinf(leaf).any())
    return None


def locate_nonfinite(model: nnx.Module, args: tuple, step: int) -> NonfiniteEvent | None:
    """Re-run `model(*args)` eagerly and name the first module whose output holds NaN/Inf.

    Modules report as they finish, innermost first, so the first hit is the module that
    produced the value. The re-run leaves no trace: the model's state (RNG counters, batch
    statistics) is restored and what it sowed is dropped.

    Args:
        model: the model as it was before the failing update.
        args: the failing batch's inputs to `model`.
        step: the step the failure was seen at.
    """
    hits: list[NonfiniteEvent] = []

    def on_output(path: str, module: nnx.Module, output: Any) -> None:
        if hits:
            return
        problem = first_array_problem(output)
        if problem is not None:
            array, nan, inf = problem
            hits.append(NonfiniteEvent(step, "activation", path or type(module).__name__,
                                       str(array.dtype), None, nan, inf))

    saved = jax.tree.map(lambda v: v, nnx.state(model))  # new Variables, same arrays
    try:
        with _output_hooks(model, on_output), jax.disable_jit():
            model(*args)
    except Exception:  # the re-run may fail on the very values it is chasing
        pass
    finally:
        nnx.pop(model, nnx.Intermediate)
        nnx.update(model, saved)
    return hits[0] if hits else None


@contextlib.contextmanager
def _output_hooks(model: nnx.Module, on_output: OnOutput) -> Iterator[None]:
    """Calls `on_output(path, module, output)` after each module of `model` returns."""
    paths = {id(m): ".".join(str(p) for p in path) for path, m in nnx.iter_modules(model)}
    # Every original first, so that a subclass's wrapper never calls its parent's wrapper.
    originals = {cls: call for cls in {type(m) for _, m in nnx.iter_modules(model)}
                 if (call := _own_call(cls)) is not None}
    patched: list[tuple[type, Any]] = []
    try:
        for cls, original in originals.items():
            previous = cls.__dict__.get("__call__")
            cls.__call__ = _hooked(original, paths, on_output)
            patched.append((cls, previous))
        yield
    finally:
        for cls, previous in patched:
            if previous is None:
                delattr(cls, "__call__")
            else:
                cls.__call__ = previous


def _own_call(cls: type) -> Any:
    """The `__call__` instances of `cls` run (not the metaclass's), or None."""
    for klass in cls.__mro__[:-1]:  # without object
        if "__call__" in klass.__dict__:
            return klass.__dict__["__call__"]
    return None


def _hooked(original: Callable[..., Any], paths: dict[int, str],
            on_output: OnOutput) -> Callable[..., Any]:
    def __call__(self: nnx.Module, *args: Any, **kwargs: Any) -> Any:
        output = original(self, *args, **kwargs)
        if id(self) in paths:
            on_output(paths[id(self)], self, output)
        return output

    return __call__
