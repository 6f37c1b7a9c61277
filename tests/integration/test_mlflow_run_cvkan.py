"""Document 003 end to end: `mlflow run . -e cvkan_layernorm` in a subprocess, as a user types it
(no experiment named), read back from a temporary SQLite store."""

from __future__ import annotations

import json
from pathlib import Path

import mlflow

from _mlflow_run import mlflow_run


def test_mlflow_run_cvkan_layernorm(tmp_path: Path) -> None:
    client, result = mlflow_run("cvkan_layernorm", tmp_path, None, ["-P", "epochs=2", "-P", "log_every=5"])
    runs = client.search_runs([client.get_experiment_by_name("cvkan").experiment_id])
    assert len(runs) == 1, "the script must log into the run `mlflow run` created, not open another"
    run = runs[0]
    tags, metrics, params = run.data.tags, run.data.metrics, run.data.params
    assert run.info.status == "FINISHED" and run.info.run_name.startswith("cvkan_layernorm-")
    assert (tags["fixlab.project"], tags["fixlab.variant"]) == ("cvkan", "cvkan_layernorm")
    assert params["model.norm_type"] == "layer" and params["model.precision_mode"] == "fp32"
    # LayerNorm over each token's magnitudes: every block's output has (nearly) one magnitude.
    assert metrics["polar/last_block_cv"] < 0.05
    assert {"norm/erases_magnitude", "test/acc", "n_params/total"} <= set(metrics)
    assert "fixlab.claim.003_c_layernorm" in tags
    assert "test/acc" in result.stdout and "health" in result.stdout
    findings = json.loads(Path(mlflow.artifacts.download_artifacts(
        run_id=run.info.run_id, artifact_path="fixlab/findings.json",
        tracking_uri=f"sqlite:///{tmp_path / 'mlflow.db'}")).read_text())["findings"]
    assert all(not f["code"].startswith("AMP") and f["code"] != "NONFINITE" for f in findings)
    versions = client.search_model_versions("name='cvkan'")
    assert [v.run_id for v in versions] == [run.info.run_id]
