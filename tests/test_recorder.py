"""Recorder against a real MLflow SQLite store: metrics, run resolution, findings, failures, and a
tracking server that is away (spool and replay)."""

from __future__ import annotations

import argparse
import html
import json
import math
import shutil
import socket
import warnings
from pathlib import Path

import mlflow
import numpy as np
import pytest
from mlflow import MlflowClient
from mlflow.entities import Metric

from mlflow_plugins.analysis.snapshot import GradFlow
from mlflow_plugins.findings import Finding
from mlflow_plugins.recording import BATCH_SIZE, Recorder, RecordingWarning
from mlflow_plugins.recording.spool_file import SpoolFile, read_spool
from mlflow_plugins.recording.transport import Transport
from mlflow_plugins.spool import COMMAND, replay


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
    assert (tags["fixlab.health"], tags["fixlab.findings"]) == ("ok", "none")
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
    assert tags["fixlab.findings"] == "NONFINITE,GRAD_VANISHING"  # critical first
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


# --- a tracking server that is away (issue 9, item 3); the real-server outage test is in
# --- tests/integration/test_server_outage.py

def _dead_uri() -> str:
    """An http tracking URI where nothing listens: every attempt is refused at once."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return f"http://127.0.0.1:{s.getsockname()[1]}"


def _recording_lines(caught) -> list[str]:
    return [str(w.message) for w in caught if issubclass(w.category, RecordingWarning)]


def test_an_identical_point_sent_again_lands_once(tracking_uri: str) -> None:
    """What exactly-once delivery rests on: MLflow's SQL store skips a point it already holds
    (same key, value, step, timestamp), while a new timestamp is a new point."""
    run_id = MlflowClient().create_run("0").info.run_id
    transport = Transport(run_id, tracking_uri)
    batch = [Metric("train/loss", 0.5, 1_700_000_000_000, 3), Metric("acc", 0.9, 1_700_000_000_000, 3)]
    transport.send(batch)
    transport.send(batch)  # a batch whose response was lost, sent again
    assert len(MlflowClient().get_metric_history(run_id, "train/loss")) == 1
    transport.send([Metric("train/loss", 0.5, 1_700_000_000_001, 3)])
    assert len(MlflowClient().get_metric_history(run_id, "train/loss")) == 2


def test_an_unreachable_server_spools_and_replay_sends_each_point_once(tracking_uri: str,
                                                                       tmp_path: Path) -> None:
    run_id = MlflowClient().create_run("0").info.run_id
    recorder = Recorder(run_id, _dead_uri(), max_buffered=10, spool_dir=tmp_path / "spool")
    most_in_memory = 0
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        for step in range(30):
            recorder.log_metrics({"train/loss": 1.0 / (step + 1), "grad_norm/total": step}, step)
            if step % 5 == 4:
                recorder.flush()
            most_in_memory = max(most_in_memory, recorder.unsent.in_memory)
        recorder.write_findings([Finding.of("NONFINITE", 7, "loss")])
        recorder.close()
    spool = tmp_path / "spool" / f"{run_id}.jsonl"
    lines = _recording_lines(caught)
    assert most_in_memory <= 2 * 10  # the bound, plus the batch being retried
    assert len(lines) == 2, lines
    assert lines[0].startswith(f"fixlab: tracking server {recorder.tracking_uri} unreachable since ")
    assert "buffering metrics" in lines[0] and str(spool) in lines[0]
    assert f"kept in {spool}; send them with `fixlab replay {spool}`" in lines[1]
    assert recorder.unsent.in_memory == 0 and recorder.unsent.spooled >= 60

    again = tmp_path / "again.jsonl"
    shutil.copyfile(spool, again)
    [done] = replay(spool.parent, tracking_uri=tracking_uri)
    assert (done.run_id, done.error, spool.exists()) == (run_id, None, False)
    assert done.sent >= 60 + 2 + 3  # the points, two tags, three report files
    [twice] = replay(again, tracking_uri=tracking_uri)  # landed already: nothing is added
    assert twice.error is None
    client = MlflowClient()
    for key in ("train/loss", "grad_norm/total"):
        assert sorted(m.step for m in client.get_metric_history(run_id, key)) == list(range(30))
    tags = client.get_run(run_id).data.tags
    assert (tags["fixlab.health"], tags["fixlab.findings"]) == ("critical", "NONFINITE")
    assert {f.path for f in client.list_artifacts(run_id, "fixlab")} >= {
        "fixlab/findings.json", "fixlab/report.html"}


def test_a_spool_cut_short_mid_line_keeps_every_whole_record(tmp_path: Path) -> None:
    """A process killed mid-write leaves half a line; the next one starts a fresh line after it.
    Lines that are not records are skipped, never fatal."""
    path = tmp_path / "run1.jsonl"
    SpoolFile(path, "run1", "http://tracker").append([Metric("a", 1.0, 10, 0)])
    with path.open("a") as out:
        out.write('[1, 2]\n{"m": ["a key alone"]}\n{"m": ["a", 2.0, 1')  # the last cut short
    SpoolFile(path, "run1", "http://tracker").append([Metric("a", math.nan, 30, 2)])
    spool, chunks = read_spool(path)
    points = [m for chunk in chunks for m in chunk.metrics]
    assert spool.run_id == "run1" and [(m.step, m.timestamp) for m in points] == [(0, 10), (2, 30)]
    assert math.isnan(points[1].value)


def test_fixlab_replay_command(tracking_uri: str, tmp_path: Path, capsys) -> None:
    run_id = MlflowClient().create_run("0").info.run_id
    SpoolFile(tmp_path / f"{run_id}.jsonl", run_id, _dead_uri()).append(
        [Metric("train/loss", 0.25, 1_700_000_000_000, 4)])
    (tmp_path / "notes.txt").write_text("not a spool")
    parser = argparse.ArgumentParser()
    COMMAND.add_arguments(parser)
    code = COMMAND.handler(parser.parse_args([str(tmp_path), "--tracking-uri", tracking_uri]))
    assert code == 0 and f"1 records sent to run {run_id}" in capsys.readouterr().out
    assert [m.step for m in MlflowClient().get_metric_history(run_id, "train/loss")] == [4]

    for bad, why in [(tmp_path / "missing.jsonl", "does not exist"),
                     (tmp_path / "notes.txt", "is not a fixlab spool file")]:
        assert COMMAND.handler(parser.parse_args([str(bad)])) == 2
        err = capsys.readouterr().err
        assert err.startswith(f"fixlab replay: path={str(bad)!r} {why}") and err.count("\n") == 1


@pytest.mark.parametrize("kwargs, match", [
    ({"max_buffered": 0}, r"max_buffered=0 is not allowed; allowed: an int >= 1"),
    ({"close_timeout_s": -1}, r"close_timeout_s=-1 is not allowed; allowed: a number"),
])
def test_bad_spool_settings_are_refused(kwargs: dict, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        Recorder("run", "sqlite:///x.db", **kwargs)


def test_resume_first_sends_the_spool_an_interrupted_process_left(tracking_uri: str,
                                                                   tmp_path: Path) -> None:
    """A process that died during an outage left points in the spool: a resumed run sends them
    before it reads what the run holds, so the re-run steps are not logged a second time."""
    run_id = MlflowClient().create_run("0").info.run_id
    SpoolFile(tmp_path / f"{run_id}.jsonl", run_id, tracking_uri).append(
        [Metric("train/loss", 1.0 / (s + 1), 1_700_000_000_000 + s, s) for s in range(5)])
    recorder = Recorder(run_id, tracking_uri, spool_dir=tmp_path)
    assert recorder.resume().last == {"train/loss": 4}
    assert not (tmp_path / f"{run_id}.jsonl").exists()
    for step in range(3, 7):  # the re-run from a checkpoint at step 3
        recorder.log_metrics({"train/loss": 1.0 / (step + 1)}, step)
    recorder.close()
    history = MlflowClient().get_metric_history(run_id, "train/loss")
    assert sorted(m.step for m in history) == list(range(7))


def test_flush_sends_what_was_queued_and_wait_flushed_waits_for_only_that(tracking_uri: str) -> None:
    """Points logged after a flush wait for the next one (batches stay large); close sends all."""
    run_id = MlflowClient().create_run("0").info.run_id
    recorder = Recorder(run_id, tracking_uri)
    for step in range(10):
        recorder.log_metrics({"train/loss": float(step)}, step)
    recorder.flush()
    for step in range(10, 13):
        recorder.log_metrics({"train/loss": float(step)}, step)
    assert recorder.wait_flushed(timeout_s=30)
    assert len(MlflowClient().get_metric_history(run_id, "train/loss")) == 10
    assert recorder.unsent == (3, 0)
    recorder.close()
    assert len(MlflowClient().get_metric_history(run_id, "train/loss")) == 13
