"""`Transport`: one short attempt to deliver records to a run, with no retries of MLflow's own.

MLflow retries a failed request for minutes (`MLFLOW_HTTP_REQUEST_MAX_RETRIES`, default 7, with
exponential backoff). The `Sender` runs its own retry loop off the training thread, so each of its
attempts must fail fast: against a tracking server, `log_batch` is one REST request with a
`REQUEST_TIMEOUT_S` timeout and no retries. The limits are passed to that request only; MLflow's
settings, and so the user's own MLflow calls, are left as they are. Other stores (a SQLite file)
go through `MlflowClient.log_batch`.
"""

from __future__ import annotations

import json
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING, Mapping, Sequence
from urllib.parse import urlparse

from mlflow.entities import Metric, RunTag
from mlflow.exceptions import MlflowException

if TYPE_CHECKING:
    from mlflow.tracking import MlflowClient

__all__ = ["REQUEST_TIMEOUT_S", "Transport", "is_transient"]

REQUEST_TIMEOUT_S = 5.0  # one attempt's limit (connect and read) against a tracking server
_LOG_BATCH = "/api/2.0/mlflow/runs/log-batch"  # MLflow's REST API
# What a failed attempt's message says (lower case) -> the reason shown to the user.
_REASONS = (("connection refused", "connection refused"),
            ("timeout", "no answer within {timeout_s:g} s"), ("timed out", "no answer within {timeout_s:g} s"),
            ("name or service not known", "unknown host"), ("name resolution", "unknown host"),
            ("connection reset", "connection reset"), ("remotedisconnected", "connection closed"),
            ("connection aborted", "connection closed"), ("database is locked", "database is locked"))


class Transport:
    """Delivers batches of records to one run, one attempt each; raises what failed (see
    `is_transient`).

    Args:
        run_id: the run.
        tracking_uri: its tracking server or store.
        timeout_s: the limit of one request to a tracking server.
    """

    def __init__(self, run_id: str, tracking_uri: str, *,
                 timeout_s: float = REQUEST_TIMEOUT_S) -> None:
        self.run_id, self.tracking_uri, self.timeout_s = run_id, tracking_uri, timeout_s
        self.is_server = urlparse(tracking_uri).scheme in ("http", "https")
        self._client: MlflowClient | None = None

    def send(self, metrics: Sequence[Metric] = (), tags: Sequence[RunTag] = ()) -> None:
        """One `log_batch` (at most 1000 points and 100 tags). With nothing to send it still
        asks: whether the run can be written to now."""
        if not self.is_server:
            self.client().log_batch(self.run_id, metrics=list(metrics), tags=list(tags),
                                    synchronous=True)
            return
        from mlflow.protos.service_pb2 import LogBatch
        from mlflow.utils.credentials import get_default_host_creds
        from mlflow.utils.proto_json_utils import message_to_json
        from mlflow.utils.rest_utils import http_request, verify_rest_response

        body = message_to_json(LogBatch(run_id=self.run_id, metrics=[m.to_proto() for m in metrics],
                                        tags=[t.to_proto() for t in tags]))
        response = http_request(get_default_host_creds(self.tracking_uri), _LOG_BATCH, "POST",
                                max_retries=0, backoff_factor=0, timeout=self.timeout_s,
                                json=json.loads(body))
        verify_rest_response(response, _LOG_BATCH)

    def upload(self, files: Mapping[str, bytes]) -> None:
        """Artifact files, by their path in the run (e.g. `fixlab/report.html`)."""
        with tempfile.TemporaryDirectory() as tmp:
            for name, data in files.items():
                path = Path(tmp, name)
                path.parent.mkdir(parents=True, exist_ok=True)
                path.write_bytes(data)
            self.client().log_artifacts(self.run_id, tmp)

    def reason(self, error: BaseException) -> str:
        """Why an attempt failed, in a few words for the user's one line."""
        text = " ".join(str(error).split())
        for needle, reason in _REASONS:
            if needle in text.lower():
                return reason.format(timeout_s=self.timeout_s)
        if isinstance(error, MlflowException):
            return f"HTTP {error.get_http_status_code()}: {text[:120]}"
        return f"{type(error).__name__}: {text[:120]}"

    def client(self) -> MlflowClient:
        """An MLflow client of the same store (created on first use)."""
        if self._client is None:
            from mlflow.tracking import MlflowClient

            self._client = MlflowClient(tracking_uri=self.tracking_uri)
        return self._client


def is_transient(error: BaseException) -> bool:
    """Whether an attempt may succeed later: the server is unreachable, timed out, or answered
    429 or 5xx. A 4xx answer (no such run, a deleted run, an invalid value) is final."""
    if isinstance(error, MlflowException):
        status = error.get_http_status_code()
        return status == 429 or status >= 500
    # A connection error or timeout (requests' errors are OSErrors); a busy SQLite file.
    return isinstance(error, OSError) or type(error).__name__ == "OperationalError"
