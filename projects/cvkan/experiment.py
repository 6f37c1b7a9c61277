"""`train_and_evaluate`: one tracked run of document 003 (a single model, or a comparison's parent).

A single run (`cvkan_amp_fp16`, `cvkan_amp_bf16`, `cvkan_fp32`, `cvkan_layernorm`, `cvkan_nonorm`)
trains one model with the three fixlab callbacks, tests its best checkpoint, logs the polarization
per block (metrics and a figure) and the phases per class, measures the claims and registers the
model behind the gate. The AMP runs also time the precisions' steps in the same process, and the
float16 run explains in its report how float16 broke the model. Comparisons are in `comparisons`.
"""

from __future__ import annotations

import math

import mlflow

from projects.common.comparison import refuse_resume
from projects.common.entry import RunSummary
from projects.common.run import ProjectRun, finish_run, open_run
from projects.cvkan.config import CVKANRunConfig, spec_for
from projects.cvkan.data import DomainData, domain_data
from projects.cvkan.figures import phase_concentration, phase_figure, polarization_figure
from projects.common.epoch_history import final_values
from projects.cvkan.fitting import Fitted, fit_model, model_config, pooled_phases, register
from projects.cvkan.mechanism import FLOAT16_EXP_LIMIT, float16_section

__all__ = ["RunSummary", "train_and_evaluate", "outcome_metrics", "log_run_figures"]

#: Precision modes timed beside each AMP run's own (step-time ratios within the process).
TIMED_MODES = {"amp_fp16": ("fp32", "fp16"), "amp_bf16": ("fp32", "bf16_real_only", "bf16")}


def train_and_evaluate(config: CVKANRunConfig, *, resume: str | None = None) -> RunSummary:
    """Train, test, measure claims, register; all inside one MLflow run.

    Args:
        config: the run; `check_inputs(config)` should have accepted it.
        resume: the id of a run of this config that died, to continue from its last checkpoint
            (single runs only: a comparison starts again).

    Raises:
        ValueError: `resume` of a comparison run.
        Whatever training raises; the run is then marked FAILED.
    """
    if config.is_comparison:
        from projects.cvkan.comparisons import run_comparison

        refuse_resume(config.entry_point, resume)
        return run_comparison(config)
    data = domain_data(config, config.domain, seed=config.seed, data_seed=config.seed)
    spec = spec_for(config.domain)
    with open_run(spec, config, resume=resume) as run:
        model = model_config(config, data)
        run.log_params({**config.to_params(), "data.source": data.source, "model.task": model.task,
                        "model.precision_mode": model.precision_mode, "model.norm_type": model.norm_type,
                        "model.seq_len": model.seq_len, "model.n_features": model.n_features})
        fitted = fit_model(run, config, data, model)
        metrics = outcome_metrics(fitted, data)
        metrics.update(log_run_figures(run, fitted, data, config.entry_point))
        if config.variant in TIMED_MODES:
            metrics.update(_step_times(run, model, data, TIMED_MODES[config.variant]))
        run.log_metrics({k: v for k, v in metrics.items() if not k.startswith(("test/", "val/"))})
        sections = {}
        if config.variant == "amp_fp16":
            sections["How float16 broke this model"] = float16_section(fitted.findings, fitted.history)
        baseline = spec.baseline_value(metrics)
        return finish_run(run, findings=fitted.findings, metrics=metrics, sections=sections,
                          register=lambda health: register(run, fitted, data, health, baseline),
                          headline=headline(metrics, data))


