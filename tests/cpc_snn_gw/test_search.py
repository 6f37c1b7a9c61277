"""The continuous-data search: block by block equals the whole file at once, the matched filter finds
a planted template once wherever the blocks fall, and the `python -m projects.cpc_snn_gw` commands
refuse bad parameters and unusable files in one line with exit code 2 and no output file, and search
with a registered detector (real MLflow, a temporary SQLite store)."""

from __future__ import annotations

from pathlib import Path

import h5py
import mlflow
import numpy as np
import pytest
from mlflow.models import ModelSignature
from mlflow.types import Schema, TensorSpec

from _entry import run_main
from jax_modules.cpc_snn_gw import ModelConfig, build_model
from jax_modules.gw_data.matched_filter import TemplateBank
from jax_modules.gw_data.psd import welch_psd
from jax_modules.gw_data.triggers import TriggerWriter, cluster_triggers, read_triggers
from jax_modules.gw_data.whitening import whiten
from mlflow_plugins.registry import Evidence, register_pyfunc
from projects.cpc_snn_gw import serving
from projects.cpc_snn_gw.search import MatchedFilterScorer, NetworkScorer, SearchConfig, search_file
from projects.cpc_snn_gw.search_cli import main

RATE, N = 2048, 2048
GPS = 1238166018.0


def _strain(path: Path, segments: dict[float, int], *, rate: int = RATE, seed: int = 0,
            edit=None) -> tuple[Path, dict[float, np.ndarray]]:
    """An MLGWSC-1 file of white noise (GPS start -> seconds); `edit(start, data)` may change a segment."""
    rng = np.random.default_rng(seed)
    data = {}
    with h5py.File(path, "w") as f:
        for start, seconds in segments.items():
            data[start] = 1e-21 * rng.standard_normal((2, seconds * rate))
            if edit is not None:
                edit(start, data[start])
        for d, det in enumerate(("H1", "L1")):
            group = f.create_group(det)
            for start, values in data.items():
                ds = group.create_dataset(str(int(start)), data=values[d])
                ds.attrs["start_time"], ds.attrs["delta_t"] = start, 1.0 / rate
    return path, data


def _loudness(x: np.ndarray) -> np.ndarray:
    """A stand-in detector that depends on every whitened sample of the window."""
    return np.abs(x).max(axis=(1, 2)) / 10.0


def test_searching_block_by_block_equals_the_whole_file_at_once(tmp_path) -> None:
    path, data = _strain(tmp_path / "s.hdf", {GPS: 70})
    config = SearchConfig(threshold=0.0, stride=0.25, chunk=16.0, cluster=1.0)
    summary = search_file(path, NetworkScorer(_loudness, config, "loudness"), config, tmp_path / "t.hdf")
    got = read_triggers(tmp_path / "t.hdf")

    strain, block, step = data[GPS], config.block, config.step
    total = strain.shape[1]
    starts = np.arange(0, total - N + 1, step)
    x = np.empty((len(starts), 2, N), dtype=np.float32)
    for i, s in enumerate(starts):
        lo = s // block * block
        span = (lo, lo + block) if lo + block <= total else (total - block, total)
        for d in range(2):
            psd = welch_psd(strain[d, span[0]:span[1]], RATE, N, 20.0)
            x[i, d] = whiten(strain[d, s:s + N], psd, RATE)
    times, stats = cluster_triggers(GPS + (starts + 1536) / RATE, _loudness(x).astype(np.float64), 1.0)
    np.testing.assert_allclose(got["time"], times)
    np.testing.assert_allclose(got["stat"], stats, rtol=1e-6)
    np.testing.assert_allclose(got["var"], 0.15 + 0.25)
    assert summary.scored == len(starts) and summary.n_triggers == len(times) > 20


def _pair(n: int = 1024, merger: int = 768) -> np.ndarray:
    t = (np.arange(n) - merger) / RATE
    envelope = np.exp(-(t / 0.04) ** 2)
    return np.stack([envelope * np.cos(2 * np.pi * 150 * t), envelope * np.sin(2 * np.pi * 150 * t)])


