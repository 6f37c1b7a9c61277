"""The diagnostics loop every adapter shares: summaries in, rules judge, the run records, the
policy decides. Plain PyTorch (`Monitor`), Lightning (the callbacks) and JAX (`JaxMonitor`)
each hold one `Session`; they differ only in how they extract summaries from training.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass, field
from typing import Any, Callable, Iterable, Mapping, Sequence

from .analysis import MetricValue, RuleSet
from .analysis.rule import Rule, metrics_read
from .findings import Finding, Severity, announcement
from .outcome import error_line
from .run_record import RunReport
from .thresholds import Policy


class TrainingStopped(RuntimeError):
    """Raised (plain PyTorch and JAX) when policy="stop" meets a critical finding."""

    def __init__(self, finding: Finding) -> None:
        super().__init__(f"fixlab stopped training at step {finding.step}: {finding.code} at "
                         f"{finding.where}: {finding.message}. {finding.hint}".rstrip())
        self.finding = finding


@dataclass
class StepReport:
    """What one watch saw on one step: summaries for the rules, metrics to log, and whether the
    step is bad (non-finite or exploding: what `skip_step` drops)."""

    summaries: list[Any] = field(default_factory=list)
    metrics: dict[str, float] = field(default_factory=dict)
    bad: bool = False


class Session:
    """One adapter's diagnostics: its rules and their states, its findings, the run's report.

    Args:
        rules: the rules (or a `RuleSet` the caller keeps, e.g. restored from a checkpoint).
        policy: on a critical finding, "warn", "skip_step" or "stop" (the adapter acts on it).
        report: the run's shared report (`RunReport.open(...)`); released by `close`.
        owner: the adapter's name, for warnings and DIAGNOSTICS_FAILED findings.
    """

    def __init__(self, rules: RuleSet | Iterable[Rule], *, policy: Policy, report: RunReport,
                 owner: str) -> None:
        self.rules = rules if isinstance(rules, RuleSet) else RuleSet(rules)
        self.policy, self.report, self.owner = policy, report, owner
        self.findings: list[Finding] = []
        self.step = 0
        self.closed = False
        self._keys: set[tuple[str, str]] = set()

    def record(self, step: int, reports: Sequence[StepReport], *,
               policy: Policy | None = None) -> Finding | None:
        """Logs the reports' metrics, runs the rules over their summaries and keeps the new
        findings; returns the first critical one when the policy is "stop"."""
        self.step = step
        metrics: dict[str, float] = {}
        found: list[Finding] = []
        for report in reports:
            metrics.update(report.metrics)
            for summary in report.summaries:
                found += self.rules.observe(summary)
        self.report.log(metrics, step)
        return self.add(found, policy=policy)

    def log_metrics(self, metrics: Mapping[str, float], *, step: int,
                    epoch: int | None = None) -> Finding | None:
        """The model's own metrics: logged to the run and judged by the metric rules.

        Raises:
            ValueError: `epoch` is None but a rule counts epochs of one of these metrics.
        """
        values = {str(k): float(v) for k, v in metrics.items()}
        if epoch is None:
            needs = sorted(metrics_read(self.rules.rules, "epoch") & values.keys())
            if needs:
                raise ValueError(f"epoch=None, but rules count epochs of {needs}; pass epoch=<int>")
        summaries = [MetricValue(k, v, step, epoch) for k, v in values.items()]
        return self.record(step, [StepReport(summaries, values)])

    def add(self, findings: Iterable[Finding], *, policy: Policy | None = None) -> Finding | None:
        """Keeps new findings (one per code and place; a consequence of an earlier non-finite
        value is not news) and announces those that are not info."""
        policy = policy or self.policy
        new: list[Finding] = []
        for f in findings:
            if f.key in self._keys or self.report.explains(f):
                continue
            self._keys.add(f.key)
            f = self.report.cite(f)
            new.append(f)
            self.findings.append(f)
            self.report.add(f)
        for line in announcement(new):
            warnings.warn(line, RuntimeWarning, stacklevel=3)
        if policy == "stop":
            return next((f for f in new if f.severity is Severity.CRITICAL), None)
        return None

    def guard(self, fn: Callable[[], Any], default: Any = None, *, what: str | None = None) -> Any:
        """`fn()`, except that a failure becomes a warning, a DIAGNOSTICS_FAILED finding and
        `default`: diagnostics never crash training, and a blind check never reads as healthy.
        `TrainingStopped` (the user's policy) passes through."""
        try:
            return fn()
        except TrainingStopped:
            raise
        except Exception as error:  # noqa: BLE001
            where = what or self.owner
            warnings.warn(f"fixlab: {where} failed and was skipped: {error_line(error)}",
                          RuntimeWarning, stacklevel=3)
            failure = Finding.of("DIAGNOSTICS_FAILED", self.step, where, {"error": error_line(error)})
            try:
                self.add([failure], policy="warn")
            except Exception:  # noqa: BLE001 - recording the failure must not fail training either
                pass
            return default

    def flush(self) -> None:
        self.guard(self.report.flush, what=f"{self.owner} (sending metrics)")

    def sync(self) -> None:
        """Waits until everything recorded so far has reached the run (see `RunReport.sync`)."""
        self.guard(self.report.sync, what=f"{self.owner} (sending metrics)")

    def ended_by(self, error: BaseException) -> None:
        """Training ended with `error` (an exception left the adapter's `with` block, Lightning's
        `on_exception`, a stop the policy asked for): the run's report records the outcome, so
        a run whose training failed never reads as healthy. Call it before `close`."""
        try:
            self.report.ended_by(error)
        except Exception as failure:  # noqa: BLE001 - never hide the error that ended training
            warnings.warn(f"fixlab: recording how training ended failed: {error_line(failure)}",
                          RuntimeWarning, stacklevel=2)

    def close(self) -> None:
        """Releases the run's report (the last user writes it). Idempotent."""
        if self.closed:
            return
        self.closed = True
        try:
            self.report.release()
        except Exception as error:  # noqa: BLE001
            warnings.warn(f"fixlab: writing the report failed: {error_line(error)}", RuntimeWarning,
                          stacklevel=2)

    def state_dict(self) -> dict[str, Any]:
        """The rules' states and the findings so far, as plain values. A state is taken for a
        checkpoint, so the metrics recorded so far are first made to reach the run."""
        if not self.closed:
            self.sync()
        return {"rules": self.rules.state_dict(), "findings": [f.to_dict() for f in self.findings],
                "step": self.step}

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        """Continues from `state_dict()`: rules where they were, findings not announced again."""
        self.rules.load_state_dict(state.get("rules", {}))
        self.restore_findings(Finding.from_dict(d) for d in state.get("findings", []))
        self.step = int(state.get("step", self.step))

    def restore_findings(self, findings: Iterable[Finding]) -> None:
        for f in findings:
            if f.key not in self._keys:
                self._keys.add(f.key)
                self.findings.append(f)
                self.report.add(f)
