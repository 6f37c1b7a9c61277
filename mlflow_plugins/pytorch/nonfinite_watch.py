"""Non-finite loss/output/activation for torch: a one-reduction check per step, located on failure."""

from __future__ import annotations

from dataclasses import replace
from typing import Any, Callable

import torch

from ..analysis import NonfiniteEvent
from .locate import AutocastState, first_tensor_problem, locate_nonfinite, nonfinite_flag


class NonfiniteWatch:
    """Checks a step's loss or model output with one device reduction and one scalar sync.

    Only when that check fails does it re-run the batch with forward hooks (`locate_nonfinite`)
    to name the module that produced the first NaN/Inf. Later failures are counted against that
    first finding without re-running.
    """

    def __init__(self, model: torch.nn.Module) -> None:
        self.model = model
        self._pending: torch.Tensor | None = None
        self._first: NonfiniteEvent | None = None

    def observe_output(self, value: Any) -> None:
        """Queue a device flag for the step's output or loss (no sync)."""
        flag = nonfinite_flag(value)
        if flag is not None:
            self._pending = flag if self._pending is None else (self._pending | flag)

    def settle(self, step: int, value_source: str, rerun: Callable[[], Any] | None,
               autocast: AutocastState | None = None, value: Any = None) -> list[NonfiniteEvent]:
        """Sync the queued flag once; on failure, locate the culprit and return the event.

        Args:
            step: the step the value belongs to.
            value_source: "loss" or "output", what the queued value was.
            rerun: re-executes the failing forward or training step, for locating.
            autocast: autocast of the failing forward, when `rerun` does not set it itself.
            value: the loss/output itself, for its dtype when nothing can be located.
        """
        flag, self._pending = self._pending, None
        if flag is None or not bool(flag):
            return []
        if self._first is not None:  # already explained: count it, do not re-run
            return [replace(self._first, step=step)]
        event = locate_nonfinite(self.model, rerun, step, autocast) if rerun is not None else None
        if event is None:
            problem = first_tensor_problem(value)
            dtype, nan, inf = ((str(problem[0].dtype), problem[1], problem[2]) if problem
                               else (None, False, False))
            event = NonfiniteEvent(step, value_source, value_source, dtype,
                                   autocast.enabled if autocast else None, nan, inf)  # type: ignore[arg-type]
        self._first = event
        return [event]

    @property
    def has_pending(self) -> bool:
        return self._pending is not None
