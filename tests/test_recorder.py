"""Recorder against a real MLflow SQLite store: metrics, run resolution, findings, failures."""

from __future__ import annotations

import html
import json
import math
from pathlib import Path

import mlflow
import numpy as np
import pytest
from mlflow import MlflowClient

from mlflow_plugins.analysis.snapshot import GradFlow
from mlflow_plugins.findings import Finding
from mlflow_plugins.recording import BATCH_SIZE, Recorder, RecordingWarning


def _grad_flow() -> GradFlow:
    """Three observed steps; `encoder.proj.weight` never received a gradient."""
    return GradFlow(names=("encoder.proj.weight", "encoder.proj.bias", "head.weight"),
                    mean_abs_sum=np.array([0.0, 3e-3, 3e-2]), max_l2=np.array([0.0, 0.5, 2.0]),
                    received=np.array([False, True, True]), observations=3, steps=[0, 1, 2],
                    total_norm=[2.06, 2.06, 2.06])


def _artifacts(run_id: str, tmp_path: Path) -> Path:
    return Path(MlflowClient().download_artifacts(run_id, "fixlab", str(tmp_path / "dl")))


def test_every_buffered_point_reaches_the_run(tracking_uri: str) -> None:
    steps = 1250  # 2 keys: 2500 points, crossing two 1000-metric batch boundaries
    assert 2 * steps > 2 * BATCH_SIZE
    with mlflow.start_run() as run:
        recorder = Recorder.resolve()
        for step in range(steps):
            recorder.log_metrics({"train/loss": step / 10, "grad_norm/total": float(step)}, step)
        recorder.log_metrics({"train/loss": math.nan, "grad_norm/total": math.inf}, steps)
        recorder.close()
        recorder.close()  # idempotent
    client = MlflowClient()
    loss = {m.step: m.value for m in client.get_metric_history(run.info.run_id, "train/loss")}
    norm = {m.step: m.value for m in client.get_metric_history(run.info.run_id, "grad_norm/total")}
    assert sorted(loss) == sorted(norm) == list(range(steps + 1))
    assert all(loss[s] == pytest.approx(s / 10) and norm[s] == s for s in range(steps))
    assert math.isnan(loss[steps]) and norm[steps] > 1e300  # MLflow stores +inf as float max


def test_non_numeric_metric_is_dropped_with_a_warning(tracking_uri: str) -> None:
    with mlflow.start_run() as run:
        recorder = Recorder.resolve()
        with pytest.warns(RecordingWarning, match=r"\['label'\] at step 3 are not numbers"):
            recorder.log_metrics({"label": "cat", "train/loss": 0.5}, step=3)
        recorder.close()
    assert MlflowClient().get_run(run.info.run_id).data.metrics == {"train/loss": 0.5}


def test_resolve_prefers_the_given_then_the_active_run(tracking_uri: str, monkeypatch) -> None:
    with mlflow.start_run() as run:
        monkeypatch.setenv("MLFLOW_RUN_ID", "from-env")  # after start_run, which would resume it
        assert Recorder.resolve().run_id == run.info.run_id
        assert Recorder.resolve("given").run_id == "given"
        assert Recorder.resolve(tracking_uri="sqlite:///other.db").tracking_uri.endswith("other.db")
        assert Recorder.resolve().tracking_uri == tracking_uri


def test_resolve_falls_back_to_mlflow_run_id_then_none(tracking_uri: str, monkeypatch) -> None:
    monkeypatch.delenv("MLFLOW_RUN_ID", raising=False)
    assert Recorder.resolve() is None
    monkeypatch.setenv("MLFLOW_RUN_ID", "abc123")
    assert Recorder.resolve().run_id == "abc123"


@pytest.mark.parametrize("var, value, logs", [
    ("RANK", "1", False), ("LOCAL_RANK", "3", False),
    ("RANK", "0", True), ("LOCAL_RANK", "0", True),
])
def test_resolve_logs_only_on_rank_zero(tracking_uri: str, monkeypatch, var: str, value: str,
                                        logs: bool) -> None:
    monkeypatch.setenv(var, value)
    assert (Recorder.resolve("some-run") is not None) is logs


