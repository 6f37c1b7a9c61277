"""The LightningModule that trains `ReprGradflowNet` and measures what document 001 talks about."""

from __future__ import annotations

from dataclasses import asdict
from typing import Any, Mapping

import lightning as L
import torch
from torch import nn
from torch.nn.utils import parameters_to_vector

from lightning_modules.repr_gradflow.model import ReprGradflowNet, ReprNetConfig

__all__ = ["ReprGradflowModule"]


class ReprGradflowModule(L.LightningModule):
    """Cross-entropy training of `ReprGradflowNet` with Adam over *all* its parameters.

    Both variants hand every parameter to the optimizer, as document 001's code did; in the
    `broken` variant the representation parameters simply never receive a gradient.

    Logs `train/loss`, `train/acc`, `val/loss`, `val/acc`, `test/loss`, `test/acc`, and
    `repr/param_change`: the relative L2 distance of the representation parameters from their
    values at the start of training (0 means the stage never learned, as in the bug).

    Args:
        net: the architecture (a `ReprNetConfig` or its dict).
        lr: Adam learning rate.
        weight_decay: Adam (L2) weight decay.

    Example:
        >>> module = ReprGradflowModule(ReprNetConfig(variant="broken"), lr=3e-3)
    """

    def __init__(self, net: ReprNetConfig | Mapping[str, Any], lr: float = 3e-3,
                 weight_decay: float = 0.0) -> None:
        super().__init__()
        config = net if isinstance(net, ReprNetConfig) else ReprNetConfig(**net)
        # Plain values only, so checkpoints load with torch.load(weights_only=True); not sent to
        # the logger: the entry script logs its own parameters.
        self.save_hyperparameters({"net": asdict(config), "lr": lr, "weight_decay": weight_decay},
                                  logger=False)
        self.net = ReprGradflowNet(config)
        self.lr = lr
        self.weight_decay = weight_decay
        self._repr_start: torch.Tensor | None = None

    def forward(self, x: torch.Tensor, training: bool | None = None) -> torch.Tensor:
        return self.net(x, training=training)

    def _step(self, batch: tuple[torch.Tensor, torch.Tensor], stage: str) -> torch.Tensor:
        x, y = batch
        logits = self.net(x, training=stage == "train")
        loss = nn.functional.cross_entropy(logits, y)
        acc = (logits.argmax(dim=-1) == y).float().mean()
        on_step = stage == "train"
        self.log(f"{stage}/loss", loss, on_step=on_step, on_epoch=True, prog_bar=stage != "test",
                 batch_size=len(y))
        self.log(f"{stage}/acc", acc, on_step=False, on_epoch=True, prog_bar=True, batch_size=len(y))
        return loss

    def training_step(self, batch: tuple[torch.Tensor, torch.Tensor], batch_idx: int) -> torch.Tensor:
        return self._step(batch, "train")

    def validation_step(self, batch: tuple[torch.Tensor, torch.Tensor], batch_idx: int) -> None:
        self._step(batch, "val")

    def test_step(self, batch: tuple[torch.Tensor, torch.Tensor], batch_idx: int) -> None:
        self._step(batch, "test")

    def configure_optimizers(self) -> torch.optim.Optimizer:
        return torch.optim.Adam(self.parameters(), lr=self.lr, weight_decay=self.weight_decay)

    def _repr_vector(self) -> torch.Tensor:
        return parameters_to_vector(self.net.representation_learning.parameters()).detach()

    def on_train_start(self) -> None:
        """Remember the representation's starting weights, to measure how far they move (a run
        continued from a checkpoint keeps the ones it started from)."""
        if self._repr_start is None:
            self._repr_start = self._repr_vector().clone()

    def on_save_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        if self._repr_start is not None:
            checkpoint["repr_start"] = self._repr_start

    def on_load_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        if "repr_start" in checkpoint:
            self._repr_start = checkpoint["repr_start"]

    def on_train_epoch_end(self) -> None:
        """Log how far the representation parameters moved since the start of training."""
        if self._repr_start is not None:
            moved = (self._repr_vector() - self._repr_start).norm()
            change = moved / self._repr_start.norm().clamp_min(1e-12)
            self.log("repr/param_change", change, on_step=False, on_epoch=True)

    def optimizer_coverage(self, optimizer: torch.optim.Optimizer) -> dict[str, int]:
        """Fix 6: parameters per component that `optimizer` actually holds."""
        held = {id(p) for group in optimizer.param_groups for p in group["params"]}
        counts = {"reservoir": 0, "representation": 0, "readout": 0}
        for name, p in self.net.named_parameters():
            if id(p) in held:
                counts[self.net.component_of(name)] += p.numel()
        counts["total"] = sum(counts.values())
        return counts
