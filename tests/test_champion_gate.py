"""The champion gate needs evidence: enough steps for the diagnostics to judge, and a metric that
beats a stated baseline. And loading a champion reads only the store it is given."""

from __future__ import annotations

import math
import os
from pathlib import Path

import mlflow
import numpy as np
import pytest
import torch

from jax_modules.cpc_snn_gw import ModelConfig, build_model, split_model
from lightning_modules.repr_gradflow.model import ReprGradflowNet, ReprNetConfig
from mlflow_plugins.registry import (Evidence, load_champion, load_champion_pyfunc, load_pyfunc,
                                     register_checkpoint, steps_needed)
from mlflow_plugins.registry.gate import refusals
from mlflow_plugins.thresholds import Thresholds
from projects.common.spec import ProjectSpec

# ------------------------------------------------------------------ the rule, pure


GATE = [  # (value, health, evidence, greater_is_better) -> the refusals, in order
    (0.9, "ok", Evidence(steps=3, baseline=0.5), True, []),
    (0.9, "warning", Evidence(steps=3, baseline=0.5), True, []),  # only a critical run is refused
    (0.9, "ok", Evidence(steps=2, baseline=0.5), True, ["2 steps observed, the diagnostics need 3"]),
    (0.0, "ok", Evidence(steps=10, baseline=1 / 60), True, ["val/acc=0 does not beat the baseline 0.01667"]),
    (0.5, "ok", Evidence(steps=10, baseline=0.5), True, ["val/acc=0.5 does not beat the baseline 0.5"]),
    (1.2, "ok", Evidence(steps=10, baseline=1.0), False, ["val/acc=1.2 does not beat the baseline 1"]),
    (0.8, "ok", Evidence(steps=10, baseline=1.0), False, []),
    (0.9, "ok", Evidence(steps=10, baseline=math.nan), True, ["no baseline for val/acc is known"]),
    (math.nan, "ok", Evidence(steps=10, baseline=0.5), True, ["val/acc=nan is not finite"]),
    (0.1, "critical", Evidence(steps=0, baseline=0.5, steps_needed=5), True,
     ["the run's health is critical", "0 steps observed, the diagnostics need 5",
      "val/acc=0.1 does not beat the baseline 0.5"]),
]


@pytest.mark.parametrize("value, health, evidence, greater_is_better, expected", GATE)
def test_the_gate_refuses_without_evidence(value, health, evidence, greater_is_better, expected):
    assert refusals(metric="val/acc", value=value, health=health, evidence=evidence,
                    greater_is_better=greater_is_better) == expected


def test_steps_needed_is_the_longest_window_of_a_rule_that_decides_health():
    assert steps_needed() == 3 == Evidence(steps=0, baseline=0.5).steps_needed
    assert steps_needed(Thresholds(never_updated_steps=7, norm_band_window=50)) == 7  # the band only warns


@pytest.mark.parametrize("kwargs, match", [
    (dict(steps=-1, baseline=0.5), r"steps=-1 is out of range; allowed: an integer >= 0"),
    (dict(steps=2.0, baseline=0.5), r"steps=2.0 is out of range"),
    (dict(steps=True, baseline=0.5), r"steps=True is out of range"),
    (dict(steps=2, baseline=0.5, steps_needed=0), r"steps_needed=0 is out of range; allowed: an integer >= 1"),
    (dict(steps=2, baseline="chance"), r"baseline='chance' is not a number; allowed: a float"),
])
def test_evidence_rejects_bad_values(kwargs, match):
    with pytest.raises(ValueError, match=match):
        Evidence(**kwargs)


