"""What one run's diagnostics share: the findings so far, the policy, and the MLflow run."""

from __future__ import annotations

import warnings
from dataclasses import asdict
from typing import Any, Callable, Mapping, Sequence

from .analysis import GradFlow
from .findings import CODES, Finding, Severity
from .recording import Recorder
from .thresholds import Policy, Thresholds


class TrainingStopped(RuntimeError):
    """Raised (plain PyTorch and JAX) when policy="stop" meets a critical finding."""

    def __init__(self, finding: Finding) -> None:
        super().__init__(f"fixlab stopped training at step {finding.step}: {finding.code} at "
                         f"{finding.where} ({CODES[finding.code].meaning}). {finding.hint}")
        self.finding = finding


def guarded(fn: Callable[[], Any], default: Any = None, *, what: str = "diagnostics") -> Any:
    """`fn()`, except that a failure becomes a warning and `default`: diagnostics never crash
    training. `TrainingStopped` (the user's policy) passes through."""
    try:
        return fn()
    except TrainingStopped:
        raise
    except Exception as exc:  # noqa: BLE001
        warnings.warn(f"fixlab: {what} failed and was skipped this step: {exc!r}", RuntimeWarning, stacklevel=3)
        return default


class Session:
    """Collects findings from every watch of a run and records them.

    New findings of severity warning or critical are announced with `warnings.warn`.
    """

    def __init__(self, recorder: Recorder | None, policy: Policy, thresholds: Thresholds) -> None:
        self.recorder, self.policy, self.thresholds = recorder, policy, thresholds
        self.findings: list[Finding] = []
        self.grad_flow: GradFlow | None = None
        self.closed = False

    def add(self, findings: Sequence[Finding], policy: Policy | None = None) -> Finding | None:
        """Keep new findings; with policy "stop" (the session's unless given), return the first
        critical one."""
        policy = policy or self.policy
        stop = None
        for f in findings:
            if self._explained(f):
                continue
            self.findings.append(f)
            if f.severity is not Severity.INFO:
                warnings.warn(f"fixlab: {f.code} at {f.where} (step {f.step}): "
                              f"{CODES[f.code].meaning}", RuntimeWarning, stacklevel=3)
            if stop is None and policy == "stop" and f.severity is Severity.CRITICAL:
                stop = f
        return stop

    def _explained(self, finding: Finding) -> bool:
        """A non-finite gradient after a non-finite loss/activation is its consequence, not news."""
        return (finding.code == "NONFINITE" and finding.evidence.get("source") == "gradient"
                and any(f.code == "NONFINITE" and f.evidence.get("source") != "gradient"
                        and f.step <= finding.step for f in self.findings))

    def log(self, metrics: Mapping[str, float], step: int) -> None:
        if self.recorder is not None and metrics:
            self.recorder.log_metrics(metrics, step)

    def flush(self) -> None:
        if self.recorder is not None:
            self.recorder.flush()

    def close(self) -> None:
        """Write findings, tags and the report, and wait for every metric to land. Idempotent."""
        if self.closed:
            return
        self.closed = True
        if self.recorder is not None:
            self.recorder.write_findings(self.findings, self.grad_flow,
                                         thresholds=asdict(self.thresholds))
            self.recorder.close()
