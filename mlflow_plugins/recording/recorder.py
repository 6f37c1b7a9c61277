"""`Recorder`: where a monitor's metrics, tags and artifacts go, one MLflow run.

Metrics are buffered in memory and sent in batches with MLflow's asynchronous logging, so a
training step never waits on the tracking server. Every MLflow failure becomes a warning:
diagnostics must never crash training (STYLE.md rule 7).
"""

from __future__ import annotations

import json
import os
import sys
import tempfile
import threading
import time
import warnings
from collections import deque
from pathlib import Path
from typing import TYPE_CHECKING, Any, Mapping, Sequence

import mlflow
import numpy as np
from mlflow.entities import Metric, RunTag

from ..analysis.snapshot import GradFlow
from ..findings import Finding, finding_codes, overall_health
from .logged_steps import LoggedSteps
from .report import grad_flow_figure, render_report, threshold_values

if TYPE_CHECKING:
    from mlflow.tracking import MlflowClient
    from mlflow.utils.async_logging.run_operations import RunOperations

BATCH_SIZE = 1000  # MLflow's limit of metrics per log_batch request
_MAX_IN_FLIGHT = 32  # asynchronous batches before flush() waits for the oldest (backpressure)
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

    Example:
        >>> recorder = Recorder.resolve()  # the active run, or None without MLflow
        >>> if recorder is not None:
        ...     recorder.log_metrics({"grad_norm/total": 1.3}, step=10)
        ...     recorder.close()
    """

    def __init__(self, run_id: str, tracking_uri: str | None = None) -> None:
        self.run_id = run_id
        self.tracking_uri = tracking_uri or mlflow.get_tracking_uri()
        self._client: MlflowClient | None = None
        self._buffer: list[Metric] = []
        self._in_flight: deque[tuple[list[Metric], RunOperations]] = deque()
        self._lock = threading.RLock()
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
        """Buffers one step's metrics; sends them once a full batch has accumulated.

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
        with self._lock:
            self._buffer.extend(points)
            full = len(self._buffer) >= BATCH_SIZE
        if full:
            self.flush()

    def resume(self) -> LoggedSteps:
        """This run is being continued: from now on, drop points at or before the last step each
        metric already has (the re-run steps after a checkpoint). Returns what the run holds."""
        self.logged = LoggedSteps.of_run(self.run_id, self.tracking_uri)
        return self.logged

    def flush(self) -> None:
        """Sends the buffer asynchronously in batches of at most `BATCH_SIZE` metrics."""
        with self._lock:
            points, self._buffer = self._buffer, []
            for start in range(0, len(points), BATCH_SIZE):
                batch = points[start:start + BATCH_SIZE]
                try:
                    ops = self._mlflow().log_batch(self.run_id, metrics=batch, synchronous=False)
                except Exception:  # e.g. the async queue was shut down at exit: try directly
                    self._send_now(batch)
                    continue
                if ops is not None:
                    self._in_flight.append((batch, ops))
            while len(self._in_flight) > _MAX_IN_FLIGHT:
                self._settle(*self._in_flight.popleft())

    def set_tags(self, tags: Mapping[str, str]) -> None:
        """Sets run tags (values are converted to strings)."""
        try:
            run_tags = [RunTag(str(k), str(v)) for k, v in tags.items()]
            self._mlflow().log_batch(self.run_id, tags=run_tags, synchronous=True)
        except Exception as error:
            self._warn(f"setting tags {sorted(tags)}", error)

    def write_findings(
        self,
        findings: Sequence[Finding],
        grad_flow: GradFlow | None = None,
        *,
        sections: Mapping[str, str] | None = None,
        thresholds: Mapping[str, float] | None = None,
    ) -> None:
        """Records findings: the health tags and the `fixlab/` artifacts of the run.

        Writes tags `fixlab.health` and `fixlab.findings`, and artifacts `fixlab/findings.json`,
        `fixlab/report.html` and `fixlab/grad_flow.png` (when there is a gradient flow). Findings
        already recorded on the run, by this or another Recorder, are kept: the run shows the
        union, one finding per (code, where) at its earliest step. Likewise the last gradient
        flow, the sections (by title) and thresholds given before stay in the report unless
        replaced. Calling it again with the same arguments changes nothing.

        Args:
            findings: what the diagnostics found.
            grad_flow: per-parameter gradient statistics for the figure.
            sections: extra HTML fragments for the report, by title (e.g. a claims table).
            thresholds: the rule thresholds, for the figure's lines and band.
        """
        try:
            recorded, inputs = self._recorded()
            merged = _union([*recorded, *findings])
            # The tags first: they are what the registry gate and the runs table read.
            tags = [RunTag("fixlab.health", overall_health(merged)),
                    RunTag("fixlab.findings", finding_codes(merged))]
            self._mlflow().log_batch(self.run_id, tags=tags, synchronous=True)
            if grad_flow is not None and grad_flow.observations > 0:
                inputs["grad_flow"] = grad_flow.to_dict()
            inputs["sections"] = {**inputs.get("sections", {}), **dict(sections or {})}
            inputs["thresholds"] = {**inputs.get("thresholds", {}),
                                    **(threshold_values(thresholds) if thresholds else {})}
            self._write_artifacts(merged, inputs)
        except Exception as error:
            self._warn(f"writing {len(findings)} findings", error)

    def close(self) -> None:
        """Flushes and waits for every asynchronous batch; safe to call more than once."""
        with self._lock:
            self.flush()
            while self._in_flight:
                self._settle(*self._in_flight.popleft())

    def __enter__(self) -> "Recorder":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _mlflow(self) -> MlflowClient:
        # Created on first use: building a store may touch a database or a server. Imported
        # here because this module can be loaded while `import mlflow` is still running
        # (through the run-context-provider entry point).
        if self._client is None:
            from mlflow.tracking import MlflowClient

            self._client = MlflowClient(tracking_uri=self.tracking_uri)
        return self._client

    def _settle(self, batch: list[Metric], ops: RunOperations) -> None:
        """Waits for one asynchronous batch; a failed one is sent again synchronously."""
        try:
            ops.wait()
        except Exception:
            self._send_now(batch)

    def _send_now(self, batch: list[Metric]) -> None:
        # Retrying is safe: MLflow's stores skip metric points they already hold.
        try:
            self._mlflow().log_batch(self.run_id, metrics=batch, synchronous=True)
        except Exception as error:
            self._warn(f"logging {len(batch)} metric points", error)

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

    def _write_artifacts(self, findings: list[Finding], inputs: dict[str, Any]) -> None:
        flow = GradFlow.from_dict(inputs["grad_flow"]) if inputs.get("grad_flow") else None
        thresholds = inputs.get("thresholds") or None
        document = {"health": overall_health(findings),
                    "findings": [f.to_dict() for f in findings]}
        with tempfile.TemporaryDirectory() as tmp:
            out = Path(tmp)
            (out / "findings.json").write_text(json.dumps(document, indent=2, default=_plain))
            (out / _INPUTS_FILE).write_text(json.dumps(inputs, default=_plain))
            page = render_report(findings, flow, sections=inputs.get("sections"),
                                 thresholds=thresholds)
            (out / "report.html").write_text(page, encoding="utf-8")
            if flow is not None:
                (out / "grad_flow.png").write_bytes(grad_flow_figure(flow, thresholds))
            self._mlflow().log_artifacts(self.run_id, tmp, _ARTIFACT_DIR)

    def _warn(self, what: str, error: Exception) -> None:
        warnings.warn(f"fixlab: {what} for MLflow run {self.run_id} failed: "
                      f"{_one_line(error)}; training continues", RecordingWarning, stacklevel=3)


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


def _one_line(error: Exception) -> str:
    text = str(error).strip().splitlines()
    return f"{type(error).__name__}: {text[0] if text else ''}"[:300]
