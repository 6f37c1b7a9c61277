"""`train_and_evaluate`: one tracked run of a document-000 variant.

Data (simulated and cached, or the user's MLGWSC-1 file) -> the variant's Flax model -> jitted
training under the fixlab JAX monitor, keeping the parameters with the best validation ROC AUC
-> test metrics, figures and the document's claims -> the checkpoint registered as a pyfunc
(gated on health). Everything measured is logged, whatever it says about the document.
"""

from __future__ import annotations

import html
import math
import tempfile
import time
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Callable

import flax
import jax
import mlflow
import numpy as np
import optax
from flax import nnx
from tqdm.auto import tqdm

from jax_modules.cpc_snn_gw.models import build_model
from jax_modules.cpc_snn_gw.steps import make_predict, make_train_step, predict_in_batches, split_model
from jax_modules.cpc_snn_gw.task_gradients import make_task_probe
from jax_modules.cpc_snn_gw.variants import Variant, variant_config
from mlflow_plugins.jax import JaxMonitor, monitored, probe_norms, unprobe_norms, watch_jax
from mlflow_plugins.registry import Evidence, RegistrationResult, register_pyfunc, steps_needed
from projects.common.comparison import refuse_resume
from projects.common.entry import RunSummary
from projects.common.jax_checkpoint import load_train_state, save_train_state
from projects.common.run import ProjectRun, finish_run, open_run
from projects.cpc_snn_gw import detection
from projects.cpc_snn_gw.config import SPEC, VARIANTS, CpcGwConfig
from projects.cpc_snn_gw.data import RunData, Windows, load_run_data
from projects.cpc_snn_gw.figures import efficiency_figure, roc_figure
from projects.cpc_snn_gw.reference import matched_filter_scores, reference_metrics
from projects.cpc_snn_gw.schedule import learning_rate

__all__ = ["RunSummary", "TrainState", "Trained", "train_and_evaluate", "train_in", "timed_run_data", "train_epoch",
           "evaluate", "keep_best"]

FARS = (1e-2, 1e-3)
SNR_BINS = 8
TRAIN_STATE = "train_state.msgpack"  # in the run's checkpoint folder, rewritten after every epoch


def headline(metrics: dict[str, float]) -> list[str]:
    """The run's key numbers for the terminal."""
    m = lambda key: metrics.get(key, math.nan)  # noqa: E731
    return [f"train/acc {m('train/acc'):.4f}  test/acc {m('test/acc'):.4f}  test/auc {m('test/auc'):.4f}  "
            f"TPR@FAR 1e-2 {m('test/tpr_at_far_1e-2'):.3f}  1e-3 {m('test/tpr_at_far_1e-3'):.3f}",
            f"{m('perf/train_samples_per_s'):.0f} training / {m('perf/infer_samples_per_s'):.0f} "
            "inference windows per second"] + ([
            f"matched filter: TPR@FAR 1e-2 {m('mf/tpr_at_far_1e-2'):.3f}, SNR at 50 % {m('mf/snr50_far_1e-2'):.2f} "
            f"(network {m('test/snr50_far_1e-2'):.2f}): the network reaches {m('vs_mf/tpr_ratio_far_1e-2'):.2f} of "
            f"its TPR, {m('vs_mf/distance_ratio_far_1e-2'):.2f} of its sensitive distance"]
        if "mf/tpr_at_far_1e-2" in metrics else [])


def far_label(far: float) -> str:
    """1e-2 for 0.01: the false-alarm rate as it appears in metric names."""
    mantissa, exponent = f"{far:.0e}".split("e")
    return f"{mantissa}e{int(exponent)}"


