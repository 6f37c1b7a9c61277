"""Whether gradients are cleared between optimizer steps (`zero_grad` forgotten)."""

from __future__ import annotations

from typing import Any, Callable

import numpy as np
import torch

from ..analysis import GradReset
from ..session import StepReport
from .grad_stats import _max_abs, grad_values


class ResetWatch:
    """Looks at each gradient just before the first backward after a sampled step adds to it.

    `arm()` (after a sampled optimizer step) puts two hooks on each parameter: a tensor hook,
    which autograd runs before it accumulates into `.grad` and which notes `.grad`'s max |g| then
    (a device scalar, no sync; None when the gradient was set to None), and a post-accumulate
    hook, which keeps that note for the first accumulation only (so `torch.autograd.grad`, which
    does not accumulate, is not mistaken for a backward). `collect()` (before the next optimizer
    step) removes the hooks and moves the notes to the host in one copy. Nothing runs on other
    steps.

    Args:
        named_params: (name, parameter) pairs, e.g. those the optimizer holds.
        group: names this parameter set in the rules' state.
    """

    def __init__(self, named_params: list[tuple[str, torch.nn.Parameter]], group: str = "") -> None:
        self.names = tuple(n for n, _ in named_params)
        self.params = [p for _, p in named_params]
        self.group = group
        self._handles: list[Any] = []
        self._pending: dict[int, torch.Tensor | None] = {}
        self._first: dict[int, torch.Tensor | None] = {}
        self._armed_at: int | None = None

    def arm(self, step: int) -> None:
        """Watch the first backward after optimizer step `step`."""
        self.disarm()
        self._armed_at = step
        for i, p in enumerate(self.params):
            if p.requires_grad and p.numel() > 0:
                self._handles += [p.register_hook(self._before_accumulate(i, p)),
                                  p.register_post_accumulate_grad_hook(self._accumulated(i))]

    def collect(self, step: int) -> StepReport:
        """What the backward passes since `arm` found (called before the next optimizer step)."""
        if self._armed_at is None:
            return StepReport()
        armed_at, first = self._armed_at, self._first
        self.disarm()
        if not first:
            return StepReport()
        idx = sorted(first)
        present = [i for i in idx if first[i] is not None]
        stale = np.zeros(len(self.names), dtype=bool)
        if present:
            device = first[present[0]].device
            values = torch.stack([first[i].to(device, torch.float32) for i in present]).cpu().numpy()
            stale[present] = values != 0  # NaN too: it was not cleared
        checked = np.zeros(len(self.names), dtype=bool)
        checked[idx] = True
        return StepReport([GradReset(armed_at, self.names, stale, checked, self.group)])

    def disarm(self) -> None:
        for h in self._handles:
            h.remove()
        self._handles, self._pending, self._first, self._armed_at = [], {}, {}, None

    def _before_accumulate(self, i: int, p: torch.nn.Parameter) -> Callable[[torch.Tensor], None]:
        def note(_: torch.Tensor) -> None:
            if i not in self._first:
                grad = None if p.grad is None else grad_values(p.grad)
                self._pending[i] = None if grad is None or grad.numel() == 0 else _max_abs([grad])[0]
        return note

    def _accumulated(self, i: int) -> Callable[[torch.Tensor], None]:
        def keep(_: torch.Tensor) -> None:
            if i not in self._first and i in self._pending:
                self._first[i] = self._pending.pop(i)
        return keep