def test_project_spec_states_a_baseline():
    from projects.cpc_snn_gw.config import SPEC as CPC
    from projects.repr_gradflow.config import SPEC as REPR

    assert REPR.baseline_value({"chance/acc": 1 / 60, "val/acc": 0.3}) == 1 / 60  # the run's own chance level
    assert math.isnan(REPR.baseline_value({"val/acc": 0.3}))  # not logged: the gate refuses
    assert CPC.baseline_value({}) == 0.5  # ROC AUC of a guess
    spec = ProjectSpec("toy", "toy.txt", "toy-model", Path("claims.yaml"), "val/acc")
    assert math.isnan(spec.baseline_value({"val/acc": 0.9}))  # none stated: nothing is crowned
    for bad in (math.nan, "", True):
        with pytest.raises(ValueError, match=r"baseline=.* is not allowed; allowed: a number, the name of a metric"):
            ProjectSpec("toy", "toy.txt", "toy-model", Path("claims.yaml"), "val/acc", baseline=bad)


# ------------------------------------------------------------------ the version's tags


@pytest.fixture(scope="module")
def store(module_store):
    mlflow.set_experiment("gate")
    return module_store


def _new_run() -> str:
    with mlflow.start_run() as run:
        pass
    return run.info.run_id


def _tiny_net(seed: int = 0) -> ReprGradflowNet:
    torch.manual_seed(seed)
    return ReprGradflowNet(ReprNetConfig(n_channels=3, n_classes=4, reservoir_size=8, conv_channels=2,
                                         kernel_sizes=(3,)))


def test_a_refused_version_says_why_in_its_tags(store):
    kwargs = dict(project="gated", metric="val/acc", health="ok", input_example=torch.randn(2, 20, 3))
    refused = register_checkpoint(_tiny_net(), run_id=_new_run(), value=0.0,
                                  evidence=Evidence(steps=2, baseline=1 / 60), **kwargs)
    assert (refused.version, refused.became_champion) == (1, False)
    tags = mlflow.MlflowClient().get_model_version("gated", "1").tags
    assert tags["fixlab.gate"] == refused.reason == ("refused: 2 steps observed, the diagnostics need 3; "
                                                     "val/acc=0 does not beat the baseline 0.01667")
    assert (tags["fixlab.steps_observed"], tags["fixlab.steps_needed"]) == ("2", "3")
    assert float(tags["fixlab.baseline"]) == 1 / 60 and tags["fixlab.health"] == "ok"
    with pytest.raises(ValueError, match=r"has no 'champion' alias: no version has passed the gate"):
        load_champion("gated")

    skipped = register_checkpoint(_tiny_net(), run_id=_new_run(), value=0.0, evidence=Evidence(steps=2, baseline=0.1),
                                  register_refused=False, **kwargs)
    assert skipped.version is None and skipped.reason.startswith("refused: 2 steps observed")
    passed = register_checkpoint(_tiny_net(), run_id=_new_run(), value=0.3, evidence=Evidence(steps=3, baseline=0.25),
                                 **kwargs)
    assert (passed.version, passed.became_champion) == (2, True)
    assert mlflow.MlflowClient().get_model_version("gated", "2").tags["fixlab.gate"].startswith("champion: ")


# ------------------------------------------------------------------ the projects' evidence


def test_repr_run_too_short_and_at_chance_is_not_crowned(store, tmp_path):
    """Document 001's broken variant for 2 steps (GRAD_NEVER_UPDATED needs 3) on constant inputs:
    healthy by its findings, but neither judged nor better than chance."""
    from projects.repr_gradflow import ReprGradflowConfig, train_and_evaluate

    data = tmp_path / "constant.npz"
    np.savez(data, X=np.zeros((24, 40, 3), np.float32), y=np.arange(24) % 4)
    config = ReprGradflowConfig(variant="broken", data_path=str(data), n_classes=4, epochs=1, batch_size=8,
                                log_every=1, experiment_name="gate_repr", cache_dir=str(tmp_path / "cache"))
    summary = train_and_evaluate(config)
    assert summary.health != "critical" and summary.metrics["val/acc"] == summary.metrics["chance/acc"] == 0.25
    client = mlflow.MlflowClient()
    version = client.get_model_version("repr-gradflow", str(summary.registered_version))
    assert version.tags["fixlab.gate"] == summary.registration == (
        "refused: 2 steps observed, the diagnostics need 3; val/acc=0.25 does not beat the baseline 0.25")
    assert "champion" not in client.get_registered_model("repr-gradflow").aliases