@pytest.mark.parametrize("merger_s", [16.0, 23.5])  # on a block boundary, and inside a block
def test_the_matched_filter_finds_a_planted_template_once_at_its_time(tmp_path, merger_s: float) -> None:
    pair = _pair()
    signal = pair[0] / np.sqrt((pair[0] ** 2).sum())

    def plant(start: float, values: np.ndarray) -> None:
        k = round(merger_s * RATE) - 768
        values[0, k:k + 1024] += 1e-21 * 12.0 * signal  # SNR 12 in white noise of sigma 1e-21
        values[1, k + 8:k + 8 + 1024] += 1e-21 * 9.0 * signal

    path, _ = _strain(tmp_path / "s.hdf", {GPS: 48}, edit=plant)
    bank = TemplateBank(pair[None].astype(np.float32), np.ones(1), np.ones(1), float(RATE), 768)
    config = SearchConfig(threshold=8.0, stride=0.125, chunk=16.0, cluster=1.0)
    search_file(path, MatchedFilterScorer(bank, config), config, tmp_path / "t.hdf")
    got = read_triggers(tmp_path / "t.hdf")
    assert len(got["time"]) == 1
    # The phase-maximised SNR of a narrow-band template is flat within a few ms of its peak: noise moves it.
    assert got["time"][0] == pytest.approx(GPS + merger_s, abs=0.006)
    assert got["stat"][0] == pytest.approx(15.0, rel=0.1)  # sqrt(12^2 + 9^2), whitened by a Welch estimate


# The commands: parameters and files refused before anything is written.

def _nan(start: float, values: np.ndarray) -> None:
    values[1, 5 * RATE + 7] = np.nan


def _files(tmp_path: Path) -> dict[str, Path]:
    files = {"good": _strain(tmp_path / "good.hdf", {GPS: 20})[0],
             "nan": _strain(tmp_path / "nan.hdf", {GPS: 20}, edit=_nan)[0],
             "rate": _strain(tmp_path / "rate.hdf", {GPS: 20}, rate=4096)[0],
             "text": tmp_path / "text.hdf"}
    files["text"].write_text("not hdf5")
    with h5py.File(tmp_path / "lengths.hdf", "w") as f:
        for det, n in (("H1", 20 * RATE), ("L1", 20 * RATE - 3)):
            ds = f.create_group(det).create_dataset(str(int(GPS)), data=np.ones(n))
            ds.attrs["start_time"], ds.attrs["delta_t"] = GPS, 1.0 / RATE
    files["lengths"] = tmp_path / "lengths.hdf"
    return files


REFUSED = [
    (["search", "--input", "{good}", "--output", "{out}", "--stride", "0.1"], "stride=0.1", "whole number of samples"),
    (["search", "--input", "{good}", "--output", "{out}", "--threshold", "2"], "threshold='2'", "<= 1"),
    (["search", "--input", "{good}", "--output", "{out}", "--model", "runs:/x"], "model='runs:/x'",
     "a registered-model URI"),
    (["search", "--output", "{out}"], "input=''", "--input is required"),
    (["search", "--input", "{missing}", "--output", "{out}"], "input=", "an existing MLGWSC-1 strain file"),
    (["search", "--input", "{text}", "--output", "{out}"], "input=", "not an HDF5 file"),
    (["search", "--input", "{nan}", "--output", "{out}"], "input=",
     "dataset 'L1/1238166018': sample 10247 (GPS 1238166023.0034) is nan; expected finite strain"),
    (["search", "--input", "{rate}", "--output", "{out}"], "input=", "sampled at 4096 Hz"),
    (["search", "--input", "{lengths}", "--output", "{out}"], "input=", "has n_samples 40960 in H1 but 40957 in L1"),
    (["search", "--input", "{good}", "--output", "{out}", "--model", "models:/no-such@champion"], "model=",
     "a registered model that loads"),
    (["scan", "--input", "{good}"], "command='scan'", "one of generate, search, evaluate"),
    (["generate", "--output-dir", "{dir}", "--duration", "10"], "duration='10'", ">= 60"),
    (["evaluate", "--injections", "{good}"], "foreground=''", "--foreground is required"),
]


@pytest.mark.parametrize("args, name, allowed", REFUSED, ids=[" ".join(r[0][:1] + [r[1]]) for r in REFUSED])
def test_a_bad_parameter_or_file_is_one_line_exit_2_and_no_output(args, name, allowed, tmp_path, monkeypatch,
                                                                   capsys) -> None:
    files = _files(tmp_path)
    out = tmp_path / "out" / "triggers.hdf"
    out.parent.mkdir()
    values = {**{k: str(v) for k, v in files.items()}, "out": str(out), "missing": str(tmp_path / "absent.hdf"),
              "dir": str(tmp_path / "generated")}
    store = tmp_path / "store" / "mlflow.db"
    store.parent.mkdir()
    result = run_main(main, [a.format(**values) for a in args], store, monkeypatch, capsys)
    lines = result.stderr.strip().splitlines()
    assert result.returncode == 2, result.stderr
    assert len(lines) == 1 and f"invalid parameter {name}" in lines[0] and allowed in lines[0], lines
    assert list(out.parent.iterdir()) == [] and not (tmp_path / "generated").exists()


