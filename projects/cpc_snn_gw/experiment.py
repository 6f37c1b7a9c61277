"""`train_and_evaluate`: one tracked run of a document-000 variant.

Data (simulated and cached, or the user's MLGWSC-1 file) -> the variant's Flax model -> jitted
training under the fixlab JAX monitor, keeping the parameters with the best validation ROC AUC
-> test metrics, figures and the document's claims -> the checkpoint registered as a pyfunc
(gated on health). Everything measured is logged, whatever it says about the document.
"""

from __future__ import annotations

import html
import json
import math
import tempfile
import time
from pathlib import Path
from typing import Any, Callable

import flax
import jax
import mlflow
import numpy as np
import optax
from flax import nnx
from tqdm.auto import tqdm

from jax_modules.cpc_snn_gw.checkpoint import save_weights
from jax_modules.cpc_snn_gw.models import build_model
from jax_modules.cpc_snn_gw.steps import make_predict, make_train_step, predict_in_batches, split_model
from jax_modules.cpc_snn_gw.task_gradients import make_task_probe
from jax_modules.cpc_snn_gw.variants import variant_config
from mlflow_plugins.claims import claims_html, evaluate, load_claims, log_claims
from mlflow_plugins.findings import Finding, finding_codes, overall_health
from mlflow_plugins.jax import monitored, probe_norms, unprobe_norms, watch_jax
from mlflow_plugins.run_record import run_report
from mlflow_plugins.registry import register_pyfunc
from projects.common.entry import RunSummary
from projects.common.tracking import fixlab_tags, log_metrics_now, log_params_once, tracked_run
from projects.cpc_snn_gw import detection
from projects.cpc_snn_gw.config import CLAIMS_FILE, DOCUMENT, PROJECT, REGISTERED_MODEL, VARIANTS, CpcGwConfig
from projects.cpc_snn_gw.data import RunData, Windows, load_run_data
from projects.cpc_snn_gw.figures import efficiency_figure, roc_figure

__all__ = ["RunSummary", "train_and_evaluate"]

SELECTION_METRIC = "best/val_auc"  # ROC AUC of the kept parameters on the validation split
FARS = (1e-2, 1e-3)
SNR_BINS = 8


def headline(metrics: dict[str, float]) -> list[str]:
    """The run's key numbers for the terminal."""
    m = lambda key: metrics.get(key, math.nan)  # noqa: E731
    return [f"train/acc {m('train/acc'):.4f}  test/acc {m('test/acc'):.4f}  test/auc {m('test/auc'):.4f}  "
            f"TPR@FAR 1e-2 {m('test/tpr_at_far_1e-2'):.3f}  1e-3 {m('test/tpr_at_far_1e-3'):.3f}",
            f"{m('perf/train_samples_per_s'):.0f} training / {m('perf/infer_samples_per_s'):.0f} "
            "inference windows per second"]


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


def train_and_evaluate(config: CpcGwConfig, progress: bool = True) -> RunSummary:
    """Train, test, measure claims, register; all inside one MLflow run.

    Raises:
        Whatever training raises; the run is then marked FAILED.
    """
    t0 = time.perf_counter()
    data = load_run_data(config, progress=progress)
    data_seconds = time.perf_counter() - t0
    model_config = variant_config(config.variant)
    model = build_model(model_config, seed=config.seed)
    probed = probe_norms(model)
    graphdef, params, rest = split_model(model)
    tx = monitored(optax.adam(config.learning_rate), log_every=config.log_every)
    opt_state = tx.init(params)
    train_step = make_train_step(graphdef, tx, model_config.infonce_weight)
    predict = make_predict(graphdef)
    # CPC models: the encoder's gradient per loss, and the spike bridge's surrogate (task_gradients)
    task_probe = make_task_probe(graphdef) if hasattr(model, "encoder") else None
    n_params = sum(int(np.prod(p.shape)) for p in jax.tree.leaves(params))

    tags = fixlab_tags(PROJECT, config.variant, DOCUMENT)
    with tracked_run(experiment=config.experiment_name, tags=tags, run_name=config.variant) as run:
        run_id = run.info.run_id
        log_params_once(run_id, {
            **config.to_params(), "document_row": VARIANTS[config.variant], "data.source": data.source,
            "data.n_train": len(data.train), "data.n_val": len(data.val), "data.n_test": len(data.test),
            "data.window": data.train.x.shape[-1], "n_params": n_params, "norm_probes": ",".join(probed) or "none",
            **{f"model.{k}": v for k, v in vars(model_config).items()},
        })
        log_metrics_now(run_id, {"perf/data_seconds": data_seconds, "data/generated": float(data.generated)})
        with run_report(run_id) as report:  # written once, when this block ends
            with watch_jax(params, policy=config.policy, run_id=run_id) as monitor:
                best, history = _fit(config, data, train_step, predict, params, rest, opt_state, monitor,
                                     graphdef, task_probe, run_id, progress)
            findings: list[Finding] = list(monitor.findings)
            metrics = _test(config, data, predict, best, rest, run_id, history)
            health = overall_health(findings)
            claims = load_claims(CLAIMS_FILE).for_variant(config.variant)
            results = evaluate(claims, {k: v for k, v in metrics.items() if v is not None})
            log_claims(results, run_id)
            for title, section in _report_sections(run_id, results).items():
                report.add_section(title, section)
        registration = _register(model_config, graphdef, best, rest, data, run_id, metrics, health)

    metrics = {k: v for k, v in metrics.items() if v is not None}
    return RunSummary(
        project=PROJECT, registered_model=REGISTERED_MODEL, run_id=run_id, variant=config.variant,
        metrics=metrics, headline=headline(metrics), health=health, findings=sorted(set(finding_codes(findings).split(",")) - {""}),
        claims=[(r.claim.id, r.claim.expected, r.measured, r.verdict) for r in results],
        registered_version=registration.version, registration=registration.reason)


