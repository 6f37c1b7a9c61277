"""Document 000's entry scripts: parameter checks, a tiny tracked run end to end, the registered
detector loaded in a fresh process, and scoring an MLGWSC-1 file with it."""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
from pathlib import Path

import h5py
import mlflow
import numpy as np
import pytest

from _entry import run_main
from projects.cpc_snn_gw.config import CpcGwConfig
from projects.cpc_snn_gw.experiment import train_and_evaluate
from projects.cpc_snn_gw.train import main

REPO = Path(__file__).resolve().parents[1]
TINY = dict(n_train=64, n_val=32, n_test=64, epochs=2, batch_size=16, log_every=2)


def _script(module: str, args: list[str], tmp_path: Path, uri: str | None = None) -> subprocess.CompletedProcess:
    env = {**os.environ, "MLFLOW_TRACKING_URI": uri or f"sqlite:///{tmp_path / 'untouched.db'}",
           "FIXLAB_CACHE": str(tmp_path / "cache")}
    env.pop("MLFLOW_RUN_ID", None)
    return subprocess.run([sys.executable, "-m", module, *args], cwd=REPO, env=env, capture_output=True,
                          text=True, timeout=300)


def _strain_file(path: Path, seconds: int = 8, rate: int = 2048) -> Path:
    """A small MLGWSC-1-format strain file: white noise, one segment per detector."""
    rng = np.random.default_rng(0)
    with h5py.File(path, "w") as f:
        for det in ("H1", "L1"):
            ds = f.create_group(det).create_dataset("1238166018", data=rng.normal(size=seconds * rate) * 1e-21)
            ds.attrs["start_time"], ds.attrs["delta_t"] = 1238166018.0, 1.0 / rate
    return path


def _injection_file(path: Path) -> Path:
    with h5py.File(path, "w") as f:
        f["tc"] = np.array([1238166020.5])
        f["mass1"], f["mass2"] = np.array([30.0]), np.array([20.0])
    return path


BAD = [
    (["--variant", "cpc_best"], "variant", "one of cpc_original, cpc_simplified, aresgw_baseline, cpc_fixed"),
    (["--epochs", "0"], "epochs", "an integer"),
    (["--n_train", "2.5"], "n_train", "an integer"),
    (["--n_train", "33"], "n_train", "an even integer"),
    (["--snr_min", "12", "--snr_max", "8"], "snr_max", "a number > snr_min"),
    (["--snr_min", "-1"], "snr_min", "a finite number > 0"),
    (["--lr", "fast"], "lr", "a finite number"),
    (["--batch_size", "64", "--n_train", "32"], "batch_size", "<= n_train"),
    (["--policy", "ignore"], "policy", "one of warn, skip_step, stop"),
    (["--data_path", "missing.hdf"], "data_path", "an existing MLGWSC-1 strain file"),
]


def _refused(result, name: str, allowed: str, store: Path) -> None:
    assert result.returncode == 2, result.stderr[-2000:]
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and f"invalid parameter {name}=" in lines[0] and allowed in lines[0], lines
    assert not store.exists()


@pytest.mark.parametrize("args, name, allowed", BAD, ids=[b[1] + ":" + " ".join(b[0]) for b in BAD])
def test_bad_parameters_are_one_line_exit_2_and_no_run(args, name, allowed, tmp_path, monkeypatch, capsys):
    store = tmp_path / "untouched.db"
    _refused(run_main(main, args, store, monkeypatch, capsys), name, allowed, store)


def test_bad_parameter_in_its_own_interpreter(tmp_path):
    _refused(_script("projects.cpc_snn_gw.train", ["--epochs", "0"], tmp_path), "epochs", "an integer",
             tmp_path / "untouched.db")


def test_malformed_hdf5_files_are_parameter_errors(tmp_path, monkeypatch, capsys):
    text = tmp_path / "strain.hdf"
    text.write_text("not hdf5")
    strain = _strain_file(tmp_path / "good.hdf")
    injections = _injection_file(tmp_path / "injections.hdf")
    cases = [
        (["--data_path", str(text), "--injections_path", str(injections)], "data_path", "not an HDF5 file"),
        (["--data_path", str(strain)], "injections_path", "go together"),
        (["--data_path", str(strain), "--injections_path", str(strain)], "injections_path", "tc"),
    ]
    for args, name, problem in cases:
        result = run_main(main, args, tmp_path / "untouched.db", monkeypatch, capsys)
        lines = result.stderr.strip().splitlines()
        assert result.returncode == 2 and len(lines) == 1, result.stderr[-2000:]
        assert f"invalid parameter {name}=" in lines[0] and problem in lines[0], lines[0]
    assert not (tmp_path / "untouched.db").exists()


