"""`Recorder`: where a monitor's metrics, tags and artifacts go, one MLflow run.

Metrics are queued and sent in batches by a background `Sender`, so a training step never waits
on the tracking server, even while it is away: points are held in memory (`MAX_BUFFERED`), then
in the run's spool file, and the user sees one line when the server goes and one when it is back.
`close()` waits for the backlog at most `CLOSE_TIMEOUT_S` (one short attempt while the server is
unreachable) and leaves the rest in the spool, which `fixlab replay` sends. Every MLflow failure
becomes a warning: diagnostics must never crash training (STYLE.md rule 7).
"""

from __future__ import annotations

import json
import os
import sys
import tempfile
import threading
import time
import warnings
from pathlib import Path
from typing import TYPE_CHECKING, Any, Mapping, Sequence

import mlflow
import numpy as np
from mlflow.entities import Metric, RunTag

from ..analysis.snapshot import GradFlow
from ..findings import FINDINGS_TAG, INFO_TAG, Finding, finding_codes, info_codes, overall_health
from ..outcome import HEALTH_TAG, OUTCOME_SECTION, error_line, outcome_health, worst
from .note import NOTE_TAG, ours, run_note
from .logged_steps import LoggedSteps
from .report import grad_flow_figure, render_report, threshold_values
from .sender import BATCH_SIZE, CLOSE_TIMEOUT_S, MAX_BUFFERED, Sender, Unsent
from .spool_file import SpoolFile, spool_folder
from .transport import Transport, is_transient

if TYPE_CHECKING:
    from mlflow.tracking import MlflowClient

__all__ = ["BATCH_SIZE", "CLOSE_TIMEOUT_S", "MAX_BUFFERED", "Recorder", "RecordingWarning"]

_ARTIFACT_DIR = "fixlab"
# Report inputs kept beside the report so a later write_findings, from any Recorder of the run,
# can re-render it with everything recorded so far.
_INPUTS_FILE = "report_inputs.json"


class RecordingWarning(RuntimeWarning):
    """An MLflow call made for diagnostics failed; training goes on."""