@pytest.fixture(scope="module")
def registered(module_store, tmp_path_factory) -> str:
    """A tiny untrained detector on 1 s windows at 2048 Hz, registered as tiny-gw (champion)."""
    mlflow.set_experiment("search")
    config = ModelConfig(kind="cpc", encoder_widths=(4, 8), encoder_strides=(4, 8), latent_dim=8, context_dim=8)
    data = serving.save(build_model(config, seed=0), tmp_path_factory.mktemp("detector") / "model")
    signature = ModelSignature(inputs=Schema([TensorSpec(np.dtype(np.float32), (-1, 2, N))]),
                               outputs=Schema([TensorSpec(np.dtype(np.float32), (-1,))]))
    with mlflow.start_run() as run:
        pass
    register_pyfunc(serving.__name__, data, signature=signature, input_example=np.zeros((2, 2, N), np.float32),
                    pip_requirements=["numpy"], project="tiny-gw", run_id=run.info.run_id, metric="val/auc",
                    value=0.8, health="ok", evidence=Evidence(steps=10, baseline=0.5))
    return module_store


def test_search_writes_triggers_and_reports_gaps_and_skipped_segments(registered, tmp_path, capsys) -> None:
    path, _ = _strain(tmp_path / "s.hdf", {GPS: 40, GPS + 45: 10, GPS + 60: 30})
    out = tmp_path / "triggers.hdf"
    code = main(["search", "--model", "models:/tiny-gw@champion", "--input", str(path), "--output", str(out),
                 "--threshold", "0", "--chunk", "16"])
    text = capsys.readouterr().out
    assert code == 0
    assert "searched 70 s of 80 s in 2 segments" in text
    assert "2 gaps between segments (10 s) skipped" in text and "1 segments under 16 s skipped: 1238166063 (10 s)" in text
    triggers = read_triggers(out)
    inside = ((triggers["time"] > GPS) & (triggers["time"] < GPS + 40)) | (triggers["time"] > GPS + 60)
    assert len(triggers["time"]) > 10 and inside.all()  # none in a gap or the skipped segment
    assert np.all((triggers["stat"] > 0) & (triggers["stat"] < 1))
    with h5py.File(out) as f:
        assert f.attrs["gaps"] == 2 and f.attrs["detector"] == "models:/tiny-gw@champion"


def test_evaluate_writes_the_curve_and_refuses_an_injection_file_of_another_span(tmp_path, capsys) -> None:
    fg, _ = _strain(tmp_path / "fg.hdf", {GPS: 100})
    with h5py.File(tmp_path / "inj.hdf", "w") as f:
        f["tc"], f["distance"] = np.array([GPS + 50.0]), np.array([1000.0])
        f["mass1"], f["mass2"] = np.array([30.0]), np.array([20.0])
    with h5py.File(tmp_path / "other.hdf", "w") as f:
        f["tc"], f["distance"] = np.array([GPS + 5000.0]), np.array([1000.0])
    for name, times, stat in (("fg_t.hdf", [GPS + 50.1], 0.9), ("bg_t.hdf", [GPS + 10.0, GPS + 70.0], 0.5)):
        with TriggerWriter(tmp_path / name) as out:
            out.append(np.array(times), np.full(len(times), stat), var=0.3)
    args = ["evaluate", "--foreground", str(fg), "--foreground-triggers", str(tmp_path / "fg_t.hdf"),
            "--background-triggers", str(tmp_path / "bg_t.hdf"), "--output", str(tmp_path / "eval.hdf")]
    assert main(args + ["--injections", str(tmp_path / "inj.hdf")]) == 0
    assert "1 injections, 100 s of background, 2 background triggers" in capsys.readouterr().out
    with h5py.File(tmp_path / "eval.hdf") as f:
        np.testing.assert_array_equal(f["found"][:], [1, 1])
    (tmp_path / "eval.hdf").unlink()
    assert main(args + ["--injections", str(tmp_path / "other.hdf")]) == 2
    line = capsys.readouterr().err.strip()
    assert line.startswith("cpc_snn_gw evaluate: invalid parameter injections=") and "none of its 1 merger times" in line
    assert not (tmp_path / "eval.hdf").exists()