def test_write_findings_sets_tags_and_artifacts(tracking_uri: str, tmp_path: Path) -> None:
    finding = Finding.of("GRAD_NEVER_UPDATED", 3, "encoder.proj.weight", {"steps_without_grad": 3})
    with mlflow.start_run() as run:
        Recorder.resolve().write_findings(
            [finding], _grad_flow(),
            sections={"Claims": "<table><tr><td>claim-1</td></tr></table>"},
            thresholds={"vanishing": 1e-6})
    tags = MlflowClient().get_run(run.info.run_id).data.tags
    assert tags["fixlab.health"] == "critical"
    assert tags["fixlab.findings"] == "GRAD_NEVER_UPDATED"
    art = _artifacts(run.info.run_id, tmp_path)
    document = json.loads((art / "findings.json").read_text())
    assert document["health"] == "critical"
    assert [Finding.from_dict(d) for d in document["findings"]] == [finding]
    page = (art / "report.html").read_text()
    assert "encoder.proj.weight" in page and html.escape(finding.hint) in page
    assert "claim-1" in page
    assert (art / "grad_flow.png").read_bytes().startswith(b"\x89PNG")


def test_healthy_write_is_ok_with_no_codes(tracking_uri: str, tmp_path: Path) -> None:
    with mlflow.start_run() as run:
        Recorder.resolve().write_findings([], GradFlow())  # no observations: no figure
    tags = MlflowClient().get_run(run.info.run_id).data.tags
    assert (tags["fixlab.health"], tags["fixlab.findings"]) == ("ok", "")
    art = _artifacts(run.info.run_id, tmp_path)
    assert json.loads((art / "findings.json").read_text()) == {"health": "ok", "findings": []}
    assert not (art / "grad_flow.png").exists()


def test_write_findings_again_records_the_union(tracking_uri: str, tmp_path: Path) -> None:
    early = Finding.of("GRAD_VANISHING", 5, "head.weight", {"mean_abs": 1e-9})
    late_duplicate = Finding.of("GRAD_VANISHING", 9, "head.weight", {"mean_abs": 1e-10})
    nonfinite = Finding.of("NONFINITE", 7, "loss", {"dtype": "float16"})
    with mlflow.start_run() as run:
        Recorder.resolve().write_findings([early], _grad_flow(), sections={"Claims": "claims-v1"})
        # A second Recorder of the same run (e.g. another callback) keeps what the first wrote.
        other = Recorder.resolve()
        other.write_findings([late_duplicate, nonfinite])
        other.write_findings([late_duplicate, nonfinite])
    tags = MlflowClient().get_run(run.info.run_id).data.tags
    assert tags["fixlab.health"] == "critical"
    assert tags["fixlab.findings"] == "GRAD_VANISHING,NONFINITE"
    art = _artifacts(run.info.run_id, tmp_path)
    document = json.loads((art / "findings.json").read_text())
    recorded = [Finding.from_dict(d) for d in document["findings"]]
    assert recorded == [early, nonfinite]
    assert "claims-v1" in (art / "report.html").read_text()
    assert (art / "grad_flow.png").exists()


def test_mlflow_failures_warn_instead_of_raising(tracking_uri: str) -> None:
    recorder = Recorder("0" * 32, tracking_uri)  # no such run
    recorder.log_metrics({"train/loss": 1.0}, step=0)
    with pytest.warns(RecordingWarning) as caught:
        recorder.close()
        recorder.set_tags({"a": "b"})
        recorder.write_findings([Finding.of("NONFINITE", 1, "loss")])
    messages = [str(w.message) for w in caught]
    assert len(messages) == 3 and all("\n" not in m for m in messages)
    for message, what in zip(messages, ["logging 1 metric points", "setting tags ['a']",
                                        "writing 1 findings"]):
        assert message.startswith(f"fixlab: {what} for MLflow run {'0' * 32} failed: ")
        assert "not found" in message


def test_an_unreadable_recorded_file_is_replaced(tracking_uri: str, tmp_path: Path) -> None:
    finding = Finding.of("NONFINITE", 1, "loss")
    with mlflow.start_run() as run:
        mlflow.log_text("not json", "fixlab/findings.json")
        with pytest.warns(RecordingWarning, match="reading the recorded fixlab/findings.json"):
            Recorder.resolve().write_findings([finding])
    document = json.loads((_artifacts(run.info.run_id, tmp_path) / "findings.json").read_text())
    assert document["findings"] == [finding.to_dict()]


def test_a_deleted_run_warns_instead_of_raising(tracking_uri: str) -> None:
    client = MlflowClient()
    run_id = client.create_run("0").info.run_id
    recorder = Recorder(run_id)
    recorder.log_metrics({"train/loss": 1.0}, step=0)
    client.delete_run(run_id)
    with pytest.warns(RecordingWarning, match=f"run {run_id} failed"):
        recorder.close()
