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
        per: the cadence it was read at for the rules, "step" or "epoch" (the Lightning callbacks
            read a metric after each batch for the rules that count steps and after each epoch for
            those that count epochs; only those rules receive it); None: every rule reading it does
            (`log_metrics`).
    """

    name: str
    value: float
    step: int
    epoch: int | None = None
    per: str | None = None


class MetricRule(Rule):
    """A finding when a metric, or its ratio to another metric, stays below (or above) a bound for
    N steps or N epochs in a row.

    Within one epoch (or step) the last value of each metric counts, so a metric logged per batch
    is judged by where it ended the epoch; with `relative_to`, the period is judged on the ratio
    of the two metrics' values whenever both are known, in whichever order they arrive. A NaN
    value breaks the run of bad periods (NONFINITE is for NaNs), and so does a period whose ratio
    is undefined: a reference that is zero, not finite, or not logged in that period.

    Args:
        metric: the metric's key, exactly as logged.
        code: the finding's code (upper-case, e.g. "PSEUDO_LABELS_UNUSED").
        below / above: the bound(s); the condition holds when value < below or value > above
            (the value being `metric / relative_to` when `relative_to` is given).
        relative_to: another metric's key: the bounds apply to the ratio `metric / relative_to`
            of their values in the same period (e.g. a configured prior over the estimated one).
        for_steps / for_epochs: how many consecutive steps or epochs it must hold (one of them;
            default 1 step).
        severity: "info", "warning" (default) or "critical".
        hint: the fix, shown in the report.
        name: the rule's checkpoint key; default "metric:<code>:<metric>", or
            "metric:<code>:<metric>/<relative_to>".

    Raises:
        ValueError: an invalid argument, naming it and what is allowed.
    """

    accepts = (MetricValue,)

    def __init__(self, metric: str, *, code: str, below: float | None = None,
                 above: float | None = None, relative_to: str | None = None,
                 for_steps: int | None = None, for_epochs: int | None = None,
                 severity: str = "warning", hint: str = "", name: str | None = None) -> None:
        if not isinstance(metric, str) or not metric:
            raise ValueError(f"metric={metric!r} is not a metric name; allowed: a non-empty string")
        if relative_to is not None and (not isinstance(relative_to, str) or not relative_to
                                        or relative_to == metric):
            raise ValueError(f"relative_to={relative_to!r} is not allowed; allowed: None or the "
                             f"name of a metric other than metric={metric!r} (a non-empty string)")
        self.metric, self.relative_to, self.code = metric, relative_to, check_code(code)
        self.reads: tuple[str, ...] = (metric,) if relative_to is None else (metric, relative_to)
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
        self.name = name if name is not None else f"metric:{self.code}:{'/'.join(self.reads)}"

    def init(self) -> dict[str, Any]:
        # key: the epoch/step being judged; seen: the last value of each metric read in it;
        # before/since: the run of bad periods before it, and the step that run started at;
        # run/start: the same including the period being judged
        return {"key": None, "seen": {}, "before": 0, "since": None, "run": 0, "start": None,
                "reported": False}

    def update(self, value: MetricValue, state: dict[str, Any]) -> tuple[list[Finding], dict[str, Any]]:
        key = value.epoch if self.per == "epoch" else value.step
        if value.name not in self.reads or key is None:
            return [], state
        if key == state["key"]:  # a later value of the period being judged replaces the earlier
            before, since = state["before"], state["since"]
            # .get: a state checkpointed before rules kept `seen` lacks it
            seen = {**state.get("seen", {}), value.name: float(value.value)}
        else:
            before, since = state["run"], state["start"]
            seen = {value.name: float(value.value)}
        judged = self.judged(seen)
        bad = self.violated(judged)
        run = before + 1 if bad else 0
        start = (since if before else value.step) if bad else None
        state = {"key": key, "seen": seen, "before": before, "since": since, "run": run,
                 "start": start, "reported": state["reported"]}
        if run < self.count or state["reported"]:
            return [], state
        return [self.finding(judged, seen, int(start), value)], {**state, "reported": True}

    def finding(self, judged: float, seen: dict[str, float], start: int, last: MetricValue) -> Finding:
        """The finding once the bounds have been broken for `count` periods in a row, from `start`
        to `last`; `seen` holds the last period's values."""
        bound = {k: v for k, v in (("below", self.below), ("above", self.above)) if v is not None}
        parts = {} if self.relative_to is None else {"metric_value": seen[self.metric],
                                                     "reference_value": seen[self.relative_to]}
        evidence = {"value": judged, **parts, **bound, f"for_{self.per}s": self.count,
                    "last_step": last.step, **({"epoch": last.epoch} if last.epoch is not None else {})}
        side = (f"outside {self.below:g} to {self.above:g}" if len(bound) == 2
                else " ".join(f"{k} {v:g}" for k, v in bound.items()))
        what = " / ".join(self.reads)
        of = " / ".join(f"{v:.4g}" for v in parts.values())
        said = (f"{what} = {judged:.4g}{f' ({of})' if of else ''}, {side} for {self.count} "
                f"{self.per}{'s' * (self.count != 1)} in a row (steps {start} to {last.step})")
        return Finding(self.code, self.severity, start, self.metric, evidence, self.hint, said)

    def __repr__(self) -> str:
        reference = f", relative_to={self.relative_to!r}" if self.relative_to is not None else ""
        bounds = "".join(f", {k}={v!r}" for k, v in (("below", self.below), ("above", self.above))
                         if v is not None)
        return (f"Rule.metric({self.metric!r}{reference}{bounds}, for_{self.per}s={self.count}, "
                f"code={self.code!r})")

    def judged(self, seen: dict[str, float]) -> float:
        """The value a period is judged on, from the last value of each metric read in it: the
        metric, or its ratio to `relative_to`; NaN when that is undefined (a value missing, a
        reference that is zero or not finite)."""
        value = seen.get(self.metric, math.nan)
        if self.relative_to is None:
            return value
        reference = seen.get(self.relative_to, math.nan)
        return value / reference if math.isfinite(reference) and reference != 0 else math.nan

    def violated(self, value: float) -> bool:
        """Whether one value is outside the bounds (NaN is not)."""
        return ((self.below is not None and value < self.below)
                or (self.above is not None and value > self.above))
