"""Document 004 end to end: `mlflow run . -e fixmatch_pu_original` in a subprocess, as a user types it,
read back from a temporary SQLite store."""

from __future__ import annotations

from pathlib import Path

from _mlflow_run import mlflow_run


def test_mlflow_run_fixmatch_pu_original(tmp_path: Path) -> None:
    client, result = mlflow_run("fixmatch_pu_original", tmp_path, None,
                                ["-P", "epochs=2", "-P", "n_micrographs=7", "-P", "width=4", "-P", "batch_size=32",
                                 "-P", "negatives_per_micrograph=30", "-P", "log_every=5"])
    runs = client.search_runs([client.get_experiment_by_name("fixmatch_pu").experiment_id])
    assert len(runs) == 1, "the script must log into the run `mlflow run` created, not open another"
    run = runs[0]
    tags, metrics, params = run.data.tags, run.data.metrics, run.data.params
    assert run.info.status == "FINISHED" and run.info.run_name.startswith("fixmatch_pu_original-")
    assert (tags["fixlab.project"], tags["fixlab.variant"]) == ("fixmatch_pu", "fixmatch_pu_original")
    assert params["model.prior"] == "0.3" and params["model.threshold"] == "0.95"
    assert "PU_PRIOR_MISMATCH" in tags["fixlab.findings"]
    assert {"test/auc", "val/auc", "pseudo/rate_at_0.95"} <= set(metrics)
    assert "fixlab.claim.004_b" in tags and "test/auc" in result.stdout
