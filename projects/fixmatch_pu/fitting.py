"""One document-004 classifier trained inside a run (a project run or a comparison's child): the model's
config from the run's, the fixlab callbacks with the document's rules, Lightning's clipping and
accumulation, and what the run measured afterwards (usage rates, priors, gradient norms, stability,
picking on a test micrograph)."""

from __future__ import annotations

import math
import statistics
import time
from dataclasses import dataclass
from typing import Any

import lightning as L
import mlflow
import numpy as np
import torch

from lightning_modules.fixmatch_pu import FixMatchPUConfig, FixMatchPUModule
from lightning_modules.fixmatch_pu.picking import PickMatch, match_picks, non_max_suppression, score_micrograph
from mlflow_plugins import AmpNanCallback, GradientHealthCallback
from mlflow_plugins.findings import Finding
from mlflow_plugins.registry import RegistrationResult, steps_needed
from projects.common.epoch_history import EpochHistory
from projects.common.lightning_fit import FitResult, fit_and_test, register_fit
from projects.common.run import ProjectRun
from projects.fixmatch_pu.config import FixMatchPURunConfig
from projects.fixmatch_pu.data import PUData
from projects.fixmatch_pu.rules import document_rules

__all__ = ["Fitted", "model_config", "fit_model", "outcome_metrics", "run_level", "pick_test_micrograph", "register"]

HISTORY_PREFIXES = ("val/", "train/", "pseudo/", "pu/")
#: Outcome metrics the module already logs under the same name (per epoch, or at test).
LOGGED_BY_THE_MODULE = ("test/", "val/", "pu/prior_configured", "pu/prior_estimated")
LATE_EPOCHS = (30, 50)  # the document's "epochs 30-50: val AUC 0.58-0.65 (convergence)"


@dataclass
class Fitted:
    """A trained classifier and what its training measured."""

    module: FixMatchPUModule
    fit: FitResult
    history: EpochHistory
    findings: list[Finding]
    evidence_k: int
    seconds: float

    @property
    def codes(self) -> set[str]:
        return {f.code for f in self.findings}


def model_config(config: FixMatchPURunConfig, data: PUData, **changes: Any) -> FixMatchPUConfig:
    """The classifier of a run: the variant's settings, the run's overrides, then `changes`; the prior
    "data" becomes the share of particles among the unlabeled training patches."""
    fields: dict[str, Any] = dict(backbone=config.backbone, width=config.width,
                                  **{k: config.setting(k) for k in ("prior", "threshold", "lr", "consistency_weight",
                                                                    "rampup_epochs", "warmup_epochs")})
    fields.update(changes)
    if fields["prior"] == "data":
        fields["prior"] = round(data.prior, 4)
    return FixMatchPUConfig(**fields)


def fit_model(run: ProjectRun, config: FixMatchPURunConfig, data: PUData, model: FixMatchPUConfig) -> Fitted:
    """Train `model` in `run` with the fixlab callbacks and the document's rules, then test its best checkpoint."""
    L.seed_everything(config.seed, workers=True, verbose=False)
    module = FixMatchPUModule(model, data_prior=data.prior)
    gradients = GradientHealthCallback(log_every=config.log_every, policy=config.policy,
                                       rules=document_rules(model.threshold))
    diagnostics = [gradients, AmpNanCallback(log_every=config.log_every, policy=config.policy)]
    history = EpochHistory(HISTORY_PREFIXES)
    options: dict[str, Any] = {"accumulate_grad_batches": config.setting("accumulate")}
    if config.setting("clip") is not None:
        options.update(gradient_clip_val=config.setting("clip"), gradient_clip_algorithm="norm")
    start = time.perf_counter()
    fit = fit_and_test(run, module, data.datamodule, callbacks=[*diagnostics, history], epochs=config.epochs,
                       trainer_options=options)
    return Fitted(module, fit, history, [f for cb in diagnostics for f in cb.findings], steps_needed(gradients.t),
                  time.perf_counter() - start)


def _last(fitted: Fitted, key: str) -> float | None:
    values = [v for v in fitted.history.series(key) if math.isfinite(v)]
    return values[-1] if values else None


def _max_drop(series: list[float]) -> float | None:
    """The largest fall of a curve below its best value so far (0 for a curve that never falls)."""
    finite = [v for v in series if math.isfinite(v)]
    if not finite:
        return None
    best, drop = -math.inf, 0.0
    for v in finite:
        best = max(best, v)
        drop = max(drop, best - v)
    return drop


