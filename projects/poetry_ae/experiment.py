"""`train_and_evaluate`: one tracked run of document 002 (a single model, or a comparison's parent).

A single run (`ae_rnn_baseline`, `ae_rnn_scaled`, `ae_lstm_attention_cosine`) trains one
autoencoder with the gradient-health callback, tests its best checkpoint, logs what the note
measured (token and sequence cosine, MSE/RMSE, best epoch, parameters, bottleneck dimensions used,
PCA variance of the latents), a figure of the latents by sequence length and reconstructed poems,
measures the claims and registers the model behind the gate. `ae_rnn_scaled` also trains the
64-hidden baseline as a nested child, so the note's direction (512 beats 64) is measured in one run.
Comparisons are in `comparisons`.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, replace
from functools import cached_property
from typing import Any

import lightning as L
import mlflow
import numpy as np
import torch

from mlflow_plugins import GradientHealthCallback
from mlflow_plugins.findings import Finding
from mlflow_plugins.registry import RegistrationResult, steps_needed
from projects.common.child_run import child_run
from projects.common.comparison import refuse_resume
from projects.common.entry import RunSummary
from projects.common.epoch_history import EpochHistory
from projects.common.lightning_fit import FitResult, fit_and_test, register_fit
from projects.common.run import ProjectRun, finish_run, open_run
from projects.poetry_ae.config import SPEC, PoetryRunConfig
from projects.poetry_ae.data import PoemData, load_data
from projects.poetry_ae.figures import latents_figure, reconstruction_text

__all__ = ["RunSummary", "train_and_evaluate", "Fitted", "fit_model", "outcome_metrics", "DOCUMENT_DIM"]

DOCUMENT_DIM = 300  # the note's GloVe vectors
SHOWN = 12          # reconstructed sequences in the text artifact


@dataclass
class Fitted:
    """A trained autoencoder and what its training measured."""

    module: Any  # PoetryAEModule
    fit: FitResult
    history: EpochHistory
    findings: list[Finding]
    evidence_k: int
    train_seconds: float
    data: PoemData

    @property
    def codes(self) -> set[str]:
        return {f.code for f in self.findings}

    @cached_property
    def test_latents(self) -> tuple[np.ndarray, float]:
        """The test split's bottleneck vectors, encoded once, and the seconds that took."""
        start = time.perf_counter()
        z = self.module.latents(self.data.datamodule.test_dataloader())
        return z, time.perf_counter() - start


def model_config(config: PoetryRunConfig, data: PoemData, **changes: Any) -> Any:
    """The `AEConfig` of a run: the variant's architecture, the run's sizes, the data's dimension."""
    from lightning_modules.poetry_ae import AEConfig

    return AEConfig(**{"input_dim": data.input_dim, **config.model_fields(), **changes})


def fit_model(run: ProjectRun, config: PoetryRunConfig, data: PoemData, model: Any) -> Fitted:
    """Train `model` in `run` with the gradient-health callback, then test its best checkpoint."""
    from lightning_modules.poetry_ae import PoetryAEModule

    L.seed_everything(run.config.seed, workers=True, verbose=False)
    module = PoetryAEModule(model, seed=run.config.seed)
    health = GradientHealthCallback(log_every=config.log_every, policy=config.policy)
    history = EpochHistory(("val/", "train/"))
    start = time.perf_counter()
    fit = fit_and_test(run, module, data.datamodule, callbacks=[health, history], epochs=config.n_epochs)
    return Fitted(module, fit, history, list(health.findings), steps_needed(health.t), time.perf_counter() - start,
                  data)


def outcome_metrics(fitted: Fitted, data: PoemData, config: PoetryRunConfig) -> dict[str, float | None]:
    """What one trained autoencoder measured, under the names the claims and tables use."""
    from lightning_modules.poetry_ae import PoetryAutoencoder, effective_dims, participation_ratio, pca_variance

    module, tested = fitted.module, fitted.fit.tested
    val = fitted.history.series("val/token_cosine")
    z, encode_s = fitted.test_latents
    pca = pca_variance(z)
    at_document = PoetryAutoencoder(replace(module.config, input_dim=DOCUMENT_DIM)).param_counts()["total"]
    n_train = len(data.datamodule.split_indices["train"])
    metrics: dict[str, float | None] = {
        **{f"test/{k}": tested.get(f"test/{k}") for k in ("token_cosine", "seq_cosine", "mse", "rmse")},
        "best/epoch": float(val.index(max(val)) + 1) if val else None,
        "best/val_token_cosine": fitted.fit.best_score,
        **{f"n_params/{k}": float(v) for k, v in module.model.param_counts().items()},
        "n_params/at_document_dim": float(at_document),
        "latent/effective_dims": float(effective_dims(z)),
        "latent/participation_ratio": float(participation_ratio(z)),
        **{f"latent/pca_var_{i + 1}": float(v) for i, v in enumerate(pca[:3])},
        "grad/vanishing_found": float("GRAD_VANISHING" in fitted.codes),
        **data.mean_vector_cosines(),
        "data/sequences": float(len(data.arrays.x)), "data/preservation": float(data.arrays.preservation),
        "data/coverage": float(data.arrays.coverage),
        "perf/train_seq_per_s": n_train * config.n_epochs / max(fitted.train_seconds, 1e-9),
        "perf/encode_seq_per_s": len(z) / max(encode_s, 1e-9),
    }
    return metrics