@pytest.fixture(scope="module")
def tiny_runs(module_store, shared_data_cache):
    """cpc_fixed twice on the same seed (the second from the data cache), tiny and quick."""
    config = CpcGwConfig(variant="cpc_fixed", experiment_name="cpc_tiny", cache_dir=str(shared_data_cache), **TINY)
    first = train_and_evaluate(config, progress=False)
    second = train_and_evaluate(config, progress=False)
    return module_store, first, second


def test_tiny_run_logs_metrics_tags_figures_and_registers(tiny_runs):
    uri, first, _ = tiny_runs
    client = mlflow.MlflowClient(uri)
    run = client.get_run(first.run_id)
    assert run.info.status == "FINISHED"
    tags, metrics = run.data.tags, run.data.metrics
    assert (tags["fixlab.project"], tags["fixlab.variant"]) == ("cpc_snn_gw", "cpc_fixed")
    assert tags["fixlab.health"] in ("ok", "warning")
    for name in ("fit/loss", "train/acc", "val/acc", "val/auc", "test/acc", "test/auc",
                 "test/tpr_at_far_1e-2", "perf/train_samples_per_s", "perf/infer_samples_per_s", "grad_norm/total",
                 "tasks/encoder_grad_bce"):
        assert name in metrics, f"{name} missing; logged: {sorted(metrics)}"
    assert 0.0 <= metrics["test/auc"] <= 1.0
    assert any(k.startswith("test/efficiency_p0.5/snr_") for k in metrics)   # per SNR bin, beside the figure
    assert math.isnan(metrics["test/tpr_at_far_1e-3"])   # 32 noise windows cannot resolve 1e-3
    assert len(client.get_metric_history(first.run_id, "val/auc")) == TINY["epochs"]
    artifacts = {a.path for a in client.list_artifacts(first.run_id, "figures")}
    assert {"figures/roc.png", "figures/efficiency_vs_snr.png"} <= artifacts
    assert {"fixlab/findings.json", "fixlab/report.html"} <= {a.path for a in client.list_artifacts(first.run_id, "fixlab")}
    assert any(k.startswith("fixlab.claim.") for k in tags)
    versions = client.search_model_versions("name='cpc-snn-gw'")
    assert sorted(v.run_id for v in versions) == sorted([first.run_id, tiny_runs[2].run_id])


def test_same_seed_same_metrics(tiny_runs):
    uri, first, second = tiny_runs
    client = mlflow.MlflowClient(uri)
    a, b = (client.get_run(r.run_id).data.metrics for r in (first, second))
    for name in ("fit/loss", "val/auc", "test/auc", "test/acc", "grad_norm/total"):
        assert a[name] == b[name], name


def test_champion_loads_in_a_fresh_process_and_scores_an_mlgwsc_file(tiny_runs, tmp_path):
    uri, first, _ = tiny_runs
    strain = _strain_file(tmp_path / "strain.hdf")
    out = tmp_path / "scores.csv"
    result = _script("projects.cpc_snn_gw.predict", ["--data_path", str(strain), "--out", str(out)], tmp_path, uri)
    assert result.returncode == 0, result.stderr[-2000:]
    rows = np.loadtxt(out, delimiter=",", skiprows=1)
    assert rows.shape == (8, 2) and np.all((rows[:, 1] >= 0) & (rows[:, 1] <= 1))
    np.testing.assert_allclose(np.diff(rows[:, 0]), 1.0)

    code = ("import mlflow, numpy as np; m = mlflow.pyfunc.load_model('models:/cpc-snn-gw@champion'); "
            "x = np.random.default_rng(1).standard_normal((3, 2, 2048)).astype(np.float32); "
            "print(m.predict(x).tolist())")
    env = {**os.environ, "MLFLOW_TRACKING_URI": uri, "MLFLOW_ALLOW_PICKLE_DESERIALIZATION": "false"}
    loaded = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=300)
    assert loaded.returncode == 0, loaded.stderr[-2000:]
    probs = json.loads(loaded.stdout.strip().splitlines()[-1])
    assert len(probs) == 3 and all(0.0 <= p <= 1.0 for p in probs)


def test_missing_registered_model_is_one_line(tiny_runs, tmp_path):
    uri, _, _ = tiny_runs
    strain = _strain_file(tmp_path / "strain.hdf")
    out = tmp_path / "scores.csv"
    result = _script("projects.cpc_snn_gw.predict", ["--model", "models:/no-such-model@champion",
                                                     "--data_path", str(strain), "--out", str(out)], tmp_path, uri)
    lines = result.stderr.strip().splitlines()
    assert result.returncode == 2 and len(lines) == 1, result.stderr[-2000:]
    assert "invalid parameter model=" in lines[0] and "cpc-snn-gw" in lines[0]   # lists what is registered
    assert not out.exists()
