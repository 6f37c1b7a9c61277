"""Repeating one forward without a trace: the user's RNG streams forked, module state saved and
restored, inputs cloned; and the difference of two passes, reduced on the device, copied once."""

from __future__ import annotations

import contextlib
from typing import Any, Iterator

import torch
from torch import nn


_MODULE_INTERNALS = frozenset(vars(nn.Module()))  # parameters, buffers, submodules, hooks


def saved_attributes(modules: list[nn.Module]) -> list[tuple[nn.Module, str, Any, Any]]:
    """Each module's own Python attributes, with a shallow copy of each list and dict."""
    saved = []
    for m in modules:
        for key, value in vars(m).items():
            if key not in _MODULE_INTERNALS:
                copy = list(value) if type(value) is list else dict(value) if type(value) is dict else None
                saved.append((m, key, value, copy))
    return saved


def restore_attributes(saved: list[tuple[nn.Module, str, Any, Any]]) -> None:
    """Rebinds each attribute to what it was, and refills each list and dict in place."""
    for m, key, value, copy in saved:
        if type(value) is list:
            value[:] = copy
        elif type(value) is dict:
            value.clear()
            value.update(copy)
        m.__dict__[key] = value


def forward_may_repeat(m: nn.Module) -> bool:
    """A child whose forward can be repeated without side effects: it has parameters, and is not
    a metric (torchmetrics' forward updates its state)."""
    if all(hasattr(m, a) for a in ("update", "compute", "reset")):
        return False
    return next(m.parameters(), None) is not None


def _device_types(model: nn.Module) -> list[str]:
    """The accelerator kinds the model is on whose generators torch can fork (cuda, xpu, mps)."""
    kinds = {t.device.type for t in (*model.parameters(), *model.buffers())} - {"cpu", "meta"}
    return sorted(k for k in kinds if hasattr(getattr(torch, k, None), "device_count"))


@contextlib.contextmanager
def forked_rng(model: nn.Module) -> Iterator[None]:
    """The CPU generator and every generator of the model's accelerators, restored afterwards."""
    with contextlib.ExitStack() as stack:
        stack.enter_context(torch.random.fork_rng(devices=[]))
        for kind in _device_types(model):
            count = getattr(torch, kind).device_count()
            stack.enter_context(torch.random.fork_rng(devices=list(range(count)), device_type=kind))
        yield


def seed_forked(seed: int, model: nn.Module) -> None:
    """Seeds the generators `forked_rng` saved, and only those (a lazy CUDA seed would outlive it)."""
    torch.default_generator.manual_seed(seed)
    for kind in _device_types(model):
        module = getattr(torch, kind)
        getattr(module, "manual_seed_all", module.manual_seed)(seed)


def clone_inputs(tree: Any) -> Any:
    """The inputs, tensors cloned: a forward that changes its inputs in place changes a copy."""
    if isinstance(tree, torch.Tensor):
        return tree.clone()
    if isinstance(tree, tuple) and hasattr(tree, "_fields"):
        return type(tree)(*(clone_inputs(t) for t in tree))
    if isinstance(tree, (list, tuple)):
        return type(tree)(clone_inputs(t) for t in tree)
    if isinstance(tree, dict):
        return {k: clone_inputs(v) for k, v in tree.items()}
    return tree


def output_tensors(tree: Any) -> list[torch.Tensor]:
    """The tensors of an output (a tensor, or tuples, lists and dicts of them), in order."""
    if isinstance(tree, torch.Tensor):
        return [tree]
    if isinstance(tree, (list, tuple)):
        return [t for item in tree for t in output_tensors(item)]
    if isinstance(tree, dict):
        return [t for item in tree.values() for t in output_tensors(item)]
    return []


def max_difference(first: list[torch.Tensor], second: list[torch.Tensor]) -> tuple[float, float] | None:
    """max |a - b| over the outputs, and the largest such difference relative to max |a| of its
    output; equal non-finite values are equal, a NaN against a number is an infinite difference."""
    rows = []
    for a, b in zip(first, second):
        if a.shape != b.shape or a.numel() == 0:
            continue
        if not (a.is_floating_point() or a.is_complex()):
            a, b = a.float(), b.float()
        same = (a == b) | (torch.isnan(a) & torch.isnan(b))
        diff = torch.where(same, 0.0, (a - b).abs().float().nan_to_num(nan=float("inf")))
        scale = torch.where(torch.isfinite(a), a.abs().float(), 0.0)
        rows.append(torch.stack([diff.max(), scale.max()]))
    if not rows:
        return None
    values = to_host(rows)
    max_abs = max(d for d, _ in values)
    rel = max(d / s if s > 0 else (float("inf") if d > 0 else 0.0) for d, s in values)
    return float(max_abs), float(rel)


def to_host(tensors: list[torch.Tensor]) -> list[Any]:
    """The values of same-shape tensors, moved to the host in one copy."""
    if not tensors:
        return []
    device = tensors[0].device
    return torch.stack([t.detach().to(device, torch.float32) for t in tensors]).cpu().tolist()