def _windows(n: int, t: int = 256):
    from projects.cpc_snn_gw.data import Windows

    rng = np.random.default_rng(n)
    return Windows(rng.standard_normal((n, 2, t)).astype(np.float32), np.arange(n, dtype=np.int32) % 2,
                   np.full(n, np.nan, np.float32))


@pytest.mark.parametrize("last_step, auc, verdict", [
    (2, 0.46, "refused: 2 steps observed, the diagnostics need 3; best/val_auc=0.46 does not beat the baseline 0.5"),
    (8, 0.7, "champion: the first version to pass the gate, best/val_auc=0.7"),
], ids=["2 steps, below chance", "8 steps, above chance"])
def test_cpc_register_reads_steps_and_the_auc_baseline(store, last_step, auc, verdict):
    """Document 000's registration: the steps the monitor observed against the K its rules need,
    best/val_auc against 0.5; the detector it registers predicts what the trained model predicts."""
    from projects.cpc_snn_gw import serving
    from projects.cpc_snn_gw.data import RunData
    from projects.cpc_snn_gw.experiment import _register

    config = ModelConfig(kind="cpc", encoder_widths=(4, 8), encoder_strides=(4, 8), latent_dim=8, context_dim=8)
    model = build_model(config, seed=last_step)
    graphdef, params, rest = split_model(model)
    with mlflow.start_run(experiment_id=mlflow.set_experiment(f"gate_cpc_{last_step}").experiment_id) as run:
        pass
    data = RunData(_windows(8), _windows(4), _windows(4), "test", False)
    result = _register(graphdef, params, rest, data, run.info.run_id, last_step, 3, {"best/val_auc": auc}, "ok")
    assert result.reason == verdict and result.became_champion == verdict.startswith("champion")
    if result.became_champion:
        x = _windows(3).x
        expected = serving.GWDetector(model).predict(x)
        np.testing.assert_array_equal(load_champion_pyfunc("cpc-snn-gw").predict(x), expected)


# ------------------------------------------------------------------ loading reads the store it is given


@pytest.fixture
def untouched_process(store, tmp_path, monkeypatch):
    """No process-wide tracking URI, and an empty working directory: what a fresh script has."""
    previous = mlflow.get_tracking_uri()
    cwd = tmp_path / "cwd"
    cwd.mkdir()
    monkeypatch.chdir(cwd)
    mlflow.set_tracking_uri(None)
    yield cwd
    mlflow.set_tracking_uri(previous)


def test_load_champion_uses_only_the_tracking_uri_it_is_given(store, untouched_process):
    client = mlflow.MlflowClient(store)
    run_id = client.create_run(client.get_experiment_by_name("gate").experiment_id).info.run_id
    default = mlflow.get_tracking_uri()
    assert default != store
    model = _tiny_net(3)
    register_checkpoint(model, project="elsewhere", run_id=run_id, metric="val/acc", value=0.9, health="ok",
                        evidence=Evidence(steps=5, baseline=0.25), input_example=torch.randn(2, 20, 3),
                        tracking_uri=store)
    assert "MLFLOW_TRACKING_URI" not in os.environ  # registering left the process-wide URI unset

    x = torch.randn(4, 20, 3)
    with torch.no_grad():
        expected = model.eval()(x)
        torch.testing.assert_close(load_champion("elsewhere", tracking_uri=store)(x), expected)
    for loaded in (load_champion_pyfunc("elsewhere", tracking_uri=store),
                   load_pyfunc("models:/elsewhere@champion", tracking_uri=store)):
        np.testing.assert_allclose(loaded.predict(x.numpy()), expected.numpy(), rtol=1e-6)
    assert os.listdir(untouched_process) == []  # no ./mlflow.db, no ./mlruns
    assert mlflow.get_tracking_uri() == default and "MLFLOW_TRACKING_URI" not in os.environ
