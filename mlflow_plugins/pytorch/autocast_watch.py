"""Which matrix-multiplying modules autocast reached, on one forward per log interval."""

from __future__ import annotations

from typing import Any

import torch

from ..analysis import AutocastCoverage
from ..session import StepReport
from .locate import iter_float_tensors

# Modules whose work is a matrix multiplication: where autocast's lower precision pays.
MATMUL_MODULES: tuple[type, ...] = (
    torch.nn.Linear, torch.nn.Bilinear, torch.nn.modules.conv._ConvNd, torch.nn.RNNBase,
    torch.nn.MultiheadAttention)
_DEVICE_TYPES = ("cuda", "cpu", "xpu", "mps")


class AutocastWatch:
    """On one training forward per log interval, notes the dtype each matrix-multiplying module
    produced inside an autocast region, and the dtype the region asked for (forward hooks for
    that one forward; a dtype is metadata, so no sync). The region is the one the model's forward
    began in, else (autocast opened inside the forward, or a training step that calls submodules
    directly) the one open when the module ran.

    Args:
        model: the module being trained.
    """

    def __init__(self, model: torch.nn.Module) -> None:
        self.model = model
        self._handles: list[Any] = []
        self._seen: dict[str, tuple[str, str]] = {}
        self._step, self._device_type = 0, "cpu"
        self._region: str | None = None  # what autocast asked for when the model's forward began

    @property
    def armed(self) -> bool:
        return bool(self._handles)

    def arm(self, step: int, device_type: str) -> None:
        """Hooks the matrix-multiplying modules for the next forward (at a log step's start)."""
        self.disarm()
        self._step, self._device_type = step, device_type
        self._region = _requested(device_type)  # armed at the forward's start (plain PyTorch)
        self._handles.append(self.model.register_forward_pre_hook(self._enter))  # else (Lightning)
        for path, module in self.model.named_modules():
            if isinstance(module, MATMUL_MODULES):
                self._handles.append(module.register_forward_hook(self._note(path or type(module).__name__)))

    def collect(self) -> StepReport:
        """At that forward's end: what ran inside autocast, and the hooks removed."""
        seen, step = self._seen, self._step
        self.disarm()
        inside = [(m, d, r) for m, (d, r) in seen.items() if r]
        if not inside:
            return StepReport()
        modules, dtypes, requested = zip(*inside)
        return StepReport([AutocastCoverage(step, requested[0], tuple(modules), tuple(dtypes))])

    def disarm(self) -> None:
        for h in self._handles:
            h.remove()
        self._handles, self._seen, self._region = [], {}, None

    def _enter(self, module: torch.nn.Module, args: tuple) -> None:
        if self._region is None:
            self._region = _requested(self._device_type)

    def _note(self, path: str) -> Any:
        def hook(module: torch.nn.Module, args: tuple, output: Any) -> None:
            first = next(iter_float_tensors(output), None)
            if first is not None and path not in self._seen:
                # the region the forward began in: a module under autocast(enabled=False) inside
                # it still ran where the user asked for lower precision
                self._seen[path] = (_dtype_name(first.dtype),
                                    self._region or _requested(self._device_type) or "")
        return hook


def _requested(device_type: str) -> str | None:
    """The lower-precision dtype an open autocast region asks for: the model's device's, else
    any other device type's (a region opened for the wrong device), else None."""
    for kind in (device_type, *(d for d in _DEVICE_TYPES if d != device_type)):
        try:
            if torch.is_autocast_enabled(kind):
                return _dtype_name(torch.get_autocast_dtype(kind))
        except (RuntimeError, ValueError):  # a device type this build does not know
            continue
    return None


def _dtype_name(dtype: torch.dtype) -> str:
    return str(dtype).removeprefix("torch.")
