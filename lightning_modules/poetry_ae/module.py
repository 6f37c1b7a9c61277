"""The LightningModule that trains `PoetryAutoencoder` on document 002's curriculum."""

from __future__ import annotations

from typing import Any, Iterable, Mapping

import lightning as L
import numpy as np
import torch

from lightning_modules.poetry_ae.autoencoder import PoetryAutoencoder
from lightning_modules.poetry_ae.config import AEConfig
from lightning_modules.poetry_ae.curriculum import Curriculum, teacher_mask
from lightning_modules.poetry_ae.losses import masked_mse, reconstruction_loss, rmse, sequence_cosine, token_cosine

__all__ = ["PoetryAEModule"]

Batch = tuple[torch.Tensor, torch.Tensor, torch.Tensor]

_RNG_KEY = "poetry_ae_teacher_rng"


class PoetryAEModule(L.LightningModule):
    """Adam training of `PoetryAutoencoder` with the curriculum, teacher forcing and clipping of
    `config`.

    Each training epoch takes its phase from `Curriculum.at(current_epoch)`: batches are cut to
    the phase's max_len and the decoder is teacher-forced where `teacher_mask` says, drawn from a
    generator seeded with `seed` whose state travels in checkpoints (a resumed run draws the same
    masks). Validation and test use whole sequences and no teacher forcing.

    Logs `train/loss` (step and epoch), `train/tf_ratio` and `train/max_len` (epoch; max_len only
    when the phase has one), and `{val,test}/loss`, `/token_cosine`, `/seq_cosine`, `/mse`,
    `/rmse`. Gradients are clipped to norm `config.clip` (leave the Trainer's gradient_clip_val
    unset).

    Args:
        config: an `AEConfig` or its dict.
        seed: seed of the teacher-forcing generator.

    Example:
        >>> module = PoetryAEModule(AEConfig(input_dim=300), seed=0)
        >>> L.Trainer(max_epochs=30).fit(module, train_loader, val_loader)
    """

    def __init__(self, config: AEConfig | Mapping[str, Any], seed: int = 0) -> None:
        super().__init__()
        self.config = config if isinstance(config, AEConfig) else AEConfig(**config)
        # Plain values only, so checkpoints load with weights_only=True.
        self.save_hyperparameters({"config": self.config.to_dict(), "seed": int(seed)}, logger=False)
        self.model = PoetryAutoencoder(self.config)
        self.curriculum = Curriculum.from_config(self.config)
        self.generator = torch.Generator().manual_seed(int(seed))

    def forward(self, x: torch.Tensor, mask: torch.Tensor, lengths: torch.Tensor,
                teacher_mask: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        return self.model(x, mask, lengths, teacher_mask)

    def training_step(self, batch: Batch, batch_idx: int) -> torch.Tensor:
        x, mask, lengths = batch
        phase = self.curriculum.at(self.current_epoch)
        if phase.max_len is not None:
            x, mask, lengths = x[:, :phase.max_len], mask[:, :phase.max_len], lengths.clamp(max=phase.max_len)
        forcing = teacher_mask(x.shape[0], x.shape[1], phase.ratio, self.generator,
                               per_step=self.config.teacher_forcing == "per_step").to(x.device)
        recon, _ = self.model(x, mask, lengths, forcing)
        loss = reconstruction_loss(recon, x, mask, self.config.loss, self.config.cosine_weight)
        n = x.shape[0]
        self.log("train/loss", loss, on_step=True, on_epoch=True, prog_bar=True, batch_size=n)
        self.log("train/tf_ratio", phase.ratio, on_step=False, on_epoch=True, batch_size=n)
        if phase.max_len is not None:
            self.log("train/max_len", float(phase.max_len), on_step=False, on_epoch=True, batch_size=n)
        return loss

    def _evaluate(self, batch: Batch, stage: str) -> None:
        x, mask, lengths = batch
        recon, _ = self.model(x, mask, lengths)
        loss = reconstruction_loss(recon, x, mask, self.config.loss, self.config.cosine_weight)
        metrics = {"loss": loss, "token_cosine": token_cosine(recon, x, mask),
                   "seq_cosine": sequence_cosine(recon, x, mask), "mse": masked_mse(recon, x, mask),
                   "rmse": rmse(recon, x, mask)}
        self.log_dict({f"{stage}/{k}": v for k, v in metrics.items()}, on_step=False, on_epoch=True,
                      prog_bar=stage == "val", batch_size=x.shape[0])

    def validation_step(self, batch: Batch, batch_idx: int) -> None:
        self._evaluate(batch, "val")

    def test_step(self, batch: Batch, batch_idx: int) -> None:
        self._evaluate(batch, "test")

    def configure_optimizers(self) -> torch.optim.Optimizer:
        return torch.optim.Adam(self.parameters(), lr=self.config.lr)

    def configure_gradient_clipping(self, optimizer: torch.optim.Optimizer, gradient_clip_val: float | None = None,
                                    gradient_clip_algorithm: str | None = None) -> None:
        """Clips the gradient norm to `config.clip` (the document: 1.0)."""
        if self.config.clip is not None:
            self.clip_gradients(optimizer, gradient_clip_val=self.config.clip, gradient_clip_algorithm="norm")

    def on_save_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        """Stores the teacher-forcing generator state (a uint8 tensor: weights_only-safe)."""
        checkpoint[_RNG_KEY] = self.generator.get_state()

    def on_load_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        """Restores the teacher-forcing generator, so a resumed run draws the same masks."""
        if _RNG_KEY in checkpoint:
            self.generator.set_state(checkpoint[_RNG_KEY])

    @torch.no_grad()
    def latents(self, dataloader: Iterable[Batch]) -> np.ndarray:
        """z of every sequence the loader yields, in order: (N, bottleneck)."""
        was_training = self.training
        self.eval()
        try:
            zs = [self.model.encode(*(t.to(self.device) for t in batch)).cpu() for batch in dataloader]
        finally:
            self.train(was_training)
        return torch.cat(zs).numpy() if zs else np.zeros((0, self.config.bottleneck), dtype=np.float32)

    @torch.no_grad()
    def reconstruct(self, x: torch.Tensor, mask: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        """Autoregressive reconstruction (no teacher forcing) of whole sequences: (B, T, D)."""
        was_training = self.training
        self.eval()
        try:
            return self.model(x.to(self.device), mask.to(self.device), lengths.to(self.device))[0]
        finally:
            self.train(was_training)

    def param_counts(self) -> dict[str, int]:
        """Trainable parameters by component (encoder, bottleneck, decoder, attention, total)."""
        return self.model.param_counts()
