"""`FixMatchPUModule`: a particle classifier trained from labeled positives and unlabeled patches,
with FixMatch's consistency on unlabeled patches, logging what document 004 says to monitor."""

from __future__ import annotations

import math
from typing import Any, Mapping

import lightning as L
import torch
import torch.nn.functional as F
from torch.optim.swa_utils import AveragedModel, get_ema_multi_avg_fn
from torchmetrics.classification import BinaryAUROC, BinaryAveragePrecision

from lightning_modules.fixmatch_pu.augment import strong_view, weak_view
from lightning_modules.fixmatch_pu.backbones import build_backbone
from lightning_modules.fixmatch_pu.config import FixMatchPUConfig
from lightning_modules.fixmatch_pu.pu_risk import Risk, ge_binomial_risk, pn_risk, pu_risk

__all__ = ["FixMatchPUModule", "USAGE_THRESHOLDS", "rampup_weight"]

#: Confidence thresholds whose pseudo-label usage rate every run logs (the document's two).
USAGE_THRESHOLDS = (0.95, 0.75)


def rampup_weight(progress: float, rampup_epochs: int) -> float:
    """The share of the consistency weight at `progress` epochs: exp(-5 (1 - t)^2), t = progress /
    rampup_epochs clipped to [0, 1] (Laine and Aila's ramp-up); 1 without ramp-up."""
    if rampup_epochs <= 0:
        return 1.0
    t = min(max(progress / rampup_epochs, 0.0), 1.0)
    return math.exp(-5.0 * (1.0 - t) ** 2)


