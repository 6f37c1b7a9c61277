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
from _mlgwsc_files import strain_file

REPO = Path(__file__).resolve().parents[1]
TINY = dict(n_train=64, n_val=32, n_test=64, epochs=2, batch_size=16, log_every=2)


def _script(module: str, args: list[str], tmp_path: Path, uri: str | None = None) -> subprocess.CompletedProcess:
    env = {**os.environ, "MLFLOW_TRACKING_URI": uri or f"sqlite:///{tmp_path / 'untouched.db'}",
           "FIXLAB_CACHE": str(tmp_path / "cache")}
    env.pop("MLFLOW_RUN_ID", None)
    return subprocess.run([sys.executable, "-m", module, *args], cwd=REPO, env=env, capture_output=True,
                          text=True, timeout=300)


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
    strain = strain_file(tmp_path / "good.hdf")
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


GPS0 = 1238166018
LATE = GPS0 + 128  # the last of three segments: the one-window pre-check never read it


def _three_segments(tmp_path: Path, **storage: object) -> tuple[Path, Path]:
    """A valid pair: strain of three 4 s segments 64 s apart (`storage` goes to `create_dataset`),
    and an injection file with one merger in the first segment."""
    rng = np.random.default_rng(1)
    strain, injections = tmp_path / "strain.hdf", tmp_path / "injections.hdf"
    with h5py.File(strain, "w") as f:
        for det in ("H1", "L1"):
            for start in (GPS0, GPS0 + 64, LATE):
                ds = f.create_dataset(f"{det}/{start}", data=rng.normal(size=4 * 2048) * 1e-21, **storage)
                ds.attrs["start_time"], ds.attrs["delta_t"] = float(start), 1.0 / 2048
    with h5py.File(injections, "w") as f:
        f["tc"], f["mass1"], f["mass2"] = np.array([GPS0 + 2.5]), np.array([30.0]), np.array([20.0])
    return strain, injections


def _set(name: str, index: int, value: float):
    def damage(strain: Path, injections: Path) -> None:
        with h5py.File(strain, "a") as f:
            f[name][index] = value
    return damage


def _truncate(which: str):
    def damage(strain: Path, injections: Path) -> None:
        path = strain if which == "strain" else injections
        with open(path, "r+b") as raw:
            raw.truncate(int(0.6 * path.stat().st_size))
    return damage


def _zero_filled(strain: Path, injections: Path) -> None:
    strain.write_bytes(bytes(strain.stat().st_size))


def _zeroed_from_l1_header(strain: Path, injections: Path) -> None:
    """Every byte from the L1 group's object header on is 0: a preallocated copy that stopped."""
    with h5py.File(strain, "r") as f:
        start = h5py.h5o.get_info(f["L1"].id).addr
    with open(strain, "r+b") as raw:
        raw.seek(start)
        raw.write(bytes(strain.stat().st_size - start))


def _not_hdf5(strain: Path, injections: Path) -> None:
    strain.write_text("H1 L1 1238166018\n")


