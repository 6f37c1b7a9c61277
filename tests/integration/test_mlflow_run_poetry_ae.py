"""Document 002 end to end: `mlflow run . -e ae_rnn_baseline` in a subprocess, as a user types it (no
experiment named), read back from a temporary SQLite store."""

from __future__ import annotations

from pathlib import Path

import mlflow

from _mlflow_run import mlflow_run


def test_mlflow_run_ae_rnn_baseline(tmp_path: Path) -> None:
    client, result = mlflow_run("ae_rnn_baseline", tmp_path, None,
                                ["-P", "epochs=2", "-P", "vectors=glove50", "-P", "batch_size=128", "-P", "max_len=16",
                                 "-P", "log_every=5"])
    runs = client.search_runs([client.get_experiment_by_name("poetry_ae").experiment_id])
    assert len(runs) == 1, "the script must log into the run `mlflow run` created, not open another"
    run = runs[0]
    tags, metrics, params = run.data.tags, run.data.metrics, run.data.params
    assert run.info.status == "FINISHED" and run.info.run_name.startswith("ae_rnn_baseline-")
    assert (tags["fixlab.project"], tags["fixlab.variant"]) == ("poetry_ae", "ae_rnn_baseline")
    assert params["model.cell"] == "rnn" and params["model.hidden"] == "64"
    assert metrics["n_params/at_document_dim"] == 68476  # 300 -> 64 -> 16 -> 64 -> 300, the note's widths
    assert {"test/token_cosine", "test/seq_cosine", "latent/effective_dims"} <= set(metrics)
    assert "fixlab.claim.002_a" in tags and tags["fixlab.claim.002_a"].startswith("not reproduced")
    assert "token cosine" in result.stdout and "health" in result.stdout
    artifacts = {a.path for a in client.list_artifacts(run.info.run_id)}
    assert "reconstructions.txt" in artifacts
    text = Path(mlflow.artifacts.download_artifacts(run_id=run.info.run_id, artifact_path="reconstructions.txt",
                                                    tracking_uri=f"sqlite:///{tmp_path / 'mlflow.db'}")).read_text()
    assert text.count("original:") == 12
