"""`train_and_evaluate`: one tracked run of document 001's before or after.

Train with the three fixlab callbacks watching, test the best checkpoint (by `val/acc`),
measure the document's claims, register the checkpoint (gated on health), and return a summary.
Everything measured is logged to the run, whatever it says about the document.
"""

from __future__ import annotations

import math

import lightning as L
import mlflow
import torch

from lightning_modules.repr_gradflow import ReprGradflowModule
from mlflow_plugins import AmpNanCallback, GradientHealthCallback, NormalizationEffectCallback
from mlflow_plugins.registry import Evidence, register_checkpoint, steps_needed
from projects.common.entry import RunSummary
from projects.common.lightning_fit import fit_and_test
from projects.common.run import finish_run, open_run
from projects.repr_gradflow.config import SPEC, ReprGradflowConfig, load_init_state, net_config
from projects.repr_gradflow.data import datamodule as make_datamodule

__all__ = ["RunSummary", "train_and_evaluate"]


def headline(metrics: dict[str, float]) -> list[str]:
    """The run's key numbers for the terminal."""
    m = lambda key: metrics.get(key, math.nan)  # noqa: E731
    return [f"test/acc {m('test/acc'):.4f}  best val/acc {m('val/acc'):.4f}  chance {m('chance/acc'):.4f}  "
            f"repr/param_change {m('repr/param_change'):.4g}"]


def train_and_evaluate(config: ReprGradflowConfig, *, resume: str | None = None) -> RunSummary:
    """Train, test, measure claims, register; all inside one MLflow run.

    Args:
        config: the run; `check_inputs(config)` should have accepted it.
        resume: the id of a run of this config that died, to continue from its last checkpoint.

    Returns:
        The summary that is also printed by the entry script.

    Raises:
        Whatever training raises; the run is then marked FAILED.
    """
    L.seed_everything(config.seed, workers=True, verbose=False)
    datamodule = make_datamodule(config)
    module = ReprGradflowModule(net_config(config, datamodule.n_channels), lr=config.lr)
    if config.init_checkpoint:
        module.net.load_state_dict(load_init_state(config.init_checkpoint))
    diagnostics = [cls(log_every=config.log_every, policy=config.policy)
                   for cls in (GradientHealthCallback, AmpNanCallback, NormalizationEffectCallback)]
    counts = module.net.parameter_counts()

    with open_run(SPEC, config, resume=resume) as run:
        run.log_params({
            **config.to_params(),
            "data.source": config.data_path or "generated motif task",
            "data.n_train": len(datamodule.train_idx), "data.n_val": len(datamodule.val_idx),
            "data.n_test": len(datamodule.test_idx), "data.seq_len": datamodule.seq_len,
            "data.n_channels": datamodule.n_channels, "net.feature_dim": module.net.feature_dim,
            **{f"n_params.{k}": v for k, v in counts.items()},  # fix 6
        })
        fit = fit_and_test(run, module, datamodule, callbacks=diagnostics)
        coverage = module.optimizer_coverage(fit.optimizers[0])
        metrics = {
            "test/acc": fit.tested.get("test/acc"),
            "val/acc": fit.best_score,
            "train/acc": fit.fit_metrics.get("train/acc"),
            "repr/param_change": fit.fit_metrics.get("repr/param_change"),
            "chance/acc": 1.0 / config.n_classes,
        }
        run.log_metrics({
            "best/val_acc": metrics["val/acc"], "chance/acc": metrics["chance/acc"],
            **{f"n_params/{k}": v for k, v in counts.items()},
            **{f"optimizer_params/{k}": v for k, v in coverage.items()},  # fix 6: what Adam holds
        })

        def register(health: str):
            """The best weights (tested above) as `repr-gradflow`: ReprGradflowNet's config and state dict,
            behind the gate: the steps the gradient callback observed, and val/acc against chance."""
            evidence = Evidence(steps=fit.trainer.global_step, baseline=SPEC.baseline_value(metrics),
                                steps_needed=steps_needed(diagnostics[0].t))  # GradientHealthCallback's K
            return register_checkpoint(
                module.net, project=SPEC.registered_model, run_id=run.run_id,
                metric=SPEC.selection_metric, value=math.nan if metrics["val/acc"] is None else metrics["val/acc"],
                greater_is_better=SPEC.greater_is_better, health=health, evidence=evidence,
                input_example=torch.from_numpy(datamodule.example_input(2)), tracking_uri=mlflow.get_tracking_uri())

        measured = {k: v for k, v in metrics.items() if v is not None}
        return finish_run(run, findings=[f for cb in diagnostics for f in cb.findings], metrics=metrics,
                          register=register, headline=headline(measured))
