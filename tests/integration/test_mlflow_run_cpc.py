"""`mlflow run . -e cpc_fixed / cpc_original` end to end on tiny data, read back from the store.

Real runs: `mlflow run` in a subprocess with a temporary SQLite store and an empty data cache,
so the GW data generator (its own process), the jitted training under the JAX monitor, the
claims and the pyfunc registration all happen as they do for a user.
"""

from __future__ import annotations

import importlib.metadata
import subprocess
from pathlib import Path

import mlflow
import pytest
from _mlflow_run import mlflow_run

# No matched-filter reference here (it has its own tests and runs in the in-process tiny runs).
TINY = ["-P", "n_train=64", "-P", "n_val=32", "-P", "n_test=64", "-P", "epochs=2", "-P", "batch_size=16",
        "-P", "log_every=2", "-P", "mf_bank=0"]


@pytest.fixture(scope="module")
def store(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("cpc_e2e")


def _mlflow_run(entry: str, store: Path) -> tuple[mlflow.entities.Run, subprocess.CompletedProcess]:
    client, result = mlflow_run(entry, store, "cpc_e2e", TINY)
    runs = client.search_runs([client.get_experiment_by_name("cpc_e2e").experiment_id],
                              filter_string=f"tags.`fixlab.variant` = '{entry}'")
    assert len(runs) == 1, "the script must log into the run `mlflow run` created, not open another"
    return runs[0], result


def test_mlflow_run_cpc_fixed(store: Path) -> None:
    run, result = _mlflow_run("cpc_fixed", store)
    tags, metrics, params = run.data.tags, run.data.metrics, run.data.params
    assert run.info.status == "FINISHED"
    assert (tags["fixlab.project"], tags["fixlab.document"]) == ("cpc_snn_gw", "000_940c272a91a05c21.txt")
    assert tags["fixlab.version"] == importlib.metadata.version("fixlab")
    assert tags["fixlab.health"] != "critical"
    assert params["epochs"] == "2" and params["learning_rate"] == "5e-05"   # empty lr: the document's
    for name in ("test/acc", "test/auc", "train/acc", "tasks/encoder_grad_bce", "grad_norm/total",
                 "data/generated", "perf/train_samples_per_s"):
        assert name in metrics, f"{name} missing; logged: {sorted(metrics)}"
    assert metrics["data/generated"] == 1.0   # empty cache: the data were simulated in this run
    assert "test/auc" in result.stdout and "cpc-snn-gw" in result.stdout
    client = mlflow.MlflowClient(tracking_uri=f"sqlite:///{store / 'mlflow.db'}")
    (version,) = client.search_model_versions(f"name='cpc-snn-gw' and run_id='{run.info.run_id}'")
    assert (version.tags["fixlab.steps_observed"], version.tags["fixlab.baseline"]) == ("8", "0.5")
    auc = metrics["best/val_auc"]  # the gate crowns it only above chance
    assert version.tags["fixlab.gate"].startswith("refused") == (auc <= 0.5)


def test_mlflow_run_cpc_original_measures_the_documents_suspects(store: Path) -> None:
    run, _ = _mlflow_run("cpc_original", store)
    metrics = run.data.metrics
    assert run.data.tags["fixlab.variant"] == "cpc_original" and run.info.status == "FINISHED"
    assert metrics["data/generated"] == 0.0   # same data config: from the cache this time
    # The L2 normalization is probed, and each loss's pull on the encoder is measured.
    assert "encoder.l2" in run.data.params["norm_probes"]
    for name in ("norm/encoder.l2/magnitude_cv_in", "norm/encoder.l2/magnitude_cv_out",
                 "tasks/encoder_grad_bce", "tasks/encoder_grad_infonce", "tasks/encoder_grad_cosine",
                 "tasks/spike_rate", "tasks/surrogate_active"):
        assert name in metrics, f"{name} missing; logged: {sorted(metrics)}"
    client = mlflow.MlflowClient(tracking_uri=f"sqlite:///{store / 'mlflow.db'}")
    report = Path(client.download_artifacts(run.info.run_id, "fixlab/report.html", str(store))).read_text()
    assert "What the gradients did" in report and "tasks/surrogate_active" in report
