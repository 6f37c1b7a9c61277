"""Entry point `gw_search_eval`: every parameter checked before anything runs, and one tiny run end to
end (5 minutes of generated strain, a tiny registered detector, a 3-template matched filter) whose
files, metrics and artifacts are checked, together with the generated files' layout."""

from __future__ import annotations

import math

import h5py
import mlflow
import numpy as np
import pytest
from mlflow.models import ModelSignature
from mlflow.types import Schema, TensorSpec

from _entry import assert_rejected, run_main
from jax_modules.cpc_snn_gw import ModelConfig, build_model
from jax_modules.gw_data.mlgwsc import load_mlgwsc, read_injections
from mlflow_plugins.registry import Evidence, register_pyfunc
from projects.cpc_snn_gw import serving
from projects.cpc_snn_gw.search_eval import SearchEvalConfig, _strain_files, main

BAD = [
    (["--duration", "100"], "duration", "a finite number >= 300"),
    (["--stride", "0.1"], "stride", "a whole number of samples at 2048 Hz"),
    (["--chunk", "1"], "chunk", "a finite number >= 2"),
    (["--mf_template", "0.3"], "mf_template", "a whole number of samples"),
    (["--mf_bank", "0"], "mf_bank", "an integer from 1 to 40"),
    (["--model", "cpc-snn-gw"], "model", "a registered-model URI"),
    (["--seed", "-1"], "seed", "an integer from 0"),
    (["--threshold", "nan"], "threshold", "a finite number"),
]


@pytest.mark.parametrize("args, name, allowed", BAD, ids=[b[1] for b in BAD])
def test_a_bad_parameter_is_one_line_exit_2_and_no_run(args, name, allowed, tmp_path, monkeypatch, capsys) -> None:
    store = tmp_path / "untouched.db"
    assert_rejected(run_main(main, args, store, monkeypatch, capsys), name, allowed, store)


@pytest.fixture(scope="module")
def evaluated(module_store, tmp_path_factory):
    """One tiny gw_search_eval run with a tiny registered detector; (store, run, cache dir)."""
    mlflow.set_experiment("gw_search_eval_test")
    config = ModelConfig(kind="cpc", encoder_widths=(4, 8), encoder_strides=(4, 8), latent_dim=8, context_dim=8)
    data = serving.save(build_model(config, seed=0), tmp_path_factory.mktemp("detector") / "model")
    signature = ModelSignature(inputs=Schema([TensorSpec(np.dtype(np.float32), (-1, 2, 2048))]),
                               outputs=Schema([TensorSpec(np.dtype(np.float32), (-1,))]))
    with mlflow.start_run() as run:
        pass
    register_pyfunc(serving.__name__, data, signature=signature, input_example=np.zeros((2, 2, 2048), np.float32),
                    pip_requirements=["numpy"], project="tiny-search", run_id=run.info.run_id, metric="val/auc",
                    value=0.8, health="ok", evidence=Evidence(steps=10, baseline=0.5))
    cache = tmp_path_factory.mktemp("cache")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("FIXLAB_CACHE", str(cache))
        mp.delenv("MLFLOW_RUN_ID", raising=False)
        code = main(["--model", "models:/tiny-search@champion", "--duration", "300", "--mf_bank", "2",
                     "--chunk", "64"])
    assert code == 0
    (run,) = mlflow.search_runs(search_all_experiments=True, output_format="list",
                                filter_string="tags.`fixlab.variant` = 'gw_search_eval'")
    return module_store, run, cache


@pytest.mark.slow
def test_the_run_logs_distances_speed_memory_the_figure_and_the_triggers(evaluated) -> None:
    uri, run, _ = evaluated
    client = mlflow.MlflowClient(uri)
    metrics, tags = run.data.metrics, run.data.tags
    assert run.info.status == "FINISHED" and tags["fixlab.variant"] == "gw_search_eval"
    assert run.data.params["searched_model"] == "models:/tiny-search@champion"
    assert metrics["data/injections"] >= 8  # one every 24 s, 30 s in from either end of 300 s
    assert metrics["mf/templates"] == 3
    for key in ("network", "mf"):
        assert metrics[f"perf/{key}_speed_ratio"] > 1  # faster than real time even here
        assert f"{key}/distance_far_10000_per_month" in metrics  # 300 s resolve 8640 false alarms a month
        assert f"{key}/distance_far_1000_per_month" not in metrics  # ... but not 1000
    assert metrics["mf/found_fraction_far_10000_per_month"] > 0  # the filter finds the loud ones
    assert 0 < metrics["perf/peak_rss_mb"] < 8000
    artifacts = {a.path for a in client.list_artifacts(run.info.run_id, "triggers")}
    assert {f"triggers/{k}_{role}_triggers.hdf" for k in ("network", "mf") for role in ("foreground", "background")} \
        <= artifacts
    assert "figures/sensitivity_vs_far.png" in {a.path for a in client.list_artifacts(run.info.run_id, "figures")}


@pytest.mark.slow
def test_the_generated_files_are_mlgwsc_data_set_1_and_cached(evaluated) -> None:
    _, _, cache = evaluated
    files, generated = _strain_files(SearchEvalConfig(duration=300.0, cache_dir=str(cache)), progress=False)
    assert not generated  # the run's files, from the cache
    injections = read_injections(files["injections"])
    tc = np.sort(injections["tc"])
    assert np.all(np.abs(np.diff(tc) - 24) <= 6) and tc.min() >= 1238166018 + 20
    assert {"distance", "chirp_distance", "mass1", "mass2", "optimal_snr"} <= set(injections)
    windows = load_mlgwsc(files["foreground"], files["injections"], max_windows=300)
    assert windows.x.shape == (300, 2, 2048) and windows.y.sum() == np.sum(tc < 1238166018 + 300)
    with h5py.File(files["foreground"]) as fg, h5py.File(files["background"]) as bg:
        signal = fg["H1/1238166018"][:] - bg["H1/1238166018"][:]
    t = 1238166018 + np.arange(len(signal)) / 2048
    near = np.any([(t > c - 7.3) & (t < c + 0.9) for c in tc], axis=0)
    assert np.all(signal[~near] == 0) and not math.isclose(np.abs(signal[near]).max(), 0)
