"""Recorder against a real `mlflow server` process on 127.0.0.1, read back over HTTP."""

from __future__ import annotations

import html
import json
import math
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path
from typing import Iterator

import numpy as np
import pytest
from mlflow import MlflowClient

from mlflow_plugins.analysis.snapshot import GradFlow
from mlflow_plugins.findings import Finding
from mlflow_plugins.recording import Recorder, RecordingWarning

_START_TIMEOUT_S = 60.0


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def server_uri(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A tracking server with a SQLite backend; artifacts go through it (proxied)."""
    root = tmp_path_factory.mktemp("mlflow_server")
    port = _free_port()
    log = (root / "server.log").open("w")
    server = subprocess.Popen(
        [sys.executable, "-m", "mlflow", "server", "--backend-store-uri", f"sqlite:///{root}/db",
         "--default-artifact-root", "mlflow-artifacts:/", "--artifacts-destination",
         str(root / "art"), "--host", "127.0.0.1", "--port", str(port), "--workers", "1"],
        stdout=log, stderr=subprocess.STDOUT, cwd=root, start_new_session=True,
        # No job runner (one more process to start and stop); no telemetry attempts.
        env={**os.environ, "MLFLOW_SERVER_ENABLE_JOB_EXECUTION": "false",
             "MLFLOW_DISABLE_TELEMETRY": "true"})
    uri = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + _START_TIMEOUT_S
        while True:
            if server.poll() is not None:
                pytest.fail(f"mlflow server exited with {server.returncode}:\n"
                            f"{(root / 'server.log').read_text()[-3000:]}")
            try:
                with urllib.request.urlopen(f"{uri}/health", timeout=2) as response:
                    if response.status == 200:
                        break
            except OSError:
                pass
            if time.monotonic() > deadline:
                pytest.fail(f"mlflow server did not answer /health within {_START_TIMEOUT_S} s:\n"
                            f"{(root / 'server.log').read_text()[-3000:]}")
            time.sleep(0.25)
        yield uri
    finally:
        _stop(server)
        log.close()


def _stop(server: subprocess.Popen) -> None:
    """SIGTERM, then SIGKILL, to the server's own process group (uvicorn runs as its child)."""
    for sig in (signal.SIGTERM, signal.SIGKILL):
        try:
            os.killpg(server.pid, sig)
        except ProcessLookupError:
            return  # the whole group has exited
        try:
            server.wait(timeout=10)
        except subprocess.TimeoutExpired:
            pass


def test_metrics_and_findings_round_trip_through_the_server(server_uri: str,
                                                            tmp_path: Path) -> None:
    client = MlflowClient(tracking_uri=server_uri)
    run_id = client.create_run("0").info.run_id
    flow = GradFlow(names=("encoder.proj.weight", "head.weight"), mean_abs_sum=np.array([0, 3e-2]),
                    max_l2=np.array([0.0, 2.0]), received=np.array([False, True]),
                    observations=3, steps=[0, 1, 2], total_norm=[2.0, 2.0, 2.0])
    finding = Finding.of("GRAD_NEVER_UPDATED", 3, "encoder.proj.weight", {"steps": 3})

    with Recorder(run_id, server_uri) as recorder:
        for step in range(1200):  # 2400 points: three batches
            recorder.log_metrics({"train/loss": 1.0 / (step + 1), "grad_norm/total": step}, step)
        recorder.log_metrics({"train/loss": math.nan}, 1200)
        recorder.write_findings([finding], flow)

    loss = {m.step: m.value for m in client.get_metric_history(run_id, "train/loss")}
    norm = client.get_metric_history(run_id, "grad_norm/total")
    assert sorted(loss) == list(range(1201)) and math.isnan(loss[1200])
    assert sorted(m.step for m in norm) == list(range(1200))
    tags = client.get_run(run_id).data.tags
    assert (tags["fixlab.health"], tags["fixlab.findings"]) == ("critical", "GRAD_NEVER_UPDATED")
    assert client.get_run(run_id).info.artifact_uri.startswith("mlflow-artifacts:")
    art = Path(client.download_artifacts(run_id, "fixlab", str(tmp_path)))
    document = json.loads((art / "findings.json").read_text())
    assert [Finding.from_dict(d) for d in document["findings"]] == [finding]
    page = (art / "report.html").read_text()
    assert "encoder.proj.weight" in page and html.escape(finding.hint) in page
    assert (art / "grad_flow.png").read_bytes().startswith(b"\x89PNG")


def test_healthy_write_through_the_server(server_uri: str) -> None:
    client = MlflowClient(tracking_uri=server_uri)
    run_id = client.create_run("0").info.run_id
    with Recorder(run_id, server_uri) as recorder:
        recorder.write_findings([])
    tags = client.get_run(run_id).data.tags
    assert (tags["fixlab.health"], tags["fixlab.findings"]) == ("ok", "none")


def test_an_unreachable_server_warns_instead_of_raising(tmp_path: Path,
                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FIXLAB_SPOOL", str(tmp_path))  # what cannot be sent is kept here
    spool = tmp_path / f"{'0' * 32}.jsonl"
    recorder = Recorder("0" * 32, f"http://127.0.0.1:{_free_port()}")
    recorder.log_metrics({"train/loss": 1.0}, step=0)
    with pytest.warns(RecordingWarning) as caught:
        recorder.close()
        recorder.write_findings([Finding.of("NONFINITE", 1, "loss")])
    messages = [str(w.message) for w in caught]
    assert len(messages) == 2 and "unreachable since" in messages[0], messages
    assert f"send them with `fixlab replay {spool}`" in messages[1]
    assert spool.exists()  # the point, the two tags and the report files