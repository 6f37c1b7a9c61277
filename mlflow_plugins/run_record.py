"""`RunReport`: what every diagnostic of one MLflow run shares, written to the run once.

Several adapters can watch one run (the three Lightning callbacks, a `watch()` beside them, a
project adding its claims table): each opens the run's report, adds findings, the gradient flow,
thresholds and sections, and releases it. When the last user releases, the report is written
once: tags, `fixlab/findings.json`, `fixlab/report.html` and the figure.

It also carries the run's outcome when training ended by an exception (`fixlab.outcome`, see
`outcome`); `record_outcome` is how whoever ends a run records how it ended.
"""

from __future__ import annotations

import atexit
import threading
import warnings
from dataclasses import replace
from typing import Any, ClassVar, Mapping, Sequence

from .analysis import GradFlow
from .findings import Finding
from .outcome import (HEALTH_TAG, OUTCOME_SECTION, OUTCOME_TAG, check_status, error_line,
                      is_failure, keep_first_failure, outcome_health, outcome_text, status_of, worst)
from .recording import LoggedSteps, Recorder, RecordingWarning
from .recording.report import threshold_values

# Outcomes this process wrote, by run id: a later failure does not replace the first one.
_written: dict[str, str] = {}


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
        self.outcome: str | None = None  # set when training ended by an exception
        self.note: list[str] | None = None  # markdown lines for the run's description
        self.citations: dict[str, str] = {}  # code -> the document whose failure it reproduces
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
        """Keeps a finding (citing its document, see `cite`); one per (code, where), the earliest."""
        finding = self.cite(finding)
        known = self.findings.get(finding.key)
        if known is None or finding.step < known.step:
            self.findings[finding.key] = finding

    def cite(self, finding: Finding) -> Finding:
        """`finding` with the document it reproduces (`Finding.document`), if this run cites one
        for its code (`use_citations`); unchanged otherwise."""
        document = self.citations.get(finding.code, "")
        return replace(finding, document=document) if document and not finding.document else finding

    def use_citations(self, citations: Mapping[str, str]) -> None:
        """Cite documents on this run's findings, by code: a project's run names the research
        note whose failure a finding reproduces. A user's own runs cite nothing."""
        self.citations.update(citations)

    def add_note(self, lines: Sequence[str]) -> None:
        """Markdown lines for the run's description after its findings (e.g. claim verdicts)."""
        self.note = [*(self.note or []), *lines]

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

    def set_outcome(self, status: str, error: BaseException | str | None = None) -> str:
        """How the run ended (see `outcome.outcome_text`), written with the report: the tag
        `fixlab.outcome`, a line at the top of the report, and a health that is not `ok` for a
        failed or killed run. The first failure recorded is kept. Returns the outcome kept."""
        new = outcome_text(status, error)
        previous = self.outcome or (_written.get(self.run_id) if self.run_id else None)
        self.outcome = keep_first_failure(previous, new)
        return self.outcome

    def ended_by(self, error: BaseException) -> None:
        """Training ended with `error`: records it as the outcome unless it is a clean exit."""
        status = status_of(error)
        if status != "FINISHED":
            self.set_outcome(status, error)

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
        sections = dict(self.sections)
        if self.outcome is not None:
            sections[OUTCOME_SECTION] = self.outcome
            self.recorder.set_tags({OUTCOME_TAG: self.outcome})  # before health is settled
        self.recorder.write_findings(findings, self.grad_flow, sections=sections,
                                     thresholds=self.thresholds, note=self.note)
        if self.outcome is not None:
            if is_failure(self.outcome):
                _settle_health(self.recorder)
            _written[self.recorder.run_id] = self.outcome
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

    def __exit__(self, exc_type: Any, exc: BaseException | None, tb: Any) -> None:
        if exc is not None:
            self.ended_by(exc)
        self.release()


atexit.register(RunReport.write_unreleased)


def record_outcome(run_id: str, status: str, error: BaseException | str | None = None, *,
                   tracking_uri: str | None = None) -> str:
    """Records how a run ended: for whoever ends it (`tracked_run`, a user's own script).

    Sets the tag `fixlab.outcome` (`finished`, `failed: <ExceptionType: first line>`,
    `killed: <...>`). On a run that has a fixlab report, a failed or killed outcome is also shown
    at the top of `fixlab/report.html` and makes `fixlab.health` at least `warning` (killed) or
    `critical` (failed); `finished` after a recorded failure (a continued run) puts both back to
    what the diagnostics saw. If the run's report is still open in this process, all of it is
    written with the report instead. The first failure recorded by this process is kept: a later
    one is its consequence. MLflow failures are warnings: this runs while a run is ending.

    Args:
        run_id: the run.
        status: "FINISHED", "FAILED" or "KILLED" (MLflow's run statuses; any case).
        error: the exception that ended the run, or a one-line reason; None for none.
        tracking_uri: the store; default MLflow's current tracking URI.

    Returns:
        The outcome the run now has.

    Raises:
        ValueError: `status` is not one of the three, or `run_id` is not a non-empty string.

    Example:
        >>> record_outcome(run.info.run_id, "FAILED", error)
        'failed: RuntimeError: CUDA out of memory'
    """
    check_status(status)
    if not isinstance(run_id, str) or not run_id:
        raise ValueError(f"run_id={run_id!r} is not allowed; allowed: a run id string")
    with RunReport._lock:
        report = RunReport._open.get(run_id)
    if report is not None and not report.written:
        return report.set_outcome(status, error)
    previous = _written.get(run_id)
    outcome = keep_first_failure(previous, outcome_text(status, error))
    if outcome == previous:
        return outcome
    recorder = Recorder(run_id, tracking_uri)
    tags = _run_tags(recorder)
    recorder.set_tags({OUTCOME_TAG: outcome})
    # A report to update: one exists, and the outcome changes what it must say.
    if tags is not None and HEALTH_TAG in tags and (is_failure(outcome) or is_failure(tags.get(OUTCOME_TAG))):
        recorder.write_findings([], sections={OUTCOME_SECTION: outcome})
        _settle_health(recorder)
    recorder.close()
    _written[run_id] = outcome
    return outcome


def _run_tags(recorder: Recorder) -> dict[str, str] | None:
    """The run's tags, read with a client of our own within `run_check.CHECK_TIMEOUT_S` (None,
    with a warning, if unreadable: then nothing is rewritten from a guess)."""
    from .run_check import fetch_run

    try:
        return dict(fetch_run(recorder.run_id, recorder.tracking_uri).data.tags)
    except Exception as error:  # noqa: BLE001 - the run is ending: warn, never raise
        warnings.warn(f"fixlab: reading the tags of MLflow run {recorder.run_id} failed: "
                      f"{error_line(error)}", RecordingWarning, stacklevel=3)
        return None


def _settle_health(recorder: Recorder) -> None:
    """`fixlab.health` = the worse of what the diagnostics wrote and what the outcome implies."""
    tags = _run_tags(recorder)
    if tags is None or HEALTH_TAG not in tags:
        return
    health = worst(tags[HEALTH_TAG], outcome_health(tags.get(OUTCOME_TAG)))
    if health != tags[HEALTH_TAG]:
        recorder.set_tags({HEALTH_TAG: health})


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

    An exception leaving the block is recorded as the run's outcome (see `record_outcome`).
    """
    return RunReport.open(Recorder.resolve(run_id, tracking_uri))