class Recorder:
    """Where a monitor's metrics, tags and artifacts go: one MLflow run.

    Args:
        run_id: the MLflow run to record into. It is not contacted until something is logged.
        tracking_uri: the tracking server or store; default: MLflow's current tracking URI,
            fixed at construction so a later `mlflow.set_tracking_uri` does not redirect it.
        max_buffered: metric points held in memory while the server is away (default
            `MAX_BUFFERED`, 50 000); later ones are appended to the spool file.
        spool_dir: the spool folder; default `$FIXLAB_SPOOL`, else `./fixlab_spool` (fixed at
            construction). The run's file is `<spool_dir>/<run id>.jsonl`.
        close_timeout_s: the longest `close()` waits for a backlog the server is taking
            (default `CLOSE_TIMEOUT_S`, 30 s).

    Raises:
        ValueError: `max_buffered` < 1 or `close_timeout_s` < 0.

    Example:
        >>> recorder = Recorder.resolve()  # the active run, or None without MLflow
        >>> if recorder is not None:
        ...     recorder.log_metrics({"grad_norm/total": 1.3}, step=10)
        ...     recorder.close()
    """

    def __init__(self, run_id: str, tracking_uri: str | None = None, *,
                 max_buffered: int = MAX_BUFFERED, spool_dir: str | os.PathLike | None = None,
                 close_timeout_s: float = CLOSE_TIMEOUT_S) -> None:
        if isinstance(max_buffered, bool) or not isinstance(max_buffered, int) or max_buffered < 1:
            raise ValueError(f"max_buffered={max_buffered!r} is not allowed; allowed: an int >= 1")
        if not isinstance(close_timeout_s, (int, float)) or not close_timeout_s >= 0:
            raise ValueError(f"close_timeout_s={close_timeout_s!r} is not allowed; allowed: "
                             "a number of seconds >= 0")
        self.run_id = run_id
        self.tracking_uri = tracking_uri or mlflow.get_tracking_uri()
        self.max_buffered = max_buffered
        self.spool_dir = spool_folder(spool_dir)
        self.close_timeout_s = float(close_timeout_s)
        self._client: MlflowClient | None = None
        self._sender: Sender | None = None
        self._lock = threading.Lock()  # creates the sender once
        self.logged = LoggedSteps()

    @classmethod
    def resolve(cls, run_id: str | None = None,
                tracking_uri: str | None = None) -> "Recorder | None":
        """The run to record into, or None when there is none or this is not rank zero.

        Looks at, in order: `run_id`; the active MLflow run; env `MLFLOW_RUN_ID` (what
        `mlflow run` sets). None lets a monitor work without MLflow. Non-zero distributed ranks
        (torch.distributed, or env RANK / LOCAL_RANK) get None so that only rank zero logs.
        """
        if not _is_rank_zero():
            return None
        if run_id is None:
            active = mlflow.active_run()
            run_id = active.info.run_id if active is not None else os.environ.get("MLFLOW_RUN_ID")
        return cls(run_id, tracking_uri) if run_id else None

    def log_metrics(self, metrics: Mapping[str, float], step: int) -> None:
        """Queues one step's metrics; they are sent in the background once a full batch has
        accumulated or at the next `flush`. Never waits on the tracking server.

        Non-finite values are kept (MLflow stores NaN and +-Inf); a value that is not a number
        is dropped with a warning. After `resume()`, points the run already holds are dropped.
        """
        timestamp = int(time.time() * 1000)
        points, bad = [], []
        for key, value in metrics.items():
            if not self.logged.is_fresh(str(key), int(step)):
                continue
            try:
                points.append(Metric(str(key), float(value), timestamp, int(step)))
            except (TypeError, ValueError):
                bad.append(str(key))
        if bad:
            warnings.warn(f"fixlab: metrics {bad} at step {step} are not numbers; not logged",
                          RecordingWarning, stacklevel=2)
        try:
            self._send().put(points)
        except Exception as error:  # noqa: BLE001 - diagnostics never crash training
            self._warn(f"queueing {len(points)} metric points", error)
        self._tell()

    def resume(self) -> LoggedSteps:
        """This run is being continued: from now on, drop points at or before the last step each
        metric already has (the re-run steps after a checkpoint). Returns what the run holds.

        A spool file the interrupted process left for this run is sent first, so that what the
        run holds is complete before it is read."""
        sender = self._send()
        if sender.unsent.spooled:
            sender.drain(self.close_timeout_s)
            self._tell()
        self.logged = LoggedSteps.of_run(self.run_id, self.tracking_uri)
        return self.logged

    def flush(self) -> None:
        """Asks the background sender to send every queued point (in batches of at most
        `BATCH_SIZE`); returns at once."""
        if self._sender is not None:
            self._sender.flush()
            self._tell()

    def wait_flushed(self, timeout_s: float | None = None) -> bool:
        """Waits until what earlier `flush` calls asked for has been sent, without sending what
        was logged since (a benchmark times one flush's write this way). At most `timeout_s`
        (default `close_timeout_s`); False if not all of it was sent (the server is away)."""
        if self._sender is None:
            return True
        done = self._sender.wait_flushed(self.close_timeout_s if timeout_s is None else timeout_s)
        self._tell()
        return done

    @property
    def unsent(self) -> Unsent:
        """Records not delivered yet: (points in memory, records in the spool file)."""
        return self._sender.unsent if self._sender is not None else Unsent(0, 0)

    def set_tags(self, tags: Mapping[str, str]) -> None:
        """Sets run tags (values are converted to strings): one short attempt; while the server
        is unreachable they go to the spool and are sent when it is back."""
        try:
            run_tags = [RunTag(str(k), str(v)) for k, v in tags.items()]
            if not self._try_send(run_tags):
                self._send().put_records(run_tags)
        except Exception as error:
            self._warn(f"setting tags {sorted(tags)}", error)
        self._tell()

    def write_findings(
        self,
        findings: Sequence[Finding],
        grad_flow: GradFlow | None = None,
        *,
        sections: Mapping[str, str] | None = None,
        thresholds: Mapping[str, float] | None = None,
        note: Sequence[str] | None = None,
    ) -> None:
        """Records findings: the health tags, the run's description and the `fixlab/` artifacts.

        Writes tags `fixlab.health`, `fixlab.findings` (the codes that are not info, or "none"),
        `fixlab.info` (the info codes, or "none") and the run's description
        (`mlflow.note.content`, unless the user wrote one: see `note.run_note`), and artifacts
        `fixlab/findings.json`,
        `fixlab/report.html` and `fixlab/grad_flow.png` (when there is a gradient flow). Findings
        already recorded on the run, by this or another Recorder, are kept: the run shows the
        union, one finding per (code, where) at its earliest step. Likewise the last gradient
        flow, the sections (by title) and thresholds given before stay in the report unless
        replaced. Calling it again with the same arguments changes nothing.

        While the server is unreachable, the tags and files go to the spool (sent when it is
        back, or by `fixlab replay`); they then hold this call's findings only, since the run's
        recorded ones cannot be read.

        Args:
            findings: what the diagnostics found.
            grad_flow: per-parameter gradient statistics for the figure.
            sections: extra HTML fragments for the report, by title (e.g. a claims table).
            thresholds: the rule thresholds, for the figure's lines and band.
            note: markdown lines for the run's description after the findings (claim verdicts).
        """
        try:
            online = self._try_send([])  # is the run writable now? (one short attempt)
            recorded, inputs = self._recorded() if online else ([], {})
            merged = _union([*recorded, *findings])
            if grad_flow is not None and grad_flow.observations > 0:
                inputs["grad_flow"] = grad_flow.to_dict()
            inputs["sections"] = {**inputs.get("sections", {}), **dict(sections or {})}
            inputs["thresholds"] = {**inputs.get("thresholds", {}),
                                    **(threshold_values(thresholds) if thresholds else {})}
            if note is not None:
                inputs["note"] = list(note)
            # The tags first: they are what the registry gate and the runs table read.
            tags = [RunTag(HEALTH_TAG, overall_health(merged)), RunTag(FINDINGS_TAG, finding_codes(merged)),
                    RunTag(INFO_TAG, info_codes(merged))]
            if online and ours(self._mlflow().get_run(self.run_id).data.tags):
                outcome = inputs["sections"].get(OUTCOME_SECTION)
                health = worst(overall_health(merged), outcome_health(outcome))
                tags.append(RunTag(NOTE_TAG, run_note(health, merged, outcome=outcome,
                                                      lines=inputs.get("note", ()))))
            files = _report_files(merged, inputs)
            if online and self._try_send(tags):
                self._upload_or_spool(files)
            else:
                self._send().put_records(tags, files)
        except Exception as error:
            self._warn(f"writing {len(findings)} findings", error)
        self._tell()

    def close(self) -> None:
        """Sends every queued point and waits for it: at most `close_timeout_s`, and while the
        server is unreachable for one more short attempt only. What is left stays in the spool
        file (one warning says how to send it); the background sender keeps trying while the
        process lives. Safe to call more than once, and to log again afterwards."""
        if self._sender is not None:
            self._sender.drain(self.close_timeout_s)
            self._tell()

    def __enter__(self) -> "Recorder":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _send(self) -> Sender:
        """The run's background sender (created on first use: a Recorder that is never used
        costs no thread and no file)."""
        with self._lock:
            if self._sender is None:
                spool = SpoolFile.of_run(self.run_id, self.tracking_uri, self.spool_dir)
                self._sender = Sender(Transport(self.run_id, self.tracking_uri), spool,
                                      max_buffered=self.max_buffered)
            return self._sender

    def _try_send(self, tags: list[RunTag]) -> bool:
        """Sends tags in one short attempt (no tags: asks whether the run is writable). False
        while the server is unreachable; a refusal (no such run) raises."""
        sender = self._send()
        if not sender.reachable:
            return False
        try:
            sender.transport.send(tags=tags)
            return True
        except Exception as error:
            if is_transient(error):
                return False
            raise

    def _upload_or_spool(self, files: dict[str, bytes]) -> None:
        """Uploads artifact files; if the server went away meanwhile, they go to the spool."""
        try:
            self._send().transport.upload(files)
        except Exception as error:
            if not is_transient(error):
                raise
            self._send().put_records(files=files)

    def _tell(self) -> None:
        """Warns the sender's notices (outage, recovery, refused batches), on the caller's thread."""
        if self._sender is not None:
            for notice in self._sender.notices():
                warnings.warn(notice, RecordingWarning, stacklevel=3)

    def _mlflow(self) -> MlflowClient:
        # Created on first use: building a store may touch a database or a server. Imported
        # here because this module can be loaded while `import mlflow` is still running
        # (through the run-context-provider entry point).
        if self._client is None:
            from mlflow.tracking import MlflowClient

            self._client = MlflowClient(tracking_uri=self.tracking_uri)
        return self._client

    def _recorded(self) -> tuple[list[Finding], dict[str, Any]]:
        """The findings and report inputs already in the run's `fixlab/` artifacts.

        An unreadable file is ignored with a warning, so that the next write replaces it.
        """
        client = self._mlflow()
        present = {Path(f.path).name for f in client.list_artifacts(self.run_id, _ARTIFACT_DIR)}
        findings: list[Finding] = []
        inputs: dict[str, Any] = {}
        with tempfile.TemporaryDirectory() as tmp:
            for name in ("findings.json", _INPUTS_FILE):
                if name not in present:
                    continue
                path = client.download_artifacts(self.run_id, f"{_ARTIFACT_DIR}/{name}", tmp)
                try:
                    data = json.loads(Path(path).read_text())
                    if name == "findings.json":
                        findings = [Finding.from_dict(d) for d in data["findings"]]
                    else:
                        inputs = dict(data)
                except (ValueError, KeyError, TypeError) as error:
                    self._warn(f"reading the recorded {_ARTIFACT_DIR}/{name} (ignored)", error)
        return findings, inputs

    def _warn(self, what: str, error: Exception) -> None:
        warnings.warn(f"fixlab: {what} for MLflow run {self.run_id} failed: "
                      f"{error_line(error)}; training continues", RecordingWarning, stacklevel=3)