def split_scores(prefix: str, probs: np.ndarray, windows: Windows) -> dict[str, float]:
    """Accuracy at 0.5, ROC AUC and true-positive rate at each false-alarm rate of one split."""
    metrics = {f"{prefix}/acc": float(np.mean((probs > 0.5) == (windows.y == 1)))}
    if 0 < windows.y.sum() < len(windows):
        metrics[f"{prefix}/auc"] = detection.roc_auc(probs, windows.y)
        for far in FARS:
            tpr, resolved = detection.tpr_at_far(probs, windows.y, far)
            metrics[f"{prefix}/tpr_at_far_{far_label(far)}"] = tpr if resolved else math.nan
    return metrics


@dataclass(frozen=True)
class TrainState:
    """Everything the next epoch depends on; checkpointed after every epoch.

    `params`, `opt_state` and `best_params` are array pytrees; the rest is plain values.
    """

    params: Any
    opt_state: Any
    best_params: Any
    shuffle: dict[str, Any]                  # the numpy bit generator's state: the next epoch's order (and
                                             # with fresh data its windows)
    epoch: int = 0                           # epochs done
    step: int = 0                            # optimizer updates done
    best_score: float = -math.inf            # validation ROC AUC (accuracy when AUC is undefined)
    history: dict[str, float] = field(default_factory=dict)  # best/*, fit/acc_epoch5
    train_seconds: float = 0.0               # in training steps, task probes excluded
    data_seconds: float = 0.0                # drawing fresh training windows

    def trees(self) -> dict[str, Any]:
        return {"params": self.params, "opt_state": self.opt_state, "best_params": self.best_params}

    def record(self) -> dict[str, Any]:
        return {"shuffle": self.shuffle, "epoch": self.epoch, "step": self.step, "best_score": self.best_score,
                "history": self.history, "train_seconds": self.train_seconds, "data_seconds": self.data_seconds}


@dataclass(frozen=True)
class Loop:
    """What stays fixed while a run trains: the data, the compiled steps, the monitor, the run."""

    config: CpcGwConfig
    data: RunData
    graphdef: Any
    rest: Any
    train_step: Callable[..., Any]
    predict: Callable[..., Any]
    task_probe: Callable[..., Any] | None
    monitor: JaxMonitor
    run: ProjectRun
    bar: Any

    @property
    def n_batches(self) -> int:
        return len(self.data.train) // self.config.batch_size


def train_epoch(loop: Loop, state: TrainState) -> tuple[TrainState, dict[str, float]]:
    """One epoch of shuffled batches under the monitor (with fresh data, of windows drawn for it); the state
    after it and the epoch's means."""
    config = loop.config
    rng = np.random.Generator(np.random.PCG64())
    rng.bit_generator.state = state.shuffle
    data_start = time.perf_counter()
    train = loop.data.train if loop.data.fresh is None else loop.data.fresh.epoch(rng, state.epoch + 1)
    data_seconds = time.perf_counter() - data_start
    order = rng.permutation(len(train))
    params, opt_state, step, probe_seconds = state.params, state.opt_state, state.step, 0.0
    epoch_metrics = []
    start = time.perf_counter()
    for b in range(loop.n_batches):
        idx = order[b * config.batch_size:(b + 1) * config.batch_size]
        x, y = train.x[idx], train.y[idx]
        before = params
        params, opt_state, metrics, inter = loop.train_step(params, loop.rest, opt_state, x, y)
        loop.monitor.observe(step, opt_state, intermediates=inter,  # steps count from 0, one per update
                             locate=lambda before=before, x=x: (nnx.merge(loop.graphdef, before, loop.rest), (x,)))
        if loop.task_probe is not None and step % config.log_every == 0:
            probe_start = time.perf_counter()
            tasks = jax.device_get(loop.task_probe(params, loop.rest, x, y))
            loop.run.log_metrics({f"tasks/{k}": float(v) for k, v in tasks.items()}, step=step)
            probe_seconds += time.perf_counter() - probe_start
        step += 1
        epoch_metrics.append(metrics)
        loop.bar.update()
    means = {k: float(v) for k, v in jax.device_get(jax.tree.map(lambda *v: np.mean(v), *epoch_metrics)).items()}
    seconds = time.perf_counter() - start - probe_seconds
    if loop.data.fresh is not None:  # drawing the windows must not dominate the steps
        loop.run.log_metrics({"perf/epoch_data_seconds": data_seconds, "perf/epoch_train_seconds": seconds}, step=step)
    return replace(state, params=params, opt_state=opt_state, step=step, shuffle=rng.bit_generator.state,
                   train_seconds=state.train_seconds + seconds, data_seconds=state.data_seconds + data_seconds), means


