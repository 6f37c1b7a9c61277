"""Document 000's comparisons: `cpc_ablation` reverts exactly one fix per child, `cpc_snn_progressive`
adds exactly one part per stage, and a tiny progressive run leaves its parent, children, table and
figure in MLflow."""

from __future__ import annotations

import dataclasses

import mlflow
import pytest
from flax import nnx

from _entry import run_main
from jax_modules.cpc_snn_gw import ModelConfig, build_model
from jax_modules.cpc_snn_gw.variants import VARIANTS, ablation_variants, progressive_variants
from projects.common.params import ParamError
from projects.cpc_snn_gw.config import CpcGwConfig
from projects.cpc_snn_gw.train import main


def _differences(a, b) -> dict[str, tuple[object, object]]:
    """The fields (and the learning rate) in which two variants differ."""
    diff = {f.name: (getattr(a.model, f.name), getattr(b.model, f.name)) for f in dataclasses.fields(ModelConfig)
            if getattr(a.model, f.name) != getattr(b.model, f.name)}
    if a.learning_rate != b.learning_rate:
        diff["learning_rate"] = (a.learning_rate, b.learning_rate)
    return diff


def test_each_ablation_child_reverts_exactly_one_fix_of_cpc_fixed():
    arms = ablation_variants()
    fixed, original = VARIANTS["cpc_fixed"], VARIANTS["cpc_original"]
    assert arms["fixed"] == fixed and arms["original"] == original
    assert {name: _differences(fixed, arm) for name, arm in arms.items() if name not in ("fixed", "original")} == {
        "latent_64": {"latent_dim": (256, 64)},
        "l2_normalize": {"l2_normalize": (False, True)},
        "lr_1e-4": {"learning_rate": (5e-5, 1e-4)},
        "multi_task": {"infonce_weight": (0.0, 1.0)},
    }


def test_each_progressive_stage_adds_one_part_to_the_previous():
    stages = list(progressive_variants(0.1).items())
    assert stages[0] == ("cpc", VARIANTS["cpc_fixed"])
    steps = [_differences(a, b) for (_, a), (_, b) in zip(stages, stages[1:])]
    assert steps == [{"spike_bridge": (False, True)},
                     {"spike_bridge": (True, False), "kind": ("cpc", "cpc_snn")},  # cpc_snn always has the bridge
                     {"infonce_weight": (0.0, 0.1)}]


def test_the_spike_bridge_alone_feeds_the_direct_head_spikes():
    def shape(model_config):  # the modules without computing a weight
        return nnx.eval_shape(lambda: build_model(model_config, seed=0))

    model = shape(dataclasses.replace(VARIANTS["cpc_fixed"].model, spike_bridge=True))
    assert model.bridge is not None and type(model.classifier).__name__ == "DirectHead"
    assert shape(VARIANTS["cpc_fixed"].model).bridge is None


def test_comparisons_default_to_fewer_epochs_and_refuse_a_learning_rate():
    assert CpcGwConfig().n_epochs == 20 and CpcGwConfig(variant="cpc_ablation").n_epochs == 10
    assert CpcGwConfig(variant="cpc_ablation", epochs=3).n_epochs == 3
    with pytest.raises(ParamError, match="lr"):
        CpcGwConfig(variant="cpc_snn_progressive", lr=1e-3)


def test_a_comparison_refuses_a_learning_rate_in_one_line(tmp_path, monkeypatch, capsys):
    store = tmp_path / "untouched.db"
    result = run_main(main, ["--variant", "cpc_ablation", "--lr", "1e-3"], store, monkeypatch, capsys)
    lines = result.stderr.strip().splitlines()
    assert result.returncode == 2 and len(lines) == 1 and "invalid parameter lr=" in lines[0], result.stderr
    assert "own rate" in lines[0] and not store.exists()


def test_a_comparison_cannot_be_resumed():
    from projects.cpc_snn_gw.experiment import train_and_evaluate

    with pytest.raises(ValueError, match="resume"):
        train_and_evaluate(CpcGwConfig(variant="cpc_ablation"), resume="0123456789abcdef")