class FixMatchPUModule(L.LightningModule):
    """FixMatch + PU training of a patch classifier (one logit per patch).

    Per training step: the objective (`config.objective`) on weak views of the labeled positives and
    the unlabeled patches; with `config.fixmatch`, the teacher (EMA of the student, or the student
    itself) labels each unlabeled patch's weak view, and where its confidence max(p, 1 - p) reaches
    `config.threshold` the student's prediction on a strong view is trained towards that label,
    weighted by `consistency_weight` times the ramp-up.

    Logged per epoch: `train/loss`, `train/risk`, `pu/risk_positive`, `pu/risk_negative`,
    `train/consistency`, `train/consistency_weight`, `train/pseudo_label_rate` (usage at the run's
    threshold), `pseudo/rate_at_0.95` and `pseudo/rate_at_0.75`, `pseudo/label_accuracy` (of the
    used pseudo-labels, against the truth the simulator knows), `pu/predicted_positive_rate` (share
    of unlabeled patches the teacher calls particles), `pu/prior_configured` and, when given,
    `pu/prior_estimated`; on validation `val/auc`, `val/ap` (torchmetrics), `val/pred_std`,
    `val/pred_mean`, `val/loss`; on test the same under `test/`.

    Args:
        config: a `FixMatchPUConfig` or its dict.
        data_prior: the prior the data imply, logged beside the configured one (None: not logged).
    """

    def __init__(self, config: FixMatchPUConfig | Mapping[str, Any], data_prior: float | None = None) -> None:
        super().__init__()
        self.config = config if isinstance(config, FixMatchPUConfig) else FixMatchPUConfig(**config)
        self.data_prior = None if data_prior is None else float(data_prior)
        self.save_hyperparameters({"config": self.config.to_dict(), "data_prior": self.data_prior}, logger=False)
        self.net = build_backbone(self.config.backbone, self.config.width)
        self.teacher: AveragedModel | None = None
        if self.config.ema_decay > 0:
            self.teacher = AveragedModel(self.net, multi_avg_fn=get_ema_multi_avg_fn(self.config.ema_decay),
                                         use_buffers=True)
            self.teacher.requires_grad_(False)
        self.auc = torch.nn.ModuleDict({s: BinaryAUROC() for s in ("val", "test")})
        self.ap = torch.nn.ModuleDict({s: BinaryAveragePrecision() for s in ("val", "test")})
        self._moments: dict[str, torch.Tensor] = {}  # per evaluation split: n, sum p, sum p^2, loss sum
        self._pseudo = torch.zeros(2)  # this epoch: pseudo-labels used, of them right
        self._teacher_step = 0  # the global step the teacher last followed

    @property
    def evaluated(self) -> torch.nn.Module:
        """The network evaluated, registered and used for picking: the EMA teacher when there is one."""
        return self.teacher.module if self.teacher is not None else self.net

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.evaluated(x)

    # training ----------------------------------------------------------------------------------

    def objective(self, z_p: torch.Tensor, z_u: torch.Tensor) -> Risk:
        c = self.config
        if c.objective in ("nnpu", "upu"):
            return pu_risk(z_p, z_u, c.prior, non_negative=c.objective == "nnpu", beta=c.nnpu_beta, gamma=c.nnpu_gamma)
        if c.objective == "ge_binomial":
            return ge_binomial_risk(z_p, z_u, c.prior, weight=c.ge_weight)
        return pn_risk(z_p, z_u)

    def _teacher_probs(self, x_weak: torch.Tensor, z_weak: torch.Tensor) -> torch.Tensor:
        if self.teacher is None:
            return torch.sigmoid(z_weak.detach())
        was = self.teacher.training
        self.teacher.eval()
        with torch.no_grad():
            probs = torch.sigmoid(self.teacher(x_weak))
        self.teacher.train(was)
        return probs

    def training_step(self, batch: Mapping[str, Any], batch_idx: int) -> torch.Tensor:
        c = self.config
        (x_p,), (x_u, y_u) = batch["positive"], batch["unlabeled"]
        n_p, n_u = len(x_p), len(x_u)
        views = [weak_view(x_p), weak_view(x_u)]
        if c.fixmatch:
            views.append(strong_view(x_u))
        logits = self.net(torch.cat(views))  # one pass, so BatchNorm sees every view of the step
        z_p, z_u = logits[:n_p], logits[n_p:n_p + n_u]
        risk = self.objective(z_p, z_u)
        probs = self._teacher_probs(views[1], z_u)
        confidence = torch.maximum(probs, 1 - probs)
        used = confidence >= c.threshold
        pseudo = (probs >= 0.5).float()
        loss = risk.objective
        log = dict(on_step=False, on_epoch=True, batch_size=n_u)
        if c.fixmatch:
            z_s = logits[n_p + n_u:]
            consistency = (F.binary_cross_entropy_with_logits(z_s, pseudo, reduction="none") * used).mean()
            weight = c.consistency_weight * rampup_weight(self.current_epoch + batch_idx / max(self._batches(), 1),
                                                          c.rampup_epochs)
            loss = loss + weight * consistency
            self.log("train/consistency", consistency, **log)
            self.log("train/consistency_weight", weight, **log)
        self._pseudo = self._pseudo.to(loss.device) + torch.stack(
            [used.sum(), (used & (pseudo == y_u)).sum()]).float().detach()
        self.log("train/loss", loss, on_step=True, on_epoch=True, prog_bar=True, batch_size=n_u)
        self.log("train/risk", risk.risk, **log)
        self.log("pu/risk_positive", risk.positive, **log)
        self.log("pu/risk_negative", risk.negative, **log)
        self.log("train/pseudo_label_rate", used.float().mean(), **log)
        for tau in USAGE_THRESHOLDS:
            self.log(f"pseudo/rate_at_{tau}", (confidence >= tau).float().mean(), **log)
        self.log("pu/predicted_positive_rate", pseudo.mean(), **log)
        return loss

    def _batches(self) -> int:
        n = self.trainer.num_training_batches if self._trainer is not None else 0
        return int(n) if isinstance(n, (int, float)) and math.isfinite(n) else 0

    def on_train_batch_end(self, outputs: Any, batch: Any, batch_idx: int) -> None:
        """The teacher follows the student after every optimizer step (not every accumulated batch)."""
        if self.teacher is not None and self.trainer.global_step != self._teacher_step:
            self._teacher_step = self.trainer.global_step
            self.teacher.update_parameters(self.net)

    def on_train_epoch_end(self) -> None:
        used, right = self._pseudo.tolist() if self._pseudo.numel() else (0.0, 0.0)
        self._pseudo = torch.zeros(2, device=self._pseudo.device)
        self.log("pseudo/label_accuracy", right / used if used else math.nan)
        self.log("pu/prior_configured", self.config.prior)
        if self.data_prior is not None:
            self.log("pu/prior_estimated", self.data_prior)

    def configure_optimizers(self) -> dict[str, Any]:
        c = self.config
        optimizer = torch.optim.Adam(self.net.parameters(), lr=c.lr, weight_decay=c.weight_decay)
        steps = c.warmup_epochs * max(self.trainer.estimated_stepping_batches // max(self.trainer.max_epochs, 1), 1)
        schedule = torch.optim.lr_scheduler.LambdaLR(
            optimizer, lambda step: 1.0 if steps == 0 else min(1.0, 0.01 + 0.99 * step / steps))
        return {"optimizer": optimizer, "lr_scheduler": {"scheduler": schedule, "interval": "step"}}

    # evaluation --------------------------------------------------------------------------------

    def _evaluate(self, split: str, batch: tuple[torch.Tensor, torch.Tensor]) -> None:
        x, y = batch
        logits = self.evaluated(x)
        probs = torch.sigmoid(logits)
        self.auc[split].update(probs, y.long())
        self.ap[split].update(probs, y.long())
        moments = torch.stack([torch.tensor(float(len(y)), device=probs.device), probs.sum(), (probs ** 2).sum(),
                               F.binary_cross_entropy_with_logits(logits, y, reduction="sum")])
        self._moments[split] = self._moments.get(split, torch.zeros_like(moments)) + moments

    def _log_evaluation(self, split: str) -> None:
        n, s, s2, loss = self._moments.pop(split).tolist()
        mean = s / n
        self.log(f"{split}/auc", self.auc[split].compute())
        self.log(f"{split}/ap", self.ap[split].compute())
        self.log(f"{split}/pred_mean", mean)
        self.log(f"{split}/pred_std", math.sqrt(max(s2 / n - mean * mean, 0.0)))
        self.log(f"{split}/loss", loss / n)
        self.auc[split].reset()
        self.ap[split].reset()

    def validation_step(self, batch: tuple[torch.Tensor, torch.Tensor], batch_idx: int) -> None:
        self._evaluate("val", batch)

    def on_validation_epoch_end(self) -> None:
        if "val" in self._moments:
            self._log_evaluation("val")

    def test_step(self, batch: tuple[torch.Tensor, torch.Tensor], batch_idx: int) -> None:
        self._evaluate("test", batch)

    def on_test_epoch_end(self) -> None:
        if "test" in self._moments:
            self._log_evaluation("test")

    def param_count(self) -> int:
        return sum(p.numel() for p in self.net.parameters())
