"""Probes of normalization layers: gradient ratio and magnitude spread, on sampled steps only."""

from __future__ import annotations

from typing import Any, Iterable

import torch

from ..analysis import NormProbe
from .modules import L2Normalize

_BATCH_NORMS = (torch.nn.modules.batchnorm._BatchNorm, torch.nn.GroupNorm,
                torch.nn.InstanceNorm1d, torch.nn.InstanceNorm2d, torch.nn.InstanceNorm3d)
_TOKEN_NORMS = (torch.nn.LayerNorm, torch.nn.RMSNorm)
NORM_TYPES = _BATCH_NORMS + _TOKEN_NORMS + (L2Normalize,)


def find_norm_modules(model: torch.nn.Module, extra: Iterable[str] = ()) -> dict[str, torch.nn.Module]:
    """Normalization modules of `model`, plus modules named in `extra` (path or class name).

    Raises:
        ValueError: a name in `extra` matches no module; the message lists what exists.
    """
    modules = dict(model.named_modules())
    found = {n: m for n, m in modules.items() if isinstance(m, NORM_TYPES)}
    for wanted in extra:
        hits = {n: m for n, m in modules.items() if n == wanted or type(m).__name__ == wanted}
        if not hits:
            names = sorted(n for n in modules if n)[:40]
            raise ValueError(f"norm_modules entry {wanted!r} matches no module path or class name; "
                             f"modules: {names}")
        found.update(hits)
    return found


def magnitude_dims(module: torch.nn.Module, ndim: int) -> tuple[int, ...]:
    """The dimensions a module normalizes over: a token's or a sample's magnitude spans them."""
    if isinstance(module, _TOKEN_NORMS):
        shape = module.normalized_shape
        k = len(shape) if isinstance(shape, tuple) else 1
        return tuple(range(ndim - k, ndim))
    if isinstance(module, _BATCH_NORMS):
        return tuple(range(1, ndim))
    if isinstance(module, L2Normalize):
        return (module.dim % ndim,)
    return (ndim - 1,)


def magnitude_cv(x: torch.Tensor, dims: tuple[int, ...]) -> torch.Tensor:
    """Coefficient of variation (std with ddof=1 over mean) of the magnitudes over all
    positions, as a device scalar. A magnitude is the L2 norm over `dims`, of |z| when complex."""
    mags = torch.linalg.vector_norm(_float32(x.detach()), dim=dims).flatten()
    if mags.numel() < 2:
        return torch.zeros((), device=x.device)
    return mags.std() / mags.mean().clamp_min(1e-12)


class NormProbes:
    """Arms forward hooks on normalization modules for one step, then reads them once.

    `arm()` before the forward of a sampled step; `collect(step)` after its backward. Values stay
    on the device until `collect`, which moves them in one copy and removes every hook.
    """

    def __init__(self, modules: dict[str, torch.nn.Module]) -> None:
        self.modules = modules
        self._handles: list[Any] = []
        self._values: dict[str, dict[str, torch.Tensor]] = {}

    @property
    def armed(self) -> bool:
        return bool(self._handles)

    def arm(self) -> None:
        self.disarm()
        for name, module in self.modules.items():
            self._handles.append(module.register_forward_pre_hook(
                lambda m, args, n=name: self._on_input(n, args)))
            self._handles.append(module.register_forward_hook(
                lambda m, i, o, n=name: self._on_output(n, m, i, o)))

    def disarm(self) -> None:
        for h in self._handles:
            h.remove()
        self._handles, self._values = [], {}

    def collect(self, step: int) -> list[NormProbe]:
        values = {n: v for n, v in self._values.items() if "cv_in" in v}
        self.disarm()
        if not values:
            return []
        keys = ("cv_in", "cv_out", "grad_in", "grad_out")
        device = next(iter(values.values()))["cv_in"].device
        nan = torch.tensor(float("nan"), device=device)
        # Stacked on the device, then one copy to the host: no sync per module or per value.
        table = torch.stack([torch.stack([v.get(k, nan).float().to(device) for k in keys])
                             for v in values.values()]).cpu().numpy()
        probes = []
        for name, (cv_in, cv_out, g_in, g_out) in zip(values, table):
            ratio = float(g_in / g_out) if g_out > 0 and g_in == g_in else None
            probes.append(NormProbe(step, name, ratio, float(cv_in), float(cv_out)))
        return probes

    def _on_input(self, name: str, args: tuple) -> tuple | None:
        # A fresh alias of the input sees only the gradient that flows back through this module,
        # not what a residual branch sharing the same tensor adds.
        if name in self._values or not args or not _probeable(args[0]):
            return None  # a module called twice in one step is probed on its first call
        x = args[0].view_as(args[0])
        v = self._values[name] = {}
        if x.requires_grad:
            x.register_hook(
                lambda g: v.__setitem__("grad_in", torch.linalg.vector_norm(_float32(g))))
        return (x, *args[1:])

    def _on_output(self, name: str, module: torch.nn.Module, inputs: Any, output: Any) -> None:
        v = self._values.get(name)
        if v is None or "cv_in" in v or not isinstance(output, torch.Tensor):
            return
        x = inputs[0]
        dims = magnitude_dims(module, x.ndim)
        v["cv_in"], v["cv_out"] = magnitude_cv(x, dims), magnitude_cv(output, dims)
        if output.requires_grad:
            output.register_hook(
                lambda g: v.__setitem__("grad_out", torch.linalg.vector_norm(_float32(g))))


def _probeable(x: Any) -> bool:
    return isinstance(x, torch.Tensor) and x.ndim >= 2 and (x.is_floating_point() or x.is_complex())


def _float32(x: torch.Tensor) -> torch.Tensor:
    """`x` in float32, or complex64 when complex: `.float()` would drop the imaginary part."""
    return x.to(torch.complex64 if x.is_complex() else torch.float32)
