"""`train_and_evaluate`: one tracked run of document 004 (a FixMatch-PU run, or the supervised
baseline's parent with its peers).

A single run (`fixmatch_pu_original`, `fixmatch_pu_debugged`, `fixmatch_pu_v2`) trains the classifier
with the fixlab callbacks and the document's three rules, tests its best checkpoint, logs what the
document says to monitor, the validation-AUC curve beside the document's timeline, a test
micrograph with true particles and the model's picks, and a data-quality figure of patches;
measures the claims and registers the model behind the champion gate. `supervised_baseline` is in
`comparisons`.
"""

from __future__ import annotations

import math

import mlflow

from projects.common.comparison import refuse_resume
from projects.common.entry import RunSummary
from projects.common.run import ProjectRun, finish_run, open_run
from projects.fixmatch_pu.config import SPEC, FixMatchPURunConfig
from projects.fixmatch_pu.data import PUData, load_data
from projects.fixmatch_pu.figures import auc_figure, patches_figure, picks_figure
from projects.fixmatch_pu.fitting import (Fitted, fit_model, model_config, outcome_metrics, pick_test_micrograph,
                                          register, run_level)

__all__ = ["RunSummary", "train_and_evaluate", "log_figures", "headline"]


def train_and_evaluate(config: FixMatchPURunConfig, *, resume: str | None = None) -> RunSummary:
    """Train, test, measure claims, register; all inside one MLflow run.

    Args:
        config: the run; `check_inputs(config)` should have accepted it.
        resume: the id of a run of this config that died, to continue from its last checkpoint
            (single runs only: the supervised baseline's comparison starts again).

    Raises:
        ValueError: `resume` of the comparison run.
        Whatever training raises; the run is then marked FAILED.
    """
    if config.is_comparison:
        from projects.fixmatch_pu.comparisons import run_peers

        refuse_resume(config.entry_point, resume)
        return run_peers(config)
    data = load_data(config)
    with open_run(SPEC, config, resume=resume) as run:
        model = model_config(config, data)
        run.log_params({**config.to_params(), "data.source": data.source,
                        **{f"model.{k}": v for k, v in model.to_dict().items()}})
        fitted = fit_model(run, config, data, model)
        metrics = outcome_metrics(run, fitted, data)
        metrics.update(log_figures(run, fitted, data, config))
        run.log_metrics(run_level(metrics))
        return finish_run(run, findings=fitted.findings, metrics=metrics,
                          register=lambda health: register(run, fitted, data, health),
                          headline=headline(metrics))


def log_figures(run: ProjectRun, fitted: Fitted, data: PUData, config: FixMatchPURunConfig) -> dict[str, float]:
    """The validation-AUC curve, the picks on a test micrograph and the patches figure; returns the
    picking metrics."""
    client = mlflow.MlflowClient()
    client.log_figure(run.run_id, auc_figure({"val/auc": fitted.history.series("val/auc")},
                                             title=f"{config.entry_point}: validation ROC AUC"),
                      "figures/val_auc.png")
    picks, truth, match = pick_test_micrograph(fitted, data, config.box)
    client.log_figure(run.run_id, picks_figure(data.test_micrograph[0], truth, picks, box=config.box, match=match,
                                               title=f"{config.entry_point}: picks on a test micrograph"),
                      "figures/picks.png")
    train = data.splits.train
    client.log_figure(run.run_id, patches_figure(train.x[train.labeled], train.x[~train.labeled]),
                      "figures/patches.png")
    return {"picks/precision": match.precision, "picks/recall": match.recall, "picks/f1": match.f1}


def headline(metrics: dict[str, float | None]) -> list[str]:
    """The run's key numbers for the terminal."""
    m = lambda key: math.nan if metrics.get(key) is None else metrics[key]  # noqa: E731
    return [f"test/auc {m('test/auc'):.4f}  test/ap {m('test/ap'):.4f}  best val/auc {m('val/auc'):.4f}",
            f"pseudo-label usage {m('pseudo/final_usage_rate'):.1%} (at 0.95: {m('pseudo/final_rate_at_0.95'):.1%}, "
            f"at 0.75: {m('pseudo/final_rate_at_0.75'):.1%})  prediction std {m('final/val_pred_std'):.3f}",
            f"prior configured {m('pu/prior_configured'):.3f}, data {m('pu/prior_estimated'):.3f}  "
            f"grad norm median {m('grad/norm_median'):.3g}  picks P/R {m('picks/precision'):.2f}/{m('picks/recall'):.2f}"
            f"  {m('perf/train_patches_per_s'):.0f} patches/s"]
