"""`train_and_evaluate`: one tracked run of document 001's before or after.

Train with the three fixlab callbacks watching, test the best checkpoint (by `val/acc`),
measure the document's claims, register the checkpoint (gated on health), and return a summary.
Everything measured is logged to the run, whatever it says about the document.
"""

from __future__ import annotations

import math
import tempfile
from typing import Any

import lightning as L
import mlflow
import torch
from lightning.pytorch.callbacks import ModelCheckpoint

from lightning_modules.repr_gradflow import (
    MotifTaskConfig,
    ReprGradflowDataModule,
    ReprGradflowModule,
)
from lightning_modules.repr_gradflow.model import ReprGradflowClassifier
from mlflow_plugins import AmpNanCallback, GradientHealthCallback, NormalizationEffectCallback
from mlflow_plugins.claims import claims_html, evaluate, load_claims, log_claims
from mlflow_plugins.findings import Finding, finding_codes, overall_health
from mlflow_plugins.registry import register_checkpoint
from mlflow_plugins.run_record import run_report
from projects.common.entry import RunSummary
from projects.common.tracking import (
    fixlab_tags,
    lightning_logger,
    log_metrics_now,
    log_params_once,
    tracked_run,
)
from projects.repr_gradflow.config import (
    CLAIMS_FILE,
    DOCUMENT,
    PROJECT,
    REGISTERED_MODEL,
    ReprGradflowConfig,
    load_init_state,
    net_config,
)

__all__ = ["RunSummary", "train_and_evaluate"]

SELECTION_METRIC = "val/acc"


def headline(metrics: dict[str, float]) -> list[str]:
    """The run's key numbers for the terminal."""
    m = lambda key: metrics.get(key, math.nan)  # noqa: E731
    return [f"test/acc {m('test/acc'):.4f}  best val/acc {m('val/acc'):.4f}  chance {m('chance/acc'):.4f}  "
            f"repr/param_change {m('repr/param_change'):.4g}"]


def _datamodule(config: ReprGradflowConfig) -> ReprGradflowDataModule:
    task = MotifTaskConfig(n_samples=config.n_samples, n_classes=config.n_classes, seq_len=config.seq_len,
                           n_channels=config.n_channels, seed=config.seed)
    return ReprGradflowDataModule.from_source(task, data_path=config.data_path, n_classes=config.n_classes,
                                              cache_dir=config.cache_dir, batch_size=config.batch_size,
                                              seed=config.seed)


def _scalar(value: Any) -> float | None:
    try:
        return float(value)
    except (TypeError, ValueError):
        return None


def train_and_evaluate(config: ReprGradflowConfig) -> RunSummary:
    """Train, test, measure claims, register; all inside one MLflow run.

    Args:
        config: the run; `check_inputs(config)` should have accepted it.

    Returns:
        The summary that is also printed by the entry script.

    Raises:
        Whatever training raises; the run is then marked FAILED.
    """
    L.seed_everything(config.seed, workers=True, verbose=False)
    datamodule = _datamodule(config)
    module = ReprGradflowModule(net_config(config, datamodule.n_channels), lr=config.lr)
    if config.init_checkpoint:
        module.net.load_state_dict(load_init_state(config.init_checkpoint))
    diagnostics = [cls(log_every=config.log_every, policy=config.policy)
                   for cls in (GradientHealthCallback, AmpNanCallback, NormalizationEffectCallback)]
    counts = module.net.parameter_counts()

    tags = fixlab_tags(PROJECT, config.entry_point, DOCUMENT)
    with tracked_run(experiment=config.experiment_name, tags=tags, run_name=config.entry_point) as run:
        run_id = run.info.run_id
        log_params_once(run_id, {
            **config.to_params(),
            "data.source": config.data_path or "generated motif task",
            "data.n_train": len(datamodule.train_idx), "data.n_val": len(datamodule.val_idx),
            "data.n_test": len(datamodule.test_idx), "data.seq_len": datamodule.seq_len,
            "data.n_channels": datamodule.n_channels, "net.feature_dim": module.net.feature_dim,
            **{f"n_params.{k}": v for k, v in counts.items()},  # fix 6
        })
        with run_report(run_id) as report:  # written once, when this block ends
            with tempfile.TemporaryDirectory(prefix="repr_gradflow_") as workdir:
                best = ModelCheckpoint(dirpath=workdir, filename="best", monitor=SELECTION_METRIC, mode="max",
                                       save_top_k=1)
                trainer = L.Trainer(
                    max_epochs=config.epochs, logger=lightning_logger(run), callbacks=[*diagnostics, best],
                    deterministic=True, log_every_n_steps=config.log_every, enable_model_summary=False,
                    default_root_dir=workdir, accelerator="auto", devices=1)
                trainer.fit(module, datamodule=datamodule)
                coverage = module.optimizer_coverage(trainer.optimizers[0])
                param_change = _scalar(trainer.callback_metrics.get("repr/param_change"))
                train_acc = _scalar(trainer.callback_metrics.get("train/acc"))
                tested = trainer.test(module, datamodule=datamodule, ckpt_path=best.best_model_path or None,
                                      verbose=False)
            metrics = {
                "test/acc": _scalar(tested[0].get("test/acc")) if tested else None,
                "val/acc": _scalar(best.best_model_score),
                "train/acc": train_acc,
                "repr/param_change": param_change,
                "chance/acc": 1.0 / config.n_classes,
            }
            log_metrics_now(run_id, {
                "best/val_acc": metrics["val/acc"], "chance/acc": metrics["chance/acc"],
                **{f"n_params/{k}": v for k, v in counts.items()},
                **{f"optimizer_params/{k}": v for k, v in coverage.items()},  # fix 6: what Adam holds
            })

            findings: list[Finding] = [f for cb in diagnostics for f in cb.findings]
            health = overall_health(findings)
            claims = load_claims(CLAIMS_FILE).for_variant(config.entry_point)
            results = evaluate(claims, {k: v for k, v in metrics.items() if v is not None})
            log_claims(results, run_id)
            report.add_section(f"Claims of document {DOCUMENT}", claims_html(results))

        registration = register_checkpoint(
            ReprGradflowClassifier(module.net), project=REGISTERED_MODEL, run_id=run_id,
            metric=SELECTION_METRIC, value=metrics["val/acc"] if metrics["val/acc"] is not None else math.nan,
            healthy=health != "critical", input_example=torch.from_numpy(datamodule.example_input(2)),
            tracking_uri=mlflow.get_tracking_uri())

    metrics = {k: v for k, v in metrics.items() if v is not None}
    return RunSummary(
        project=PROJECT, registered_model=REGISTERED_MODEL, run_id=run_id, variant=config.entry_point,
        metrics=metrics, headline=headline(metrics), health=health,
        findings=sorted(set(finding_codes(findings).split(",")) - {""}),
        claims=[(r.claim.id, r.claim.expected, r.measured, r.verdict) for r in results],
        registered_version=registration.version, registration=registration.reason)

