"""Rules over the model's own metrics: "pseudo-label usage below 20 % for 3 epochs is a warning"."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Literal

from ..findings import Finding, check_code, check_severity
from .rule import Rule


@dataclass(frozen=True)
class MetricValue:
    """One value of a metric the model logged.

    Attributes:
        name: the metric's key, e.g. "train/pseudo_label_rate".
        value: its value.
        step: the optimizer step it belongs to.
        epoch: the epoch it belongs to (None when the loop does not say).
    """

    name: str
    value: float
    step: int
    epoch: int | None = None


class MetricRule(Rule):
    """A finding when a metric stays below (or above) a bound for N steps or N epochs in a row.

    Within one epoch (or step) the last value counts, so a metric logged per batch is judged by
    where it ended the epoch. A NaN value breaks the run of bad values (NONFINITE is for NaNs).

    Args:
        metric: the metric's key, exactly as logged.
        code: the finding's code (upper-case, e.g. "PSEUDO_LABELS_UNUSED").
        below / above: the bound(s); the condition holds when value < below or value > above.
        for_steps / for_epochs: how many consecutive steps or epochs it must hold (one of them;
            default 1 step).
        severity: "info", "warning" (default) or "critical".
        hint: the fix, shown in the report.
        name: the rule's checkpoint key; default "metric:<code>:<metric>".

    Raises:
        ValueError: an invalid argument, naming it and what is allowed.
    """

    accepts = (MetricValue,)

    def __init__(self, metric: str, *, code: str, below: float | None = None,
                 above: float | None = None, for_steps: int | None = None,
                 for_epochs: int | None = None, severity: str = "warning", hint: str = "",
                 name: str | None = None) -> None:
        if not isinstance(metric, str) or not metric:
            raise ValueError(f"metric={metric!r} is not a metric name; allowed: a non-empty string")
        self.metric, self.code = metric, check_code(code)
        self.severity = check_severity(severity)
        if below is None and above is None:
            raise ValueError("Rule.metric needs below= and/or above=; got neither")
        for arg, bound in (("below", below), ("above", above)):
            if bound is not None and (isinstance(bound, bool) or not isinstance(bound, (int, float))
                                      or not math.isfinite(bound)):
                raise ValueError(f"{arg}={bound!r} is out of range; allowed: a finite number or None")
        self.below, self.above = below, above
        if for_steps is not None and for_epochs is not None:
            raise ValueError(f"for_steps={for_steps!r} and for_epochs={for_epochs!r} are both set; "
                             "allowed: one of them")
        count = for_epochs if for_epochs is not None else (1 if for_steps is None else for_steps)
        argument = "for_epochs" if for_epochs is not None else "for_steps"
        if isinstance(count, bool) or not isinstance(count, int) or count < 1:
            raise ValueError(f"{argument}={count!r} is out of range; allowed: an integer >= 1")
        self.count: int = count
        self.per: Literal["step", "epoch"] = "epoch" if for_epochs is not None else "step"
        if not isinstance(hint, str):
            raise ValueError(f"hint={hint!r} is not allowed; allowed: a string")
        self.hint = hint
        self.name = name if name is not None else f"metric:{self.code}:{metric}"

    def init(self) -> dict[str, Any]:
        # key: the epoch/step being judged; before/since: the run of bad periods before it, and
        # the step that run started at; run/start: the same including the period being judged
        return {"key": None, "before": 0, "since": None, "run": 0, "start": None, "reported": False}

    def update(self, value: MetricValue, state: dict[str, Any]) -> tuple[list[Finding], dict[str, Any]]:
        key = value.epoch if self.per == "epoch" else value.step
        if value.name != self.metric or key is None:
            return [], state
        if key == state["key"]:  # a later value of the period being judged replaces the earlier
            before, since = state["before"], state["since"]
        else:
            before, since = state["run"], state["start"]
        bad = self.violated(value.value)
        run = before + 1 if bad else 0
        start = (since if before else value.step) if bad else None
        state = {"key": key, "before": before, "since": since, "run": run, "start": start,
                 "reported": state["reported"]}
        if run < self.count or state["reported"]:
            return [], state
        bound = {k: v for k, v in (("below", self.below), ("above", self.above)) if v is not None}
        evidence = {"value": float(value.value), **bound, f"for_{self.per}s": self.count,
                    "last_step": value.step, **({"epoch": value.epoch} if value.epoch is not None else {})}
        side = " and ".join(f"{k} {v:g}" for k, v in bound.items())
        said = (f"{self.metric} = {value.value:.4g}, {side} for {self.count} {self.per}{'s' * (self.count != 1)} in a row "
                f"(steps {start} to {value.step})")
        finding = Finding(self.code, self.severity, int(start), self.metric, evidence, self.hint, said)
        return [finding], {**state, "reported": True}

    def __repr__(self) -> str:
        bounds = "".join(f", {k}={v!r}" for k, v in (("below", self.below), ("above", self.above))
                         if v is not None)
        return f"Rule.metric({self.metric!r}{bounds}, for_{self.per}s={self.count}, code={self.code!r})"

    def violated(self, value: float) -> bool:
        """Whether one value is outside the bounds (NaN is not)."""
        return ((self.below is not None and value < self.below)
                or (self.above is not None and value > self.above))
