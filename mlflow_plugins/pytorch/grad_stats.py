"""Gradient statistics of a set of torch parameters in one fused device reduction."""

from __future__ import annotations

from collections import defaultdict

import numpy as np
import torch

from ..analysis import GradSnapshot


class GradStats:
    """Reads the gradients of named parameters without a host sync per parameter.

    `missing()` is free (a Python check of `.grad is None`); `norms()` is one `_foreach_norm`
    launch per device, left on the device; `snapshot()` adds the L1 pass and moves everything to
    the host in one copy, where a non-finite norm names its parameter without another look.

    Args:
        named_params: (name, parameter) pairs, e.g. those the optimizer holds.
    """

    def __init__(self, named_params: list[tuple[str, torch.nn.Parameter]]) -> None:
        self.names = tuple(n for n, _ in named_params)
        self.params = [p for _, p in named_params]
        self.numel = np.array([max(p.numel(), 1) for p in self.params], dtype=np.float64)

    def missing(self) -> np.ndarray:
        return np.array([p.grad is None for p in self.params], dtype=bool)

    def norms(self, ord: float = 2.0) -> torch.Tensor | None:
        """Per-parameter gradient norms as one float32 tensor (0 where missing), on a device."""
        by_device: dict[torch.device, list[int]] = defaultdict(list)
        for i, p in enumerate(self.params):
            if p.grad is not None:
                by_device[p.grad.device].append(i)
        if not by_device:
            return None
        if len(by_device) == 1 and len(next(iter(by_device.values()))) == len(self.params):
            return torch.stack(torch._foreach_norm([p.grad for p in self.params], ord)).float()
        device = next(iter(by_device))
        out = torch.zeros(len(self.params), dtype=torch.float32, device=device)
        for dev, idx in by_device.items():
            grads = [self.params[i].grad for i in idx]
            norms = torch.stack(torch._foreach_norm(grads, ord)).float()
            out[torch.tensor(idx, device=device)] = norms.to(device)
        return out

    def total_norm_ok(self, l2: torch.Tensor | None, limit: float) -> torch.Tensor | None:
        """A device bool: every gradient finite and the total norm at most `limit`."""
        if l2 is None:
            return None
        total = torch.linalg.vector_norm(l2)
        return torch.isfinite(total) & (total <= limit)

    def snapshot(self, step: int, l2: torch.Tensor | None = None, *,
                 mean_abs: bool = True) -> GradSnapshot:
        """This step's statistics, moved to the host in one copy.

        `mean_abs=False` skips the L1 pass (mean |grad| is then NaN): on CPU an L1 reduction
        costs ~3.5x an L2 one, as its kernel is not vectorized like the sum of squares.
        """
        missing = self.missing()
        l2 = self.norms(2.0) if l2 is None else l2
        if l2 is None:
            zeros = np.zeros(len(self.names))
            return GradSnapshot(step, self.names, zeros, zeros.copy(), missing, self.numel)
        if not mean_abs:
            host = l2.cpu().numpy().astype(np.float64)
            return GradSnapshot(step, self.names, host, np.full_like(host, np.nan), missing,
                                self.numel)
        l1 = self.norms(1.0)
        both = torch.stack([l2, l1.to(l2.device)]).cpu().numpy().astype(np.float64)
        return GradSnapshot(step, self.names, both[0], both[1] / self.numel, missing, self.numel)

    def drop_grads(self) -> None:
        """Skip an optimizer step: torch optimizers leave parameters without a gradient alone."""
        for p in self.params:
            p.grad = None