def _fit(config: CpcGwConfig, data: RunData, train_step: Callable[..., Any], predict: Callable[..., Any],
         params: Any, rest: Any, opt_state: Any, monitor: Any, graphdef: Any,
         task_probe: Callable[..., Any] | None, run_id: str, progress: bool) -> tuple[Any, dict[str, float]]:
    """Epochs of shuffled full batches; returns the best parameters by validation AUC and a history."""
    rng = np.random.default_rng(config.seed)
    n_batches = len(data.train) // config.batch_size
    if n_batches == 0:
        raise ValueError(f"batch_size={config.batch_size} is larger than the {len(data.train)} training windows; "
                         "allowed: at most the training set size")
    best_params, best_auc, history = params, -math.inf, {}
    step, train_seconds, probe_seconds = 0, 0.0, 0.0
    bar = tqdm(total=config.epochs * n_batches, desc=f"{config.variant}", unit="step", disable=not progress)
    for epoch in range(1, config.epochs + 1):
        order = rng.permutation(len(data.train))
        epoch_metrics = []
        start = time.perf_counter()
        for b in range(n_batches):
            idx = order[b * config.batch_size:(b + 1) * config.batch_size]
            x, y = data.train.x[idx], data.train.y[idx]
            before = params
            params, opt_state, metrics, inter = train_step(params, rest, opt_state, x, y)
            monitor.observe(step, opt_state, intermediates=inter,  # steps count from 0, one per update
                            locate=lambda before=before, x=x: (nnx.merge(graphdef, before, rest), (x,)))
            if task_probe is not None and step % config.log_every == 0:
                probe_start = time.perf_counter()
                tasks = {f"tasks/{k}": float(v) for k, v in jax.device_get(task_probe(params, rest, x, y)).items()}
                log_metrics_now(run_id, tasks, step=step)
                probe_seconds += time.perf_counter() - probe_start
            step += 1
            epoch_metrics.append(metrics)
            bar.update()
        means = {k: float(v) for k, v in jax.device_get(jax.tree.map(lambda *v: np.mean(v), *epoch_metrics)).items()}
        train_seconds += time.perf_counter() - start
        val_probs = predict_in_batches(predict, params, rest, data.val.x)
        val = split_scores("val", val_probs, data.val)
        # fit/*: running means over the epoch's updates; train/* is the kept model evaluated at the end
        logged = {"epoch": epoch, **{f"fit/{k}": v for k, v in means.items()}, **val}
        log_metrics_now(run_id, logged, step=step)  # the optimizer step, the x axis of grad_norm/*
        if epoch == 5:
            history["fit/acc_epoch5"] = means["acc"]  # the document: "> 70 % within 5 epochs"
        auc = val.get("val/auc", val["val/acc"])
        if auc > best_auc:
            best_params, best_auc = params, auc
            history.update({"best/epoch": epoch, **{f"best/{k.replace('/', '_')}": v for k, v in val.items()}})
        bar.set_postfix(loss=f"{means['loss']:.3f}", acc=f"{means['acc']:.3f}", val_auc=f"{auc:.3f}")
    bar.close()
    history["perf/train_samples_per_s"] = step * config.batch_size / (train_seconds - probe_seconds)
    return best_params, history