def evaluate(loop: Loop, params: Any, windows: Windows, prefix: str) -> dict[str, float]:
    """The scores of `params` on one split (`prefix`/acc, /auc, /tpr_at_far_*)."""
    return split_scores(prefix, predict_in_batches(loop.predict, params, loop.rest, windows.x), windows)


def keep_best(state: TrainState, val: dict[str, float]) -> TrainState:
    """The state, keeping its parameters as the best if they beat the best validation score."""
    score = val.get("val/auc", val["val/acc"])
    if not score > state.best_score:
        return state
    best = {"best/epoch": state.epoch, **{f"best/{k.replace('/', '_')}": v for k, v in val.items()}}
    return replace(state, best_params=state.params, best_score=score, history={**state.history, **best})


def fit(loop: Loop, state: TrainState) -> TrainState:
    """Epochs from `state.epoch + 1` to `config.n_epochs`: train, validate, log, keep the best, checkpoint."""
    for epoch in range(state.epoch + 1, loop.config.n_epochs + 1):
        state, means = train_epoch(loop, state)
        val = evaluate(loop, state.params, loop.data.val, "val")
        # fit/*: running means over the epoch's updates; train/* is the kept model evaluated at the end
        loop.run.log_metrics({"epoch": epoch, **{f"fit/{k}": v for k, v in means.items()}, **val},
                             step=state.step)  # the optimizer step, the x axis of grad_norm/*
        state = replace(state, epoch=epoch)
        if epoch == 5:  # the document: "> 70 % within 5 epochs"
            state = replace(state, history={**state.history, "fit/acc_epoch5": means["acc"]})
        state = keep_best(state, val)
        save_train_state(loop.run.folder.file(TRAIN_STATE), state.trees(),
                         {**state.record(), "monitor": loop.monitor.state_dict()})
        loop.bar.set_postfix(loss=f"{means['loss']:.3f}", acc=f"{means['acc']:.3f}",
                             val_auc=f"{val.get('val/auc', val['val/acc']):.3f}")
    return state


def resumed_state(loop: Loop, fresh: TrainState) -> TrainState:
    """The state the run's last checkpoint holds (the monitor continues from it), or `fresh`."""
    path = loop.run.folder.file(TRAIN_STATE)
    if not (loop.run.resumed and path.is_file()):
        return fresh
    trees, record = load_train_state(path, fresh.trees())
    loop.monitor.load_state_dict(record.pop("monitor"))
    return TrainState(**trees, **record)


@dataclass(frozen=True)
class Trained:
    """What `train_in` leaves: the model's pieces and kept state, the monitor's verdict, the metrics."""

    graphdef: Any
    rest: Any
    state: TrainState
    findings: list[Any]
    steps_needed: int            # steps the monitor's rules need to judge (the registration gate's)
    metrics: dict[str, float]


