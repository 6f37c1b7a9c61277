"""`LoggedSteps`: what a run already holds, so a resumed run logs each metric step exactly once.

A run continued after a crash re-runs the steps between its last checkpoint and the crash. Their
metric points are already in MLflow, and MLflow keeps a second point at the same step as a second
value (its history would show the step twice). A resumed run therefore drops the points its
metric already has (every point before the last step it holds, and at that step as many points as
it holds there, since some metrics, such as Lightning's `epoch`, are logged more than once a
step), and logs the rest: no point twice, none missing.
"""

from __future__ import annotations

from typing import Mapping

__all__ = ["LoggedSteps"]


class LoggedSteps:
    """What a run held of each metric when it was resumed: its last step, and the number of points
    at that step. Points are taken in the order a re-run logs them.

    Args:
        last: metric key -> the highest step the run holds for it. Empty for a fresh run, which
            then drops nothing.
        at_last: metric key -> how many points the run holds at that step (default 1).

    Example:
        >>> logged = LoggedSteps.of_run(run_id)  # when the run is resumed
        >>> logged.fresh({"train/loss": 0.3, "val/acc": 0.8}, step=120)
        {'val/acc': 0.8}
    """

    def __init__(self, last: Mapping[str, int] | None = None, at_last: Mapping[str, int] | None = None) -> None:
        self.last = dict(last or {})
        self._left = {key: (at_last or {}).get(key, 1) for key in self.last}  # points at `last` to skip

    @classmethod
    def of_run(cls, run_id: str, tracking_uri: str | None = None) -> "LoggedSteps":
        """What run `run_id` holds now (one history query per metric key)."""
        from mlflow.tracking import MlflowClient

        client = MlflowClient(tracking_uri=tracking_uri)
        last, at_last = {}, {}
        for key in client.get_run(run_id).data.metrics:
            steps = [m.step for m in client.get_metric_history(run_id, key)]
            last[key] = max(steps)
            at_last[key] = steps.count(last[key])
        return cls(last, at_last)

    def is_fresh(self, key: str, step: int) -> bool:
        """Whether a point of `key` at `step` is new to the run (a point at the last step it holds
        is new once the run's points at that step have all been seen again)."""
        last = self.last.get(key)
        if last is None or step > last:
            return True
        if step == last and self._left[key] == 0:
            return True
        if step == last:
            self._left[key] -= 1
        return False

    def fresh(self, metrics: Mapping[str, float], step: int) -> dict[str, float]:
        """The metrics of one step that the run does not hold yet."""
        return {k: v for k, v in metrics.items() if self.is_fresh(k, step)}

    def __bool__(self) -> bool:
        return bool(self.last)
