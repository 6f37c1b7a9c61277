"""`EpochHistory`: each epoch's metrics kept in memory for a run's tables and figures, and the pure
readings of such series (the last finite value, the first epoch that reaches a target)."""

from __future__ import annotations

import math
from typing import Any, Mapping, Sequence

import lightning as L

__all__ = ["EpochHistory", "final_values", "epochs_to"]


class EpochHistory(L.Callback):
    """Each epoch's `trainer.callback_metrics` whose names start with one of `prefixes`, as
    {name: [(epoch, value)]} with epochs from 1; carried in checkpoints, so a continued run keeps
    its first epochs.

    Args:
        prefixes: the metric names to keep, by prefix (e.g. ("val/", "polar/")).
    """

    def __init__(self, prefixes: Sequence[str]) -> None:
        self.prefixes = tuple(prefixes)
        self.history: dict[str, list[tuple[int, float]]] = {}

    def on_train_epoch_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        epoch = trainer.current_epoch + 1
        for key, value in trainer.callback_metrics.items():
            if key.startswith(self.prefixes):
                self.history.setdefault(key, []).append((epoch, float(value)))

    def state_dict(self) -> dict[str, Any]:
        return {"history": {k: [list(p) for p in v] for k, v in self.history.items()}}

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        # Only into an empty history (a continued run): testing the best checkpoint loads callback
        # states too, and must not cut the history back to the best epoch.
        if not self.history:
            self.history = {k: [(int(e), float(v)) for e, v in points]
                            for k, points in state_dict["history"].items()}

    def series(self, key: str) -> list[float]:
        """The values of `key`, one per epoch in order."""
        return [v for _, v in self.history.get(key, [])]


def final_values(history: EpochHistory, prefix: str) -> Mapping[str, float]:
    """The last finite value of every history series under `prefix` (an epoch with a non-finite
    batch averages to NaN)."""
    finite = {k: [v for _, v in points if math.isfinite(v)] for k, points in history.history.items()
              if k.startswith(prefix)}
    return {k: values[-1] for k, values in finite.items() if values}


def epochs_to(series: Sequence[float], target: float) -> float:
    """The first epoch (from 1) whose value reaches `target`; NaN if none did."""
    return next((float(i + 1) for i, v in enumerate(series) if v >= target), math.nan)