def train_and_evaluate(config: CpcGwConfig, progress: bool = True, *, resume: str | None = None) -> RunSummary:
    """Train, test, measure claims, register; all inside one MLflow run (a comparison: its parent,
    with a nested run per configuration and seed).

    Args:
        resume: the id of a run of this config that died, to continue from its last epoch.

    Raises:
        ValueError: `resume` of a comparison, or a batch larger than the training set.
        Whatever training raises; the run is then marked FAILED.
    """
    if config.is_comparison:
        from projects.cpc_snn_gw.comparisons import run_comparison

        refuse_resume(config.variant, resume)
        return run_comparison(config, progress)
    data, data_seconds = timed_run_data(config, progress)
    variant = Variant(variant_config(config.variant), config.learning_rate)
    with open_run(SPEC, config, resume=resume) as run:
        run.log_metrics({"perf/data_seconds": data_seconds})
        trained = train_in(run, config, variant, data, matched_filter_scores(config, data.test),
                           label=config.variant, description=VARIANTS[config.variant], progress=progress)
        return finish_run(
            run, findings=trained.findings, metrics=trained.metrics, headline=headline(trained.metrics),
            register=lambda health: _register(trained.graphdef, trained.state.best_params, trained.rest, data,
                                               run.run_id, trained.state.step, trained.steps_needed,
                                               trained.metrics, health),
            sections=_report_sections(run.run_id))


def timed_run_data(config: CpcGwConfig, progress: bool) -> tuple[RunData, float]:
    """The run's windows and the seconds they took (simulated or read).

    Raises:
        ValueError: `batch_size` larger than the training set (an MLGWSC-1 file can be short).
    """
    t0 = time.perf_counter()
    data = load_run_data(config, progress=progress)
    if len(data.train) < config.batch_size:
        raise ValueError(f"batch_size={config.batch_size} is larger than the {len(data.train)} training windows; "
                         "allowed: at most the training set size")
    return data, time.perf_counter() - t0