def test_a_tiny_progressive_run_leaves_its_children_table_and_figure(tmp_path, monkeypatch, shared_data_cache):
    from projects.cpc_snn_gw.experiment import train_and_evaluate

    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    monkeypatch.setenv("MLFLOW_TRACKING_URI", uri)
    monkeypatch.setenv("FIXLAB_CACHE", str(shared_data_cache))
    monkeypatch.setenv("FIXLAB_CHECKPOINTS", str(tmp_path / "checkpoints"))
    monkeypatch.delenv("MLFLOW_RUN_ID", raising=False)
    mlflow.set_tracking_uri(uri)
    config = CpcGwConfig(variant="cpc_snn_progressive", n_train=64, n_val=32, n_test=64, epochs=1, batch_size=16,
                         log_every=2, n_seeds=1, mf_bank=0, seed=3)
    summary = train_and_evaluate(config, progress=False)

    client = mlflow.MlflowClient()
    parent = client.get_run(summary.run_id)
    children = client.search_runs([parent.info.experiment_id],
                                  f"tags.mlflow.parentRunId = '{summary.run_id}'")
    assert parent.info.status == "FINISHED" and summary.registered_version is None
    assert sorted(c.data.tags["fixlab.child"] for c in children) == [
        "cpc/seed3", "snn/seed3", "snn_infonce/seed3", "spike_bridge/seed3"]
    for child in children:
        assert child.info.status == "FINISHED" and child.data.tags["fixlab.health"] in ("ok", "warning", "critical")
        assert child.data.params["data.seed"] == "3" and "test/acc" in child.data.metrics
    by_name = {c.data.params["configuration"]: c for c in children}
    assert by_name["spike_bridge"].data.params["model.spike_bridge"] == "True"
    assert by_name["snn_infonce"].data.params["model.infonce_weight"] == "0.1"
    assert "tasks/spike_rate" in by_name["snn"].data.metrics and "tasks/spike_rate" not in by_name["cpc"].data.metrics
    table = mlflow.artifacts.load_text(f"runs:/{summary.run_id}/tables/cpc_snn_progressive.md")
    for name in ("cpc", "spike_bridge", "snn", "snn_infonce"):
        assert f"| {name} |" in table
    artifacts = {a.path for a in client.list_artifacts(summary.run_id, "figures")}
    assert "figures/cpc_snn_progressive.png" in artifacts
    assert parent.data.metrics["cpc_snn_progressive/snn/test_acc_mean"] == by_name["snn"].data.metrics["test/acc"]
    assert parent.data.tags["fixlab.children_health"].startswith("4 children")
    assert not any((tmp_path / "checkpoints").glob("*"))  # every child's folder is gone


def test_the_cost_of_reverting_a_fix_is_the_auc_lost_in_standard_errors():
    from projects.common.comparison import Cell
    from projects.cpc_snn_gw.comparisons import revert_costs

    def cell(*aucs):
        return Cell(values={"test/auc": list(aucs)})

    costs = revert_costs({"fixed": cell(0.7, 0.8, 0.9), "l2_normalize": cell(0.5, 0.5, 0.5),
                          "lr_1e-4": cell(0.9, 0.95, 1.0), "latent_64": cell(0.6)})
    assert costs["cpc_ablation/revert_cost/l2_normalize/auc"] == pytest.approx(0.3)
    assert costs["cpc_ablation/revert_cost/l2_normalize/auc_z"] == pytest.approx(0.3 / (0.1 / 3 ** 0.5))
    error = (0.01 / 3 + 0.0025 / 3) ** 0.5
    assert costs["cpc_ablation/revert_cost/lr_1e-4/auc_z"] == pytest.approx(-0.15 / error)  # reverting helped
    assert "cpc_ablation/revert_cost/latent_64/auc_z" not in costs  # one seed: no spread to judge by
