"""`RunReport`: what every diagnostic of one MLflow run shares, written to the run once.

Several adapters can watch one run (the three Lightning callbacks, a `watch()` beside them, a
project adding its claims table): each opens the run's report, adds findings, the gradient flow,
thresholds and sections, and releases it. When the last user releases, the report is written
once: tags, `fixlab/findings.json`, `fixlab/report.html` and the figure.
"""

from __future__ import annotations

import atexit
import threading
from typing import Any, ClassVar, Mapping

from .analysis import GradFlow
from .findings import Finding
from .recording import LoggedSteps, Recorder
from .recording.report import threshold_values


class RunReport:
    """The shared record of one run's diagnostics; see the module docstring.

    Use `run_report()` (a context manager) to hold it open while you add sections; adapters
    use `open` and `release`.

    Args:
        recorder: the run to write into; None keeps everything in memory (no MLflow run).
    """

    _open: ClassVar[dict[str, "RunReport"]] = {}  # by run id (unique across stores)
    _lock: ClassVar[threading.Lock] = threading.Lock()

    def __init__(self, recorder: Recorder | None) -> None:
        self.recorder = recorder
        self.findings: dict[tuple[str, str], Finding] = {}
        self.grad_flow: GradFlow | None = None
        self.sections: dict[str, str] = {}
        self.thresholds: dict[str, float] = {}
        self.written = False
        self._users = 0

    @classmethod
    def open(cls, recorder: Recorder | None) -> "RunReport":
        """The report of `recorder`'s run, shared with every other user of that run in this
        process; one more user until `release`."""
        with cls._lock:
            if recorder is None:
                report = cls(None)
            else:
                report = cls._open.get(recorder.run_id)
                if report is None:
                    report = cls._open[recorder.run_id] = cls(recorder)
            report._users += 1
            return report

    @property
    def run_id(self) -> str | None:
        return self.recorder.run_id if self.recorder is not None else None

    def add(self, finding: Finding) -> None:
        """Keeps a finding; one per (code, where), the earliest."""
        known = self.findings.get(finding.key)
        if known is None or finding.step < known.step:
            self.findings[finding.key] = finding

    def explains(self, finding: Finding) -> bool:
        """A non-finite gradient after a non-finite loss/activation is its consequence, not news."""
        return (finding.code == "NONFINITE" and finding.evidence.get("source") == "gradient"
                and any(f.code == "NONFINITE" and f.evidence.get("source") != "gradient"
                        and f.step <= finding.step for f in self.findings.values()))

    def add_section(self, title: str, html: str) -> None:
        """An HTML fragment (trusted: e.g. a claims table) shown in the report under `title`."""
        if not isinstance(title, str) or not title:
            raise ValueError(f"title={title!r} is not allowed; allowed: a non-empty string")
        self.sections[title] = str(html)

    def use_grad_flow(self, flow: GradFlow) -> None:
        """The gradient statistics the report's figure shows (the first adapter's that has any)."""
        if self.grad_flow is None:
            self.grad_flow = flow

    def use_thresholds(self, thresholds: Any) -> None:
        """Thresholds for the figure's lines and band."""
        self.thresholds.update(threshold_values(thresholds))

    def resume(self) -> LoggedSteps:
        """The run is being continued after a crash: metric points it already holds are not
        logged again by anyone recording into this report. Returns what the run holds."""
        return self.recorder.resume() if self.recorder is not None else LoggedSteps()

    def log(self, metrics: Mapping[str, float], step: int) -> None:
        if self.recorder is not None and metrics:
            self.recorder.log_metrics(metrics, step)

    def flush(self) -> None:
        if self.recorder is not None:
            self.recorder.flush()

    def sync(self) -> None:
        """Waits until every metric logged so far has reached the run (before a checkpoint is
        taken: what the checkpoint has seen, the run holds)."""
        if self.recorder is not None:
            self.recorder.close()

    def release(self) -> None:
        """One user less: waits for the metrics logged so far to land (a user reading the run
        next sees them all); the last user writes the report."""
        with self._lock:
            self._users -= 1
            last = self._users <= 0
            if last and self.recorder is not None:
                self._open.pop(self.recorder.run_id, None)
        if self.recorder is not None:
            self.recorder.close()
        if last:
            self.write()

    def write(self) -> None:
        """Writes tags, findings, report and figure (once), and flushes the metrics."""
        if self.written or self.recorder is None:
            return
        self.written = True
        findings = sorted(self.findings.values(), key=lambda f: (f.step, f.code, f.where))
        self.recorder.write_findings(findings, self.grad_flow, sections=self.sections,
                                     thresholds=self.thresholds)
        self.recorder.close()

    @classmethod
    def write_unreleased(cls) -> None:
        """Writes the reports still open (a monitor never closed): run at interpreter exit, so
        that a forgotten `close()` does not leave a run without its findings."""
        with cls._lock:
            reports, cls._open = list(cls._open.values()), {}
        for report in reports:
            try:
                report.write()
            except Exception:  # noqa: BLE001 - exiting: nothing left to warn
                pass

    def __enter__(self) -> "RunReport":
        return self

    def __exit__(self, *exc: object) -> None:
        self.release()


atexit.register(RunReport.write_unreleased)


def run_report(run_id: str | None = None, tracking_uri: str | None = None) -> RunReport:
    """The report of an MLflow run, held open until the `with` block ends.

    Monitors and callbacks of the same run write into it; sections added here appear in the one
    report written when the last of them (or this block) is done.

    Args:
        run_id / tracking_uri: the run; default the active run, then env `MLFLOW_RUN_ID`.

    Example:
        >>> with run_report(run.info.run_id) as report:
        ...     trainer.fit(model)  # fixlab callbacks record into the same report
        ...     report.add_section("Claims", claims_table_html)
    """
    return RunReport.open(Recorder.resolve(run_id, tracking_uri))
