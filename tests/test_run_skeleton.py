"""The project skeleton without a model: `open_run` / `finish_run` on a toy project, the run's
checkpoint folder and its lock, metric steps a continued run must not log twice, and the
refusals of `fixlab resume`. Real MLflow on a temporary SQLite store."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import mlflow
import pytest

from mlflow_plugins.cli import main as fixlab
from mlflow_plugins.recording import LoggedSteps
from mlflow_plugins.registry import RegistrationResult
from mlflow_plugins.run_record import run_report
from projects.common.config import RunConfig
from projects.common.run import finish_run, open_run
from projects.common.run_folder import CHECKPOINTS_TAG, RunBusyError, RunFolder
from projects.common.spec import ProjectSpec

CLAIMS = """document: toy.txt
claims:
  - {id: learns, variant: toy_a, quote: "it learns", figure: "> 0.5", metric: val/acc, expect: {min: 0.5}}
"""


@dataclass(frozen=True)
class ToyConfig(RunConfig):
    variant: str = "toy_a"
    width: tuple[int, ...] = (2, 3)

    @property
    def entry_point(self) -> str:
        return self.variant


@pytest.fixture
def spec(tmp_path: Path) -> ProjectSpec:
    claims = tmp_path / "claims.yaml"
    claims.write_text(CLAIMS)
    return ProjectSpec("toy", "toy.txt", "toy-model", claims, "val/acc")


@pytest.fixture
def checkpoints(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("FIXLAB_CHECKPOINTS", str(tmp_path / "ckpt"))
    return tmp_path / "ckpt"


def _unregistered(health: str) -> RegistrationResult:
    return RegistrationResult("toy-model", None, False, f"not registered (health={health})")


def test_a_finished_run_is_tagged_measured_and_leaves_no_checkpoints(tracking_uri, spec, checkpoints) -> None:
    with open_run(spec, ToyConfig()) as run:
        folder = run.folder.path
        assert folder == checkpoints / run.run_id and (folder / "config.json").is_file()
        run.log_metrics({"val/acc": 0.75, "none": None}, step=3)
        summary = finish_run(run, findings=[], metrics={"val/acc": 0.75, "test/acc": None},
                             register=_unregistered, headline=["val/acc 0.75"], sections={"More": "<p>x</p>"})
    client = mlflow.MlflowClient()
    got = client.get_run(summary.run_id)
    assert got.info.status == "FINISHED" and not folder.exists()
    assert got.data.tags["fixlab.project"] == "toy" and got.data.tags["fixlab.variant"] == "toy_a"
    assert got.data.tags["fixlab.claim.learns"] == "reproduced"
    assert got.data.metrics["val/acc"] == 0.75 and "none" not in got.data.metrics
    assert summary.health == "ok" and summary.claims[0][3] == "reproduced"
    assert summary.registration == "not registered (health=ok)" and summary.metrics == {"val/acc": 0.75}
    report = Path(client.download_artifacts(summary.run_id, "fixlab/report.html"))
    assert "Claims of Document toy.txt" in report.read_text() and "More" in report.read_text()
    # Readable at a glance in the runs list: entry point, health and seed.
    assert got.info.run_name == "toy_a-ok-seed0" and got.data.tags["fixlab.document_title"] == "Document toy.txt"
    assert "learns" in got.data.tags["mlflow.note.content"]
    # The terminal says where to look next: the run, its report, the command that opens it.
    text = summary.text()
    assert f"run toy_a-ok-seed0 ({run.run_id})" in text and "fixlab/report.html" in text
    assert "mlflow ui --backend-store-uri sqlite:////" in text and f"/runs/{run.run_id}" in text


def test_a_run_that_fails_keeps_its_folder_and_config_for_resume(tracking_uri, spec, checkpoints) -> None:
    config = ToyConfig(seed=7, width=(4,))
    with pytest.raises(RuntimeError, match="boom"):
        with open_run(spec, config) as run:
            raise RuntimeError("boom")
    got = mlflow.MlflowClient().get_run(run.run_id)
    assert got.info.status == "FAILED"
    folder = RunFolder(got.data.tags[CHECKPOINTS_TAG])
    project, text = folder.read_config()
    assert project == "toy" and ToyConfig.from_json(text) == config


def test_a_continued_run_logs_each_step_once(tracking_uri, spec, checkpoints) -> None:
    with pytest.raises(RuntimeError):
        with open_run(spec, ToyConfig()) as run:
            for step in range(6):
                run.log_metrics({"a": float(step)}, step=step)
                run.report.log({"b": float(step)}, step=step)
            raise RuntimeError("died at step 5")
    with open_run(spec, ToyConfig(), resume=run.run_id) as again:  # re-runs from step 3
        assert again.resumed and again.folder.path == run.folder.path and again.logged.last == {"a": 5, "b": 5}
        for step in range(3, 9):
            again.log_metrics({"a": float(step)}, step=step)
            again.report.log({"b": float(step)}, step=step)
    client = mlflow.MlflowClient()
    for key in "ab":
        assert sorted(m.step for m in client.get_metric_history(run.run_id, key)) == list(range(9))
    got = client.get_run(run.run_id)
    assert got.info.status == "FINISHED" and got.data.tags["fixlab.resumes"] == "1"


def test_logged_steps_keep_only_the_points_the_run_lacks() -> None:
    logged = LoggedSteps({"loss": 10})
    assert logged.fresh({"loss": 1.0, "acc": 0.5}, step=10) == {"acc": 0.5}
    assert logged.fresh({"loss": 1.0}, step=9) == {}
    assert logged.fresh({"loss": 1.0}, step=11) == {"loss": 1.0}
    assert not LoggedSteps() and LoggedSteps().fresh({"x": 1.0}, 0) == {"x": 1.0}
    # A metric logged twice a step (Lightning's `epoch`), the run killed between the two points:
    twice = LoggedSteps({"epoch": 4}, {"epoch": 1})
    assert [bool(twice.fresh({"epoch": 0.0}, step)) for step in (3, 4, 4, 5)] == [False, False, True, True]


def test_recorder_resume_reads_the_runs_last_steps(tracking_uri) -> None:
    with mlflow.start_run() as active:
        mlflow.log_metrics({"a": 2.0}, step=2)
        mlflow.log_metrics({"a": 1.0}, step=4)
        mlflow.log_metrics({"a": 1.5}, step=4)
    with run_report(active.info.run_id) as report:
        assert report.resume().last == {"a": 4}
        for step, value in ((2, 9.0), (4, 3.0), (4, 3.5), (4, 4.0), (5, 5.0)):  # the re-run
            report.log({"a": value}, step=step)
    points = sorted((m.step, m.value) for m in mlflow.MlflowClient().get_metric_history(active.info.run_id, "a"))
    assert points == [(2, 2.0), (4, 1.0), (4, 1.5), (4, 4.0), (5, 5.0)]


def test_a_held_folder_refuses_a_second_holder(tmp_path: Path) -> None:
    folder = RunFolder(tmp_path / "run")
    with folder.hold():
        with pytest.raises(RunBusyError, match="held by another live process"):
            with RunFolder(tmp_path / "run").hold():
                pass
    with RunFolder(tmp_path / "run").hold():  # released with the block
        pass


def test_a_folder_without_a_config_is_refused(tmp_path: Path) -> None:
    (tmp_path / "config.json").write_text('["not", "a", "config"]')
    with pytest.raises(ValueError, match="not a fixlab run config"):
        RunFolder(tmp_path).read_config()


def _resume(run_id: str, capsys) -> tuple[int, str]:
    capsys.readouterr()
    code = fixlab(["resume", run_id])
    return code, capsys.readouterr().err.strip()


def test_fixlab_resume_refuses_what_it_cannot_continue(tracking_uri, spec, checkpoints, capsys) -> None:
    code, err = _resume("0123456789abcdef", capsys)
    assert code == 2 and err.startswith("fixlab resume: no run '0123456789abcdef'") and "\n" not in err

    with open_run(spec, ToyConfig()) as run:
        pass
    code, err = _resume(run.run_id, capsys)
    assert code == 2 and f"run {run.run_id} is FINISHED; allowed: a run that died" in err

    with mlflow.start_run() as plain:
        pass
    mlflow.MlflowClient().set_terminated(plain.info.run_id, "FAILED")
    code, err = _resume(plain.info.run_id, capsys)
    assert code == 2 and "not started by a fixlab project" in err

    with pytest.raises(RuntimeError):
        with open_run(spec, ToyConfig()) as gone:
            gone.folder.remove()
            raise RuntimeError("and its folder was deleted")
    code, err = _resume(gone.run_id, capsys)
    assert code == 2 and "checkpoint folder" in err and "is gone" in err


def test_fixlab_resume_leaves_a_run_that_is_still_training_alone(tracking_uri, spec, checkpoints, capsys) -> None:
    with open_run(spec, ToyConfig()) as run:
        code, err = _resume(run.run_id, capsys)
        assert code == 2 and "held by another live process" in err
        assert mlflow.MlflowClient().get_run(run.run_id).info.status == "RUNNING"


def test_the_registered_tag_says_what_became_of_the_model(tracking_uri, spec, checkpoints) -> None:
    client = mlflow.MlflowClient()
    with open_run(spec, ToyConfig()) as run:
        finish_run(run, findings=[], metrics={"val/acc": 0.75}, register=_unregistered, headline=[])
    assert client.get_run(run.run_id).data.tags["fixlab.registered"] == "false: not registered (health=ok)"

    with open_run(spec, ToyConfig()) as run:
        finish_run(run, findings=[], metrics={"val/acc": 0.75}, headline=[],
                   register=lambda health: RegistrationResult("toy-model", 3, True, "became champion"))
    assert client.get_run(run.run_id).data.tags["fixlab.registered"] == "true: version 3 (became champion)"

    def outage(health: str) -> RegistrationResult:
        raise ConnectionError("tracking server unreachable\nretries exhausted")

    with pytest.raises(ConnectionError):
        with open_run(spec, ToyConfig()) as run:
            finish_run(run, findings=[], metrics={"val/acc": 0.75}, register=outage, headline=[])
    failed = client.get_run(run.run_id)
    assert failed.info.status == "FAILED"
    assert failed.data.tags["fixlab.registered"] == "false: ConnectionError: tracking server unreachable"