def log_outputs(run: ProjectRun, fitted: Fitted, data: PoemData, title: str) -> None:
    """The latents figure and the reconstructed poems (nearest vocabulary words) of the test split."""
    from lightning_modules.poetry_ae import token_cosine

    client = mlflow.MlflowClient()
    test = data.datamodule.split_indices["test"]
    z, _ = fitted.test_latents
    client.log_figure(run.run_id, latents_figure(z, data.arrays.lengths[test], f"{title}: test latents"),
                      "figures/latents_by_length.png")
    shown = test[:SHOWN]
    x = torch.from_numpy(data.arrays.x[shown])
    mask = torch.from_numpy(data.arrays.mask[shown])
    lengths = torch.from_numpy(data.arrays.lengths[shown])
    recon = fitted.module.reconstruct(x, mask, lengths)
    originals, guesses, cosines = [], [], []
    for i, row in enumerate(shown):
        n = int(data.arrays.lengths[row])
        originals.append(list(data.arrays.tokens[row][:n]))
        guesses.append(data.vectors.nearest(recon[i, :n].numpy()))
        cosines.append(float(token_cosine(recon[i:i + 1], x[i:i + 1], mask[i:i + 1])))
    client.log_text(run.run_id, reconstruction_text(originals, guesses, cosines, f"{title}: test reconstructions"),
                    "reconstructions.txt")


def register(run: ProjectRun, fitted: Fitted, data: PoemData, health: str, baseline: float) -> RegistrationResult:
    """The best weights (tested) as `poetry-ae`, behind the champion gate."""
    from lightning_modules.poetry_ae import RegisteredAutoencoder

    return register_fit(run, RegisteredAutoencoder.of(fitted.module.model), fitted.fit, health=health,
                        baseline=baseline, steps_needed=fitted.evidence_k,
                        input_example=torch.from_numpy(data.arrays.x[:2]))


def train_and_evaluate(config: PoetryRunConfig, *, resume: str | None = None) -> RunSummary:
    """Train, test, measure claims, register; all inside one MLflow run.

    Raises:
        ValueError: `resume` of a comparison run.
        Whatever training raises; the run is then marked FAILED.
    """
    if config.is_comparison:
        from projects.poetry_ae.comparisons import run_comparison

        refuse_resume(config.entry_point, resume)
        return run_comparison(config)
    data = load_data(config)
    with open_run(SPEC, config, resume=resume) as run:
        model = model_config(config, data)
        run.log_params({**config.to_params(), "data.source": data.source, **{f"model.{k}": v for k, v in
                                                                               config.model_fields().items()}})
        fitted = fit_model(run, config, data, model)
        metrics = outcome_metrics(fitted, data, config)
        log_outputs(run, fitted, data, config.entry_point)
        if config.variant == "rnn_scaled":
            metrics.update(_reference_64(run, config, data, metrics))
        run.log_metrics({k: v for k, v in metrics.items() if not k.startswith(("test/", "val/"))})
        baseline = SPEC.baseline_value(metrics)
        return finish_run(run, findings=fitted.findings, metrics=metrics,
                          register=lambda health: register(run, fitted, data, health, baseline),
                          headline=headline(metrics))


def _reference_64(run: ProjectRun, config: PoetryRunConfig, data: PoemData, metrics: dict[str, Any]
                  ) -> dict[str, float]:
    """The 64-hidden baseline on the same data and seed, as a nested child; the gain over it."""
    reference = config.child(hidden=64)
    with child_run(run, reference, child=f"hidden64/seed{config.seed}") as child:
        fitted = fit_model(child, reference, data, model_config(reference, data))
        ref = outcome_metrics(fitted, data, reference)
        child.log_metrics({k: v for k, v in ref.items() if not k.startswith(("test/", "val/"))})
    gain = (metrics["test/token_cosine"] or math.nan) - (ref["test/token_cosine"] or math.nan)
    return {"scaled/reference_token_cosine": ref["test/token_cosine"], "scaled/gain_over_64": gain}


def headline(metrics: dict[str, float | None]) -> list[str]:
    m = lambda key: math.nan if metrics.get(key) is None else metrics[key]  # noqa: E731
    lines = [f"test token cosine {m('test/token_cosine'):.4f}  sequence cosine {m('test/seq_cosine'):.4f}  "
             f"mse {m('test/mse'):.4f}  (predicting the mean word vector: {m('mean/token_cosine'):.4f} and "
             f"{m('mean/seq_cosine'):.4f})",
             f"best epoch {m('best/epoch'):.0f}  parameters {m('n_params/total'):.0f} "
             f"({m('n_params/at_document_dim'):.0f} at 300-d)  bottleneck dims used {m('latent/effective_dims'):.0f}",
             f"{m('perf/train_seq_per_s'):.0f} sequences/s training, {m('perf/encode_seq_per_s'):.0f} encoding"]
    if "scaled/gain_over_64" in metrics:
        lines.append(f"hidden 64 reference: {m('scaled/reference_token_cosine'):.4f} (gain {m('scaled/gain_over_64'):+.4f})")
    return lines
