"""`mlflow run . -e repr_fixed / repr_broken` end to end on tiny data, read back from the store.

The runs are real: `mlflow run` in a subprocess with a temporary SQLite tracking store, the
entry script, Lightning, the fixlab callbacks, claims and registration.
"""

from __future__ import annotations

import importlib.metadata
import json

import subprocess
from pathlib import Path

import mlflow
import pytest
from _mlflow_run import mlflow_run

TINY = ["-P", "n_samples=24", "-P", "n_classes=4", "-P", "epochs=3", "-P", "batch_size=8", "-P", "log_every=1"]


def _mlflow_run(entry: str, tmp_path: Path, experiment: str | None = "repr_e2e"
                ) -> tuple[mlflow.entities.Run, subprocess.CompletedProcess]:
    client, result = mlflow_run(entry, tmp_path, experiment, TINY)
    # No experiment named: the project's own, never `Default`.
    runs = client.search_runs([client.get_experiment_by_name(experiment or "repr_gradflow").experiment_id])
    assert len(runs) == 1, "the script must log into the run `mlflow run` created, not open another"
    return runs[0], result


def _check_common(run: mlflow.entities.Run, variant: str) -> None:
    assert run.info.status == "FINISHED"
    tags, metrics, params = run.data.tags, run.data.metrics, run.data.params
    assert tags["fixlab.project"] == "repr_gradflow"
    assert tags["fixlab.version"] == importlib.metadata.version("fixlab")
    assert tags["fixlab.variant"] == variant
    assert tags["fixlab.document"] == "001_bac714bd05ae718b.txt"
    assert tags["fixlab.health"] in ("ok", "warning", "critical")
    for name in ("train/loss_epoch", "train/acc", "val/acc", "test/acc", "repr/param_change",
                 "n_params/representation", "optimizer_params/representation"):
        assert name in metrics, f"{name} missing; logged: {sorted(metrics)}"
    assert params["epochs"] == "3" and params["variant"] == variant.removeprefix("repr_")
    assert metrics["optimizer_params/representation"] == metrics["n_params/representation"] > 0
    assert any(k.startswith("fixlab.claim.") for k in tags)


def test_mlflow_run_repr_fixed(tmp_path: Path) -> None:
    run, result = _mlflow_run("repr_fixed", tmp_path)
    _check_common(run, "repr_fixed")
    assert run.data.metrics["repr/param_change"] > 0
    assert "GRAD_NEVER_UPDATED" not in run.data.tags.get("fixlab.findings", "")
    assert "test/acc" in result.stdout and "health" in result.stdout
    client = mlflow.MlflowClient(tracking_uri=f"sqlite:///{tmp_path / 'mlflow.db'}")
    versions = client.search_model_versions("name='repr-gradflow'")
    assert [v.run_id for v in versions] == [run.info.run_id]
    artifacts = {a.path for a in client.list_artifacts(run.info.run_id, "fixlab")}
    assert {"fixlab/findings.json", "fixlab/report.html", "fixlab/claims.json"} <= artifacts


def test_mlflow_run_repr_broken_is_flagged(tmp_path: Path) -> None:
    run, result = _mlflow_run("repr_broken", tmp_path, experiment=None)
    _check_common(run, "repr_broken")
    assert run.data.metrics["repr/param_change"] == 0.0
    tags = run.data.tags
    assert tags["fixlab.health"] == "critical"
    assert "GRAD_NEVER_UPDATED" in tags["fixlab.findings"].split(",")
    # Sick at a glance: the name, the description and the experiment say it.
    assert run.info.run_name == "repr_broken-critical-seed0"
    note = tags["mlflow.note.content"]
    assert "critical" in note and "GRAD_NEVER_UPDATED" in note and "fixlab/report.html" in note
    assert "Claims of Document 001 (Representation learning whose gradients never flowed)" in note
    findings = json.loads(Path(mlflow.artifacts.download_artifacts(
        run_id=run.info.run_id, artifact_path="fixlab/findings.json",
        tracking_uri=f"sqlite:///{tmp_path / 'mlflow.db'}")).read_text())["findings"]
    never = [f for f in findings if f["code"] == "GRAD_NEVER_UPDATED"]
    assert never and all(f["document"].startswith("Document 001 (") and "extract_features()" in f["document"]
                         for f in never)
    assert all("Document" not in f["message"] + f["hint"] for f in findings)
    # The console: one line per finding code, not one per parameter.
    lines = [line for line in result.stderr.splitlines() if "GRAD_NEVER_UPDATED" in line]
    assert len(lines) == 1, lines


def test_failure_mid_training_leaves_the_run_failed(tracking_uri: str, tmp_path: Path,
                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    from lightning_modules.repr_gradflow import ReprGradflowModule
    from projects.repr_gradflow import ReprGradflowConfig, train_and_evaluate

    for name in ("MLFLOW_RUN_ID", "MLFLOW_EXPERIMENT_ID", "MLFLOW_EXPERIMENT_NAME"):
        monkeypatch.delenv(name, raising=False)
    calls = []

    def failing_step(self, batch, batch_idx):
        calls.append(batch_idx)
        if len(calls) == 2:  # after a real first step: the run is well under way
            raise RuntimeError("planted failure in training_step")
        return ReprGradflowModule._step(self, batch, "train")

    monkeypatch.setattr(ReprGradflowModule, "training_step", failing_step)
    config = ReprGradflowConfig(n_samples=24, n_classes=4, epochs=2, batch_size=8, log_every=1,
                                experiment_name="repr_failure", cache_dir=str(tmp_path / "cache"))
    with pytest.raises(RuntimeError, match="planted failure"):
        train_and_evaluate(config)
    client = mlflow.MlflowClient()
    runs = client.search_runs([client.get_experiment_by_name("repr_failure").experiment_id])
    assert [r.info.status for r in runs] == ["FAILED"]
    assert mlflow.active_run() is None