def outcome_metrics(fitted: Fitted, data: DomainData) -> dict[str, float | None]:
    """What one trained model measured, under the names the claims and tables use."""
    codes = fitted.codes
    logmag = [v for v in fitted.history.series("polar/max_log_magnitude") if math.isfinite(v)]
    cvs = final_values(fitted.history, "polar/block")
    last_block = cvs[max(cvs, key=_block_index)] if cvs else None
    metrics: dict[str, float | None] = {
        **{f"n_params/{k}": float(v) for k, v in fitted.module.param_counts().items()},
        "amp/nonfinite_found": float(bool(codes & {"NONFINITE", "AMP_STEPS_SKIPPED"})),
        "amp/max_log_magnitude": max(logmag) if logmag else None,
        "amp/float16_exp_limit": FLOAT16_EXP_LIMIT,
        "norm/erases_magnitude": float("NORM_ERASES_MAGNITUDE" in codes),
        "polar/last_block_cv": last_block,
        "best/epoch": _best_epoch(fitted),
    }
    if data.task == "classify":
        metrics.update({"test/acc": fitted.fit.tested.get("test/acc"), "val/acc": fitted.fit.best_score,
                        "chance/acc": 1.0 / data.n_classes})
    else:
        metrics.update({"test/mse": fitted.fit.tested.get("test/mse"), "val/mse": fitted.fit.best_score,
                        "naive/mse": data.naive_mse})
    return metrics


def log_run_figures(run: ProjectRun, fitted: Fitted, data: DomainData, title: str) -> dict[str, float]:
    """The polarization-per-block figure and, for classification, the phases per class (figure and
    the mean concentration R of the classes' phases); returns the metrics."""
    client = mlflow.MlflowClient()
    polar = {k: v for k, v in fitted.history.history.items() if k.startswith("polar/block")}
    if polar:
        client.log_figure(run.run_id, polarization_figure(polar, f"{title}: polarization per block"),
                          "figures/polarization.png")
    if data.task != "classify":
        return {}
    phases, labels = pooled_phases(fitted.module, data)
    names = getattr(data.datamodule.splits, "meta", {}).get("classes")
    client.log_figure(run.run_id, phase_figure(phases, labels, class_names=names), "figures/phase_per_class.png")
    concentration = phase_concentration(phases, labels)
    return {"phase/mean_concentration": sum(concentration.values()) / max(len(concentration), 1)}


def _step_times(run: ProjectRun, model, data: DomainData, modes: tuple[str, ...]) -> dict[str, float]:
    """Seconds per training step of `model` in each precision mode, interleaved in this process,
    with the fp32-against-fp32 noise floor."""
    from projects.cvkan.step_timing import step_times

    x, y = next(iter(data.datamodule.train_dataloader()))
    timing = step_times(model, (x, y), modes, rounds=8)
    return {**timing.metrics(), "speed/threads": float(timing.threads)}


def _block_index(key: str) -> int:
    digits = "".join(c for c in key.split("/")[1] if c.isdigit())
    return int(digits or 0)


def _best_epoch(fitted: Fitted) -> float | None:
    key = fitted.module.config.task == "classify" and "val/acc" or "val/mse"
    series = fitted.history.series(key)
    if not series:
        return None
    pick = max if key == "val/acc" else min
    return float(series.index(pick(series)) + 1)


def headline(metrics: dict[str, float | None], data: DomainData) -> list[str]:
    """The run's key numbers for the terminal."""
    m = lambda key: math.nan if metrics.get(key) is None else metrics[key]  # noqa: E731
    score = (f"test/acc {m('test/acc'):.4f}  best val/acc {m('val/acc'):.4f}  chance {m('chance/acc'):.3f}"
             if data.task == "classify" else
             f"test/mse {m('test/mse'):.4f}  best val/mse {m('val/mse'):.4f}  persistence {m('naive/mse'):.4f}")
    lines = [score, f"polarization (last block CV) {m('polar/last_block_cv'):.3f}  max log-magnitude "
                    f"{m('amp/max_log_magnitude'):.2f} (float16 exp limit {FLOAT16_EXP_LIMIT:.2f})"]
    ratios = {k.split("/")[2]: v for k, v in metrics.items() if k.startswith("speed/ratio/")}
    if ratios:
        lines.append("step time " + "  ".join(f"{k} {v:.2f}x" for k, v in ratios.items())
                     + f"  (fp32/fp32 noise floor {m('speed/noise_floor'):.2f}x)")
    return lines
