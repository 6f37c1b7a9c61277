"""The LightningModule that trains `CVKANNet` and logs document 003's polarization per block."""

from __future__ import annotations

import math
from typing import Any, Mapping

import lightning as L
import torch

from lightning_modules.cvkan.model import CVKANConfig, CVKANNet
from lightning_modules.cvkan.objective import loss_and_metrics
from lightning_modules.cvkan.polar import MagnitudeExp
from lightning_modules.cvkan.polarization import block_magnitude_cvs
from lightning_modules.cvkan.precision import trainer_precision_name

__all__ = ["CVKANModule"]


class CVKANModule(L.LightningModule):
    """Adam training of `CVKANNet` for classification or forecasting.

    Logs `train/loss`, `val/loss` and `val/acc` (classify) or `val/mse` (forecast) (and `test/...`
    alike), and per epoch `polar/block<i>/magnitude_cv`: the spread of token magnitudes after each
    block (level), averaged over the epoch's training batches, and `polar/max_log_magnitude`: the
    largest log-magnitude any block produced in the epoch's training steps (float16 holds
    exp(x) only up to x = log(65504) ~ 11.09).

    Precision comes from the Trainer, built with `trainer_precision(config.precision_mode)`;
    `fit` refuses a Trainer whose precision does not match the mode (Lightning would otherwise
    run "fp16" as bfloat16 on a CPU without saying so in the run). `bf16_real_only` needs no
    Trainer precision: the network autocasts its real sub-networks itself.

    Args:
        config: a `CVKANConfig` or its dict.

    Example:
        >>> cfg = CVKANConfig(precision_mode="fp16")
        >>> trainer = L.Trainer(accelerator="cpu", max_epochs=1, **trainer_precision("fp16"))
        >>> trainer.fit(CVKANModule(cfg), datamodule)
    """

    def __init__(self, config: CVKANConfig | Mapping[str, Any]) -> None:
        super().__init__()
        self.config = config if isinstance(config, CVKANConfig) else CVKANConfig(**config)
        # Plain values only, so checkpoints load with weights_only=True; the entry script logs
        # its own parameters.
        self.save_hyperparameters({"config": self.config.to_dict()}, logger=False)
        self.net = CVKANNet(self.config)
        self._max_logmag: torch.Tensor | None = None  # of the current training step, on the device
        for module in self.net.modules():
            if isinstance(module, MagnitudeExp):
                module.register_forward_hook(self._track_logmag)

    def _track_logmag(self, module: torch.nn.Module, inputs: tuple[torch.Tensor], output: torch.Tensor) -> None:
        if self.training:
            # NaN (a NaN that reached this block from an earlier overflow) is skipped, not propagated.
            top = inputs[0].detach().float().nan_to_num(nan=-math.inf).max()
            self._max_logmag = top if self._max_logmag is None else torch.fmax(self._max_logmag, top)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)

    def on_fit_start(self) -> None:
        """Checks that the Trainer's precision is the one `precision_mode` asks for."""
        plugin = self.trainer.precision_plugin
        wanted, got = trainer_precision_name(self.config.precision_mode), getattr(plugin, "precision", None)
        scaler_missing = self.config.precision_mode == "fp16" and getattr(plugin, "scaler", None) is None
        if got != wanted or scaler_missing:
            raise ValueError(
                f"precision_mode={self.config.precision_mode!r} needs a Trainer with precision {wanted!r}"
                f"{' and a GradScaler' if scaler_missing else ''}; the Trainer has {got!r}. Build it "
                f"with lightning_modules.cvkan.trainer_precision({self.config.precision_mode!r}).")

    def training_step(self, batch: tuple[torch.Tensor, torch.Tensor], batch_idx: int) -> torch.Tensor:
        trace: list[torch.Tensor] = []
        self._max_logmag = None
        loss, _ = loss_and_metrics(self.net, batch, self.config.task, trace)
        n = len(batch[1])
        self.log("train/loss", loss, on_step=True, on_epoch=True, prog_bar=True, batch_size=n)
        self.log_dict(block_magnitude_cvs(trace), on_step=False, on_epoch=True, batch_size=n)
        if self._max_logmag is not None:
            self.log("polar/max_log_magnitude", self._max_logmag, on_step=False, on_epoch=True, reduce_fx="max",
                     batch_size=n)
        return loss

    def _evaluate(self, batch: tuple[torch.Tensor, torch.Tensor], stage: str) -> None:
        loss, metrics = loss_and_metrics(self.net, batch, self.config.task)
        n = len(batch[1])
        self.log(f"{stage}/loss", loss, on_step=False, on_epoch=True, batch_size=n)
        self.log_dict({f"{stage}/{k}": v for k, v in metrics.items()}, on_step=False, on_epoch=True,
                      prog_bar=stage == "val", batch_size=n)

    def validation_step(self, batch: tuple[torch.Tensor, torch.Tensor], batch_idx: int) -> None:
        self._evaluate(batch, "val")

    def test_step(self, batch: tuple[torch.Tensor, torch.Tensor], batch_idx: int) -> None:
        self._evaluate(batch, "test")

    def configure_optimizers(self) -> torch.optim.Optimizer:
        return torch.optim.Adam(self.parameters(), lr=self.config.lr)

    def param_counts(self) -> dict[str, int]:
        """Trainable parameters by component (embed, stack, head, total)."""
        return self.net.param_counts()