def train_in(run: ProjectRun, config: CpcGwConfig, variant: Variant, data: RunData, reference: np.ndarray | None,
             *, label: str, description: str, progress: bool = True) -> Trained:
    """Train `variant` on `data` inside the open `run` (a project run or a comparison's child), keep the
    best validation epoch, and log its test metrics and figures beside the matched filter's `reference`
    scores of the test windows (None: no reference).

    `config` gives the seed (weights and shuffle), epochs, batch size and diagnostics; the model and
    learning rate are `variant`'s; `label` names the progress bar and figures, `description` the run.
    """
    model_config = variant.model
    model = build_model(model_config, seed=config.seed)
    probed = probe_norms(model)
    graphdef, params, rest = split_model(model)
    tx = monitored(optax.adam(learning_rate(config, variant.learning_rate, len(data.train) // config.batch_size)),
                   log_every=config.log_every)
    n_params = sum(int(np.prod(p.shape)) for p in jax.tree.leaves(params))
    run.log_params({
        **config.to_params(), "learning_rate": variant.learning_rate, "document_row": description,
        "data.source": data.source, "data.n_train": len(data.train), "data.n_val": len(data.val),
        "data.n_test": len(data.test), "data.window": data.train.x.shape[-1], "n_params": n_params,
        "norm_probes": ",".join(probed) or "none", **{f"model.{k}": v for k, v in vars(model_config).items()},
    })
    run.log_metrics({"data/generated": float(data.generated)})
    n_batches = len(data.train) // config.batch_size
    with watch_jax(params, policy=config.policy, run_id=run.run_id) as monitor, \
            tqdm(total=config.n_epochs * n_batches, desc=label, unit="step", disable=not progress) as bar:
        loop = Loop(config, data, graphdef, rest, make_train_step(graphdef, tx, model_config.infonce_weight),
                    make_predict(graphdef),
                    # CPC models: the encoder's gradient per loss, and the spike bridge's surrogate
                    make_task_probe(graphdef) if hasattr(model, "encoder") else None, monitor, run, bar)
        fresh = TrainState(params, tx.init(params), params, np.random.default_rng(config.seed).bit_generator.state)
        state = resumed_state(loop, fresh)
        bar.update(state.step)
        state = fit(loop, state)
    metrics, test_probs = test_metrics(loop, state)
    if reference is not None:
        metrics.update(reference_metrics(test_probs, reference, data.test, FARS, far_label))
    title = f"{label}: test set, {len(data.test)} windows"
    metrics.update(log_figures(run.run_id, title, data.test, test_probs, metrics.get("test/auc", math.nan),
                               reference))
    run.log_metrics(metrics)
    return Trained(graphdef, rest, state, list(monitor.findings), steps_needed(monitor.t), metrics)


def test_metrics(loop: Loop, state: TrainState) -> tuple[dict[str, float], np.ndarray]:
    """The best parameters on train (the document's "Train Acc") and test, and throughput; and the
    test set's probabilities."""
    train = evaluate(loop, state.best_params, loop.data.train, "train")
    start = time.perf_counter()
    test_probs = predict_in_batches(loop.predict, state.best_params, loop.rest, loop.data.test.x)
    infer_seconds = time.perf_counter() - start
    metrics = {**state.history, **train, **split_scores("test", test_probs, loop.data.test),
               "perf/train_samples_per_s": state.step * loop.config.batch_size / state.train_seconds,
               "perf/infer_samples_per_s": len(loop.data.test) / infer_seconds, "chance/acc": 0.5}
    if loop.data.fresh is not None:
        metrics["perf/data_seconds_per_epoch"] = state.data_seconds / max(state.epoch, 1)
        metrics["perf/train_seconds_per_epoch"] = state.train_seconds / max(state.epoch, 1)
    return metrics, test_probs


def log_figures(run_id: str, title: str, test: Windows, test_probs: np.ndarray, auc: float,
                reference: np.ndarray | None = None) -> dict[str, float]:
    """Logs the ROC curve and the efficiency against SNR of the test set (with the matched filter's
    beside the network's when there is a `reference`); returns the efficiencies per SNR bin (empty
    when the test set has one class only)."""
    efficiencies: dict[str, float] = {}
    if not 0 < test.y.sum() < len(test):
        return efficiencies
    client = mlflow.MlflowClient()
    far, tpr = detection.roc_curve(test_probs, test.y)
    client.log_figure(run_id, roc_figure(far, tpr, auc, title), "figures/roc.png")
    if np.isfinite(test.snr[test.y == 1]).any():
        curves = _efficiency_curves(test_probs, test, efficiencies)
        if reference is not None:
            curves += _efficiency_curves(reference, test, {}, prefix="matched filter, ", at_half=False)
        client.log_figure(run_id, efficiency_figure(curves, title), "figures/efficiency_vs_snr.png")
    return efficiencies


def _efficiency_curves(probs: np.ndarray, test: Windows, metrics: dict[str, float], *, prefix: str = "",
                       at_half: bool = True) -> list[Any]:
    """Efficiency per SNR bin at each resolved false-alarm rate (and at p > 0.5 with `at_half`);
    added to `metrics`. `prefix` starts each curve's label (e.g. the detector's name)."""
    snr = test.snr[test.y == 1]
    edges = np.linspace(np.nanmin(snr), np.nanmax(snr) + 1e-6, SNR_BINS + 1)
    noise = probs[test.y == 0]
    thresholds = [("p > 0.5", "p0.5", 0.5)] * at_half + [
        (f"{prefix}false-alarm rate {far:g}", f"far_{far_label(far)}", detection.threshold_at_far(noise, far))
        for far in FARS if detection.far_resolved(len(noise), far)]
    curves = []
    for label, key, threshold in thresholds:
        curve = detection.efficiency_vs_snr(probs, test.y, np.nan_to_num(test.snr), threshold, edges, label)
        curves.append(curve)
        for lo, eff in zip(curve.bin_edges[:-1], curve.efficiency):
            if np.isfinite(eff):
                metrics[f"test/efficiency_{key}/snr_{lo:.1f}"] = float(eff)
    return curves


def _register(graphdef: Any, params: Any, rest: Any, data: RunData, run_id: str, steps: int, needed: int,
              metrics: dict[str, float], health: str) -> RegistrationResult:
    """The best parameters as pyfunc `cpc-snn-gw`: data only (config JSON + msgpack weights) for the
    installed loader `projects.cpc_snn_gw.serving`, behind the gate: the `steps` the JAX monitor observed
    (of the `needed` its rules need to judge) and best/val_auc against chance (0.5)."""
    from mlflow.models import ModelSignature
    from mlflow.types import Schema, TensorSpec

    from projects.cpc_snn_gw import serving

    window = data.train.x.shape[1:]
    signature = ModelSignature(inputs=Schema([TensorSpec(np.dtype(np.float32), (-1, *window))]),
                               outputs=Schema([TensorSpec(np.dtype(np.float32), (-1,))]))
    tracking_uri = mlflow.get_tracking_uri()
    evidence = Evidence(steps=steps, baseline=SPEC.baseline_value(metrics), steps_needed=needed)
    with tempfile.TemporaryDirectory(prefix="cpc_snn_gw_") as tmp:
        model = nnx.merge(graphdef, params, rest)
        unprobe_norms(model)  # the registered model is the plain one: no probe taps among its weights
        return register_pyfunc(
            serving.__name__, serving.save(model, Path(tmp) / "model"), signature=signature,
            input_example=data.test.x[:2], project=SPEC.registered_model, run_id=run_id,
            metric=SPEC.selection_metric, value=metrics.get(SPEC.selection_metric, math.nan),
            greater_is_better=SPEC.greater_is_better, health=health, evidence=evidence,
            pip_requirements=[f"jax=={jax.__version__}", f"flax=={flax.__version__}", f"mlflow=={mlflow.__version__}",
                              "numpy"],
            tracking_uri=tracking_uri)


#: The measurements behind the document's two suspects (task_gradients), as the report shows them.
GRADIENT_STORY = (
    ("tasks/encoder_grad_bce", "encoder gradient from classification (BCE) alone"),
    ("tasks/encoder_grad_infonce", "encoder gradient from InfoNCE alone"),
    ("tasks/encoder_grad_cosine", "cosine between the two (-1 opposed, 0 unrelated, 1 aligned)"),
    ("tasks/spike_rate", "spike bridge: fraction of features firing"),
    ("tasks/surrogate_active", "spike bridge: fraction of inputs within 1/slope of threshold (surrogate passes a gradient)"),
    ("norm/encoder.l2/grad_ratio", "L2 normalization: gradient norm in / out"),
    ("norm/encoder.l2/magnitude_cv_in", "L2 normalization: spread of latent magnitudes going in"),
    ("norm/encoder.l2/magnitude_cv_out", "L2 normalization: spread coming out"),
)


def gradient_story_html(histories: dict[str, list[float]]) -> str:
    """A table of first / median / last value of each measurement the run logged ('' if none)."""
    rows = []
    for key, meaning in GRADIENT_STORY:
        values = histories.get(key)
        if values:
            cells = [key, meaning, *(f"{v:.3g}" for v in (values[0], float(np.median(values)), values[-1]))]
            rows.append("<tr>" + "".join(f"<td>{html.escape(c)}</td>" for c in cells) + "</tr>")
    if not rows:
        return ""
    head = "".join(f"<th>{h}</th>" for h in ("metric", "what it measures", "first", "median", "last"))
    return f"<table>\n<thead><tr>{head}</tr></thead>\n<tbody>\n" + "\n".join(rows) + "\n</tbody>\n</table>"


def _report_sections(run_id: str) -> dict[str, str]:
    """The report's project section after the claims: the gradient measurements, if any."""
    client = mlflow.MlflowClient()
    histories = {key: [m.value for m in client.get_metric_history(run_id, key)] for key, _ in GRADIENT_STORY}
    story = gradient_story_html(histories)
    return {"What the gradients did (the document's suspects, measured)": story} if story else {}