def _grad_norms(run_id: str) -> list[float]:
    """Every `grad_norm/total` the gradient callback logged in the run."""
    history = mlflow.MlflowClient().get_metric_history(run_id, "grad_norm/total")
    return [m.value for m in history if math.isfinite(m.value)]


def outcome_metrics(run: ProjectRun, fitted: Fitted, data: PUData) -> dict[str, float | None]:
    """What one trained classifier measured, under the names the claims and tables use."""
    module, config = fitted.module, fitted.module.config
    run.report.sync()  # the gradient callback's metrics, read back below
    norms = _grad_norms(run.run_id)
    never = {f.where for f in fitted.findings if f.code == "GRAD_NEVER_UPDATED"}
    n_tensors = sum(1 for _ in module.net.parameters())
    auc = fitted.history.series("val/auc")
    late = [v for epoch, v in enumerate(auc, start=1) if LATE_EPOCHS[0] <= epoch <= LATE_EPOCHS[1]]
    steps = fitted.fit.trainer.global_step * fitted.fit.trainer.accumulate_grad_batches
    views = 3 if config.fixmatch else 2
    patches = steps * (data.datamodule.positive_batch_size + views * data.datamodule.batch_size)
    return {
        "test/auc": fitted.fit.tested.get("test/auc"), "test/ap": fitted.fit.tested.get("test/ap"),
        "val/auc": fitted.fit.best_score, "best/epoch": float(auc.index(max(auc)) + 1) if auc else None,
        "pseudo/final_usage_rate": _last(fitted, "train/pseudo_label_rate"),
        **{f"pseudo/final_rate_at_{t}": _last(fitted, f"pseudo/rate_at_{t}") for t in (0.95, 0.75)},
        "pseudo/final_label_accuracy": _last(fitted, "pseudo/label_accuracy"),
        "final/val_pred_std": _last(fitted, "val/pred_std"),
        "pu/prior_configured": config.prior, "pu/prior_estimated": data.prior,
        "pu/prior_ratio": config.prior / data.prior,
        "pu/final_predicted_positive_rate": _last(fitted, "pu/predicted_positive_rate"),
        "grad/norm_median": statistics.median(norms) if norms else None,
        "grad/norm_max": max(norms) if norms else None,
        "grad/zero_grad_share": len(never) / n_tensors,
        "stability/val_auc_max_drop": _max_drop(auc),
        "final/val_auc_epochs_30_50": statistics.fmean(late) if late else None,
        "perf/train_patches_per_s": patches / fitted.seconds if fitted.seconds > 0 else None,
        "n_params": float(module.param_count()),
    }


def run_level(metrics: dict[str, float | None]) -> dict[str, float | None]:
    """The outcome metrics to log once on the run: those the module has not logged under the same name."""
    return {k: v for k, v in metrics.items() if not k.startswith(LOGGED_BY_THE_MODULE)}


def pick_test_micrograph(fitted: Fitted, data: PUData, box: int) -> tuple[np.ndarray, np.ndarray, PickMatch]:
    """The evaluated network's picks on a test micrograph (sliding window at a quarter box, non-maximum
    suppression at one box, as many picks as the micrograph has particles, each > 0.5) and how they
    match the true particles within a quarter box."""
    image, truth = data.test_micrograph
    net = fitted.module.evaluated.eval()
    centres, scores = score_micrograph(lambda x: net(x.to(fitted.module.device)).cpu(), image, box=box,
                                       stride=max(box // 4, 1), normalize=data.splits.normalizer)
    keep = non_max_suppression(centres, scores, min_distance=box, threshold=0.5, top_k=len(truth))
    picks = centres[keep]
    return picks, truth, match_picks(picks, truth, radius=box / 4)


def register(run: ProjectRun, fitted: Fitted, data: PUData, health: str) -> RegistrationResult:
    """The best weights (tested; the EMA teacher when there is one) as `fixmatch-pu`, behind the champion gate."""
    example = torch.from_numpy(np.ascontiguousarray(data.datamodule.example_input(2)))
    return register_fit(run, fitted.module.evaluated.eval(), fitted.fit, health=health,
                        baseline=float(run.spec.baseline), steps_needed=fitted.evidence_k, input_example=example)
