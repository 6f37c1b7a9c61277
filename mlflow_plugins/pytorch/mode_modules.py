"""Which torch modules behave differently in training mode: dropout and its kin, running
statistics, spectral normalization; found also where `.eval()` never reaches them (plain
Python lists, tuples and dicts of modules)."""

from __future__ import annotations

from typing import Any

import torch
from torch import nn
from torch.nn.utils.parametrizations import _SpectralNorm
from torch.nn.utils.spectral_norm import SpectralNorm


# what to watch -----------------------------------------------------------------------------------

def all_modules(model: nn.Module) -> list[tuple[str, nn.Module]]:
    """Every module with its path: the registered ones, and those kept in plain Python lists,
    tuples or dicts (`blocks[0].drop`), which `.eval()` and `.train()` never reach."""
    found: list[tuple[str, nn.Module]] = []
    seen: set[int] = set()

    def add(prefix: str, root: nn.Module) -> None:
        for name, m in root.named_modules(prefix=prefix):
            if id(m) in seen:
                continue
            seen.add(id(m))
            found.append((name or type(m).__name__, m))
        for name, m in list(root.named_modules(prefix=prefix)):
            for attr, value in vars(m).items():
                if attr in ("_modules", "_parameters", "_buffers"):
                    continue  # the registered ones
                for key, item in _items(value):
                    if isinstance(item, nn.Module) and id(item) not in seen:
                        add(f"{name + '.' if name else ''}{attr}[{key}]", item)

    add("", model)
    return found


def _items(value: Any) -> list[tuple[Any, Any]]:
    if isinstance(value, (list, tuple)):
        return list(enumerate(value))
    if isinstance(value, dict):
        return [(repr(k), v) for k, v in value.items()]
    return []


def stochastic(m: nn.Module) -> bool:
    """Draws random numbers in training mode (dropout and its kin)."""
    if isinstance(m, nn.modules.dropout._DropoutNd):
        return m.p > 0
    if isinstance(m, nn.RReLU):
        return m.lower != m.upper
    if isinstance(m, nn.RNNBase):
        return m.dropout > 0 and m.num_layers > 1
    if isinstance(m, nn.MultiheadAttention):
        return m.dropout > 0
    return False


def mode_dependent(m: nn.Module) -> bool:
    """Computes something else in training mode: random, or updating state it then uses."""
    return stochastic(m) or bool(spectral_norms(m)) or any(
        running_stat(name, b) for name, b in m.named_buffers(recurse=False))


def running_stat(name: str, buffer: Any) -> bool:
    """A running statistic: batch norm's `running_mean` / `running_var`, or a module's own
    buffer named the same way (num_batches_tracked moves with them and is not needed)."""
    return name.startswith("running_") and isinstance(buffer, torch.Tensor) and buffer.is_floating_point()


def spectral_norms(m: nn.Module) -> list[tuple[torch.Tensor, torch.Tensor, torch.Tensor]]:
    """(u, W as a matrix, v) of each spectral normalization on `m`, either implementation."""
    found = []
    for hook in m._forward_pre_hooks.values():
        if isinstance(hook, SpectralNorm):
            weight = getattr(m, hook.name + "_orig")
            found.append((getattr(m, hook.name + "_u"), hook.reshape_weight_to_matrix(weight),
                          getattr(m, hook.name + "_v")))
    parametrizations = getattr(m, "parametrizations", None)
    if isinstance(parametrizations, nn.ModuleDict):
        for plist in parametrizations.values():
            first = plist[0] if len(plist) else None  # `original` is what the first one reads
            if isinstance(first, _SpectralNorm) and hasattr(first, "_u"):
                found.append((first._u, first._reshape_weight_to_matrix(plist.original), first._v))
    return found


def sigma_ratio(m: nn.Module) -> torch.Tensor:
    """The smallest ratio, over `m`'s spectral norms, of the estimate u^T W v (what the layer
    divides by) to the weight's spectral norm."""
    ratios = []
    for u, w, v in spectral_norms(m):
        dtype = torch.complex64 if w.is_complex() else torch.float32
        w = w.detach().to(dtype)
        sigma = torch.linalg.matrix_norm(w, ord=2).real
        estimate = torch.vdot(u.to(dtype), torch.mv(w, v.to(dtype))).real
        ratios.append(estimate / sigma.clamp_min(torch.finfo(torch.float32).tiny))
    return torch.stack(ratios).min() if ratios else torch.ones(())  # none (any more): nothing to do
