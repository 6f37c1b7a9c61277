"""`LoggedSteps`: what a run already holds, so a resumed run logs each metric step exactly once.

A run continued after a crash re-runs the steps between its last checkpoint and the crash. Their
metric points are already in MLflow, and MLflow keeps a second point at the same step as a second
value (its history would show the step twice). A resumed run therefore drops every point at or
before the last step its metric already has, and logs the rest: no step twice, none missing.
"""

from __future__ import annotations

from typing import Mapping

__all__ = ["LoggedSteps"]


class LoggedSteps:
    """The last logged step of each metric of a run, taken once when the run is resumed.

    Args:
        last: metric key -> the highest step the run holds for it. Empty for a fresh run, which
            then drops nothing.

    Example:
        >>> logged = LoggedSteps.of_run(run_id)  # when the run is resumed
        >>> logged.fresh({"train/loss": 0.3, "val/acc": 0.8}, step=120)
        {'val/acc': 0.8}
    """

    def __init__(self, last: Mapping[str, int] | None = None) -> None:
        self.last = dict(last or {})

    @classmethod
    def of_run(cls, run_id: str, tracking_uri: str | None = None) -> "LoggedSteps":
        """The steps run `run_id` holds now (one history query per metric key)."""
        from mlflow.tracking import MlflowClient

        client = MlflowClient(tracking_uri=tracking_uri)
        keys = client.get_run(run_id).data.metrics
        return cls({key: max(m.step for m in client.get_metric_history(run_id, key)) for key in keys})

    def is_fresh(self, key: str, step: int) -> bool:
        """Whether a point of `key` at `step` is new to the run."""
        last = self.last.get(key)
        return last is None or step > last

    def fresh(self, metrics: Mapping[str, float], step: int) -> dict[str, float]:
        """The metrics of one step that the run does not hold yet."""
        return {k: v for k, v in metrics.items() if self.is_fresh(k, step)}

    def __bool__(self) -> bool:
        return bool(self.last)
