"""Locate the first module whose output went non-finite, by re-running the failing batch."""

from __future__ import annotations

import contextlib
from dataclasses import dataclass
from typing import Any, Callable, Iterator

import torch

from ..analysis import NonfiniteEvent


@dataclass(frozen=True)
class AutocastState:
    """Autocast as it was when the failing batch ran, so the re-run reproduces it."""

    device_type: str
    enabled: bool
    dtype: torch.dtype

    @classmethod
    def current(cls, device_type: str) -> "AutocastState":
        return cls(device_type, torch.is_autocast_enabled(device_type),
                   torch.get_autocast_dtype(device_type))

    def context(self) -> contextlib.AbstractContextManager:
        if not self.enabled:
            return contextlib.nullcontext()
        return torch.autocast(self.device_type, dtype=self.dtype)


def first_tensor_problem(value: Any) -> tuple[torch.Tensor, bool, bool] | None:
    """(tensor, has_nan, has_inf) for the first floating tensor in `value` that is non-finite."""
    for t in iter_float_tensors(value):
        if not bool(torch.isfinite(t).all()):
            return t, bool(torch.isnan(t).any()), bool(torch.isinf(t).any())
    return None


def iter_float_tensors(value: Any) -> Iterator[torch.Tensor]:
    """Floating-point (or complex) tensors in a module output: tensor, tuple, list or dict."""
    if isinstance(value, torch.Tensor):
        if value.is_floating_point() or value.is_complex():
            yield value
    elif isinstance(value, (tuple, list)):
        for v in value:
            yield from iter_float_tensors(v)
    elif isinstance(value, dict):
        for v in value.values():
            yield from iter_float_tensors(v)


def nonfinite_flag(value: Any) -> torch.Tensor | None:
    """One device bool (no sync): does any floating tensor in `value` hold NaN/Inf?"""
    flags = [~torch.isfinite(t).all() for t in iter_float_tensors(value)]
    if not flags:
        return None
    return flags[0] if len(flags) == 1 else torch.stack(flags).any()


def locate_nonfinite(root: torch.nn.Module, rerun: Callable[[], Any], step: int,
                     autocast: AutocastState | None = None) -> NonfiniteEvent | None:
    """Re-run a failing batch with forward hooks and name the first module whose output is NaN/Inf.

    Hooks fire as modules finish, innermost first, so the first hit is the module that produced
    the value. The re-run leaves no trace: no gradients, RNG state and buffers (e.g. BatchNorm
    running statistics) are restored.

    Args:
        root: the model.
        rerun: re-executes the failing forward (or training step).
        step: the step the failure was seen at.
        autocast: autocast to re-apply; None when `rerun` sets autocast up itself.
    """
    hits: list[NonfiniteEvent] = []

    def hook(module: torch.nn.Module, _inputs: Any, output: Any, name: str) -> None:
        if hits:
            return
        problem = first_tensor_problem(output)
        if problem is not None:
            tensor, nan, inf = problem
            hits.append(NonfiniteEvent(step, "activation", name or type(module).__name__,
                                       str(tensor.dtype), _autocast_on(tensor), nan, inf))

    handles = [m.register_forward_hook(lambda mod, i, o, n=name: hook(mod, i, o, n))
               for name, m in root.named_modules()]
    buffers = [(b, b.detach().clone()) for b in root.buffers()]
    devices = sorted({b.device.index for b, _ in buffers if b.device.type == "cuda"})
    try:
        with torch.random.fork_rng(devices=devices), torch.no_grad(), \
                (autocast.context() if autocast else contextlib.nullcontext()):
            rerun()
    except Exception:  # the re-run may fail on the very values it is chasing
        pass
    finally:
        for h in handles:
            h.remove()
        with torch.no_grad():
            for b, saved in buffers:
                b.copy_(saved)
    return hits[0] if hits else None


def _autocast_on(tensor: torch.Tensor) -> bool:
    return torch.is_autocast_enabled(tensor.device.type)