def _corrupt_late_chunk(strain: Path, injections: Path) -> None:
    """16 bytes overwritten inside the compressed chunk holding L1 samples 4096-6143 of the last segment."""
    with h5py.File(strain, "r") as f:
        chunk = f[f"L1/{LATE}"].id.get_chunk_info_by_coord((4096,))
    with open(strain, "r+b") as raw:
        raw.seek(chunk.byte_offset + chunk.size // 2)
        raw.write(b"\xff" * 16)


def _zeroed_late_data(strain: Path, injections: Path) -> None:
    with h5py.File(strain, "a") as f:
        f[f"L1/{LATE}"][:] = 0.0


def _injections(**datasets: np.ndarray):
    def damage(strain: Path, injections: Path) -> None:
        with h5py.File(injections, "a") as f:
            for key, value in datasets.items():
                del f[key]
                f[key] = value
    return damage


CHUNKED = {"chunks": (2048,), "compression": "gzip"}

# case -> (storage, damage, the parameter named, what the one line must say)
DAMAGED = {
    "truncated strain": ({}, _truncate("strain"), "data_path", "truncated file"),
    "zero-filled strain": ({}, _zero_filled, "data_path", "not an HDF5 file"),
    "strain zeroed from the L1 header on": ({}, _zeroed_from_l1_header, "data_path", "'L1' cannot be read"),
    "strain not HDF5": ({}, _not_hdf5, "data_path", "not an HDF5 file"),
    "NaN in the last segment": ({}, _set(f"H1/{LATE}", 5000, np.nan), "data_path",
                                f"'H1/{LATE}': sample 5000 (GPS {LATE + 5000 / 2048:.4f}) is nan"),
    "Inf in the last segment of L1": ({}, _set(f"L1/{LATE}", 8000, np.inf), "data_path",
                                      f"'L1/{LATE}': sample 8000 (GPS {LATE + 8000 / 2048:.4f}) is inf"),
    "zeros in the last segment": ({}, _zeroed_late_data, "data_path", f"'L1/{LATE}': samples 0 to 8191"),
    "corrupt chunk in the last segment": (CHUNKED, _corrupt_late_chunk, "data_path",
                                          f"'L1/{LATE}': samples 4096 to 6143"),
    "truncated injections": ({}, _truncate("injections"), "injections_path", "truncated file"),
    "injections: tc is 2-D": ({}, _injections(tc=np.array([[GPS0 + 2.5]])), "injections_path",
                              "'tc' is shape (1, 1)"),
    "injections outside the strain": ({}, _injections(tc=np.array([GPS0 + 10_000.0])), "injections_path",
                                      "none of its 1 merger times"),
}


@pytest.mark.parametrize("case", list(DAMAGED))
def test_damaged_hdf5_files_are_parameter_errors(case, tmp_path, monkeypatch, capsys):
    storage, damage, name, problem = DAMAGED[case]
    strain, injections = _three_segments(tmp_path, **storage)
    damage(strain, injections)
    store = tmp_path / "untouched.db"
    args = ["--data_path", str(strain), "--injections_path", str(injections), "--epochs", "1", "--batch_size", "2"]
    result = run_main(main, args, store, monkeypatch, capsys)
    lines = result.stderr.strip().splitlines()
    assert result.returncode == 2 and len(lines) == 1, result.stderr[-2000:]
    assert f"invalid parameter {name}=" in lines[0] and problem in lines[0], lines[0]
    assert not store.exists()


@pytest.mark.parametrize("storage", [{}, CHUNKED], ids=["contiguous", "chunked"])
def test_intact_three_segment_files_pass_check_inputs(storage, tmp_path):
    """The control for the table above: the files are refused for their damage, not their shape."""
    from projects.cpc_snn_gw.config import check_inputs

    strain, injections = _three_segments(tmp_path, **storage)
    check_inputs(CpcGwConfig(data_path=str(strain), injections_path=str(injections)))


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
    # The matched filter on the same test windows, and the network's share of it.
    # The matched filter ran on the same windows; 32 noise windows cannot resolve its 1e-2 either.
    assert {"mf/tpr_at_far_1e-2", "mf/snr50_far_1e-2", "test/snr50_far_1e-2", "vs_mf/tpr_ratio_far_1e-2"} <= set(metrics)
    assert math.isnan(metrics["mf/tpr_at_far_1e-2"])
    assert len(client.get_metric_history(first.run_id, "val/auc")) == TINY["epochs"]
    artifacts = {a.path for a in client.list_artifacts(first.run_id, "figures")}
    assert {"figures/roc.png", "figures/efficiency_vs_snr.png"} <= artifacts
    assert {"fixlab/findings.json", "fixlab/report.html"} <= {a.path for a in client.list_artifacts(first.run_id, "fixlab")}
    assert any(k.startswith("fixlab.claim.") for k in tags)
    versions = client.search_model_versions("name='cpc-snn-gw'")
    assert sorted(v.run_id for v in versions) == sorted([first.run_id, tiny_runs[2].run_id])
    # The gate: 8 steps observed (2 epochs of 4), and the selection metric against chance (0.5).
    gate = next(v for v in versions if v.run_id == first.run_id).tags
    assert (gate["fixlab.steps_observed"], gate["fixlab.baseline"]) == ("8", "0.5")
    auc = metrics["best/val_auc"]
    if auc > 0.5:
        assert not gate["fixlab.gate"].startswith("refused")
    else:
        assert gate["fixlab.gate"] == f"refused: best/val_auc={auc:.4g} does not beat the baseline 0.5"


def test_same_seed_same_metrics(tiny_runs):
    uri, first, second = tiny_runs
    client = mlflow.MlflowClient(uri)
    a, b = (client.get_run(r.run_id).data.metrics for r in (first, second))
    for name in ("fit/loss", "val/auc", "test/auc", "test/acc", "grad_norm/total"):
        assert a[name] == b[name], name


def test_champion_loads_in_a_fresh_process_and_scores_an_mlgwsc_file(tiny_runs, tmp_path):
    uri, first, _ = tiny_runs
    strain = strain_file(tmp_path / "strain.hdf")
    out = tmp_path / "scores.csv"
    # Version 1 by number: a tiny run may not beat chance, and then the gate gives it no alias.
    result = _script("projects.cpc_snn_gw.predict", ["--model", "models:/cpc-snn-gw/1", "--data_path", str(strain),
                                                     "--out", str(out)], tmp_path, uri)
    assert result.returncode == 0, result.stderr[-2000:]
    rows = np.loadtxt(out, delimiter=",", skiprows=1)
    assert rows.shape == (8, 2) and np.all((rows[:, 1] >= 0) & (rows[:, 1] <= 1))
    np.testing.assert_allclose(np.diff(rows[:, 0]), 1.0)

    code = ("import mlflow, numpy as np; m = mlflow.pyfunc.load_model('models:/cpc-snn-gw/1'); "
            "x = np.random.default_rng(1).standard_normal((3, 2, 2048)).astype(np.float32); "
            "print(m.predict(x).tolist())")
    env = {**os.environ, "MLFLOW_TRACKING_URI": uri, "MLFLOW_ALLOW_PICKLE_DESERIALIZATION": "false"}
    loaded = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=300)
    assert loaded.returncode == 0, loaded.stderr[-2000:]
    probs = json.loads(loaded.stdout.strip().splitlines()[-1])
    assert len(probs) == 3 and all(0.0 <= p <= 1.0 for p in probs)


def test_missing_registered_model_is_one_line(tiny_runs, tmp_path):
    uri, _, _ = tiny_runs
    strain = strain_file(tmp_path / "strain.hdf")
    out = tmp_path / "scores.csv"
    result = _script("projects.cpc_snn_gw.predict", ["--model", "models:/no-such-model@champion",
                                                     "--data_path", str(strain), "--out", str(out)], tmp_path, uri)
    lines = result.stderr.strip().splitlines()
    assert result.returncode == 2 and len(lines) == 1, result.stderr[-2000:]
    assert "invalid parameter model=" in lines[0] and "cpc-snn-gw" in lines[0]   # lists what is registered
    assert not out.exists()