def _is_rank_zero() -> bool:
    """False on a non-zero distributed rank, seen from env RANK / LOCAL_RANK or torch."""
    for var in ("RANK", "LOCAL_RANK"):
        value = os.environ.get(var, "").strip()
        if value.isdigit() and int(value) != 0:
            return False
    # Only consult torch if the program imported it: a JAX user need not pay for the import.
    dist = getattr(sys.modules.get("torch"), "distributed", None)
    if dist is not None and dist.is_available() and dist.is_initialized():
        return dist.get_rank() == 0
    return True


def _report_files(findings: list[Finding], inputs: dict[str, Any]) -> dict[str, bytes]:
    """The `fixlab/` artifacts, by path in the run: findings, report inputs, page, figure."""
    flow = GradFlow.from_dict(inputs["grad_flow"]) if inputs.get("grad_flow") else None
    thresholds = inputs.get("thresholds") or None
    document = {"health": overall_health(findings), "findings": [f.to_dict() for f in findings]}
    page = render_report(findings, flow, sections=inputs.get("sections"), thresholds=thresholds)
    files = {f"{_ARTIFACT_DIR}/findings.json": json.dumps(document, indent=2, default=_plain).encode(),
             f"{_ARTIFACT_DIR}/{_INPUTS_FILE}": json.dumps(inputs, default=_plain).encode(),
             f"{_ARTIFACT_DIR}/report.html": page.encode("utf-8")}
    if flow is not None:
        files[f"{_ARTIFACT_DIR}/grad_flow.png"] = grad_flow_figure(flow, thresholds)
    return files


def _union(findings: Sequence[Finding]) -> list[Finding]:
    """One finding per (code, where), the earliest seen, ordered by step."""
    first: dict[tuple[str, str], Finding] = {}
    for f in findings:
        if f.key not in first or f.step < first[f.key].step:
            first[f.key] = f
    return sorted(first.values(), key=lambda f: (f.step, f.code, f.where))


def _plain(value: Any) -> Any:
    """JSON for numpy values in evidence; anything else as its string."""
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, np.ndarray):
        return value.tolist()
    return str(value)