def _test(config: CpcGwConfig, data: RunData, predict: Callable[..., Any], params: Any, rest: Any, run_id: str,
          history: dict[str, float]) -> dict[str, float]:
    """The best parameters on train (the document's "Train Acc") and test, the figures, throughput."""
    train_probs = predict_in_batches(predict, params, rest, data.train.x)
    start = time.perf_counter()
    test_probs = predict_in_batches(predict, params, rest, data.test.x)
    infer_seconds = time.perf_counter() - start
    metrics = {**history, **split_scores("train", train_probs, data.train),
               **split_scores("test", test_probs, data.test),
               "perf/infer_samples_per_s": len(data.test) / infer_seconds, "chance/acc": 0.5}
    test = data.test
    if 0 < test.y.sum() < len(test):
        title = f"{config.variant}: test set, {len(test)} windows"
        far, tpr = detection.roc_curve(test_probs, test.y)
        mlflow.log_figure(roc_figure(far, tpr, metrics["test/auc"], title), "figures/roc.png")
        snr = test.snr[test.y == 1]
        if np.isfinite(snr).any():
            mlflow.log_figure(efficiency_figure(_efficiency_curves(test_probs, test, metrics), title),
                              "figures/efficiency_vs_snr.png")
    log_metrics_now(run_id, metrics)
    return metrics


def _efficiency_curves(probs: np.ndarray, test: Windows, metrics: dict[str, float]) -> list[Any]:
    """Efficiency per SNR bin at p > 0.5 and at each resolved false-alarm rate; added to `metrics`."""
    snr = test.snr[test.y == 1]
    edges = np.linspace(np.nanmin(snr), np.nanmax(snr) + 1e-6, SNR_BINS + 1)
    noise = probs[test.y == 0]
    thresholds = [("p > 0.5", "p0.5", 0.5)] + [
        (f"false-alarm rate {far:g}", f"far_{far_label(far)}", detection.threshold_at_far(noise, far))
        for far in FARS if detection.far_resolved(len(noise), far)]
    curves = []
    for label, key, threshold in thresholds:
        curve = detection.efficiency_vs_snr(probs, test.y, np.nan_to_num(test.snr), threshold, edges, label)
        curves.append(curve)
        for lo, eff in zip(curve.bin_edges[:-1], curve.efficiency):
            if np.isfinite(eff):
                metrics[f"test/efficiency_{key}/snr_{lo:.1f}"] = float(eff)
    return curves


def _register(model_config: Any, graphdef: Any, params: Any, rest: Any, data: RunData, run_id: str,
              metrics: dict[str, float], health: str) -> Any:
    """The best parameters as pyfunc `cpc-snn-gw` (serving.py + msgpack weights), gated on health."""
    from mlflow.models import ModelSignature
    from mlflow.types import Schema, TensorSpec

    window = data.train.x.shape[1:]
    signature = ModelSignature(inputs=Schema([TensorSpec(np.dtype(np.float32), (-1, *window))]),
                               outputs=Schema([TensorSpec(np.dtype(np.float32), (-1,))]))
    with tempfile.TemporaryDirectory(prefix="cpc_snn_gw_") as tmp:
        weights, config_file = Path(tmp) / "weights.msgpack", Path(tmp) / "config.json"
        model = nnx.merge(graphdef, params, rest)
        unprobe_norms(model)  # the registered model is the plain one: no probe taps among its weights
        save_weights(model, weights)
        config_file.write_text(json.dumps(vars(model_config)))
        return register_pyfunc(
            Path(__file__).with_name("serving.py"), artifacts={"weights": weights, "config": config_file},
            signature=signature, input_example=data.test.x[:2], project=REGISTERED_MODEL, run_id=run_id,
            metric=SELECTION_METRIC, value=metrics.get(SELECTION_METRIC, math.nan), healthy=health != "critical",
            pip_requirements=[f"jax=={jax.__version__}", f"flax=={flax.__version__}", f"mlflow=={mlflow.__version__}",
                              "numpy"],
            tracking_uri=mlflow.get_tracking_uri())


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


def _report_sections(run_id: str, results: list[Any]) -> dict[str, str]:
    """The report's project sections: the claim verdicts and the gradient measurements."""
    client = mlflow.MlflowClient()
    histories = {key: [m.value for m in client.get_metric_history(run_id, key)] for key, _ in GRADIENT_STORY}
    sections = {f"Claims of document {DOCUMENT}": claims_html(results)}
    story = gradient_story_html(histories)
    if story:
        sections["What the gradients did (the document's suspects, measured)"] = story
    return sections
