"""One CV-KAN model trained inside a run (a project run or a comparison's child): the model's config
from the run's and the data's, the three fixlab callbacks, the Trainer's precision, and the
per-epoch history the figures and tables are drawn from."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import lightning as L
import numpy as np
import torch

from lightning_modules.cvkan import CVKANConfig, CVKANModule, trainer_precision
from mlflow_plugins import AmpNanCallback, GradientHealthCallback, NormalizationEffectCallback
from mlflow_plugins.findings import Finding
from mlflow_plugins.registry import RegistrationResult, steps_needed
from projects.common.epoch_history import EpochHistory
from projects.common.lightning_fit import FitResult, fit_and_test, register_fit
from projects.common.run import ProjectRun
from projects.cvkan.config import CVKANRunConfig
from projects.cvkan.data import DomainData

__all__ = ["Fitted", "model_config", "fit_model", "register", "pooled_phases", "HISTORY_PREFIXES"]

#: The per-epoch metrics kept in memory: polarization per block, validation, training loss.
HISTORY_PREFIXES = ("polar/", "val/", "train/loss_epoch")


@dataclass
class Fitted:
    """A trained model and what its training measured."""

    module: CVKANModule
    fit: FitResult
    history: EpochHistory
    findings: list[Finding]
    evidence_k: int  # the gradient callback's K, for the registration gate

    @property
    def codes(self) -> set[str]:
        return {f.code for f in self.findings}


def model_config(config: CVKANRunConfig, data: DomainData, **changes: Any) -> CVKANConfig:
    """The network of a run on `data`: the run's sizes, precision and norm, the data's shapes."""
    fields: dict[str, Any] = dict(d=config.d, hidden=config.hidden, n_layers=config.n_layers, lr=config.lr,
                                  norm_type=config.norm_type, precision_mode=config.precision_mode,
                                  **data.model_fields())
    return CVKANConfig(**{**fields, **changes})


def fit_model(run: ProjectRun, config: CVKANRunConfig, data: DomainData, model: CVKANConfig) -> Fitted:
    """Train `model` on `data` in `run` with the three fixlab callbacks, then test its best checkpoint."""
    L.seed_everything(run.config.seed, workers=True, verbose=False)
    module = CVKANModule(model)
    diagnostics = [cls(log_every=config.log_every, policy=config.policy)
                   for cls in (GradientHealthCallback, AmpNanCallback, NormalizationEffectCallback)]
    history = EpochHistory(HISTORY_PREFIXES)
    device = "cuda" if torch.cuda.is_available() else "cpu"
    fit = fit_and_test(run, module, data.datamodule, callbacks=[*diagnostics, history], epochs=config.n_epochs,
                       trainer_options=trainer_precision(model.precision_mode, device))
    return Fitted(module, fit, history, [f for cb in diagnostics for f in cb.findings],
                  steps_needed(diagnostics[0].t))


def register(run: ProjectRun, fitted: Fitted, data: DomainData, health: str, baseline: float
             ) -> RegistrationResult:
    """The best weights (tested) as the spec's registered model, behind the champion gate."""
    example = torch.from_numpy(np.ascontiguousarray(data.datamodule.example_input(2)))
    return register_fit(run, fitted.module.net, fitted.fit, health=health, baseline=baseline,
                        steps_needed=fitted.evidence_k, input_example=example)


def pooled_phases(module: CVKANModule, data: DomainData, split: str = "test") -> tuple[np.ndarray, np.ndarray]:
    """Phases (n, d) of the pooled complex vector the classification head reads, and the labels,
    of a split (the note's open question: what do phases encode?)."""
    pooled: list[torch.Tensor] = []
    handle = module.net.head.pool.register_forward_hook(lambda m, i, out: pooled.append(out.detach()))
    labels = []
    was_training = module.training
    module.eval()
    try:
        loader = getattr(data.datamodule, f"{split}_dataloader")()
        with torch.no_grad():
            for x, y in loader:
                module.net(x.to(module.device))
                labels.append(y.numpy())
    finally:
        handle.remove()
        module.train(was_training)
    return torch.angle(torch.cat(pooled)).cpu().numpy(), np.concatenate(labels)
