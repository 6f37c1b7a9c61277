"""The registered form of the autoencoder: one padded batch of word vectors in, its reconstruction
out, so the registry (one tensor in, one tensor out) and a pyfunc client can use it."""

from __future__ import annotations

import torch
from torch import nn

from lightning_modules.poetry_ae.autoencoder import PoetryAutoencoder
from lightning_modules.poetry_ae.config import AEConfig

__all__ = ["RegisteredAutoencoder"]


class RegisteredAutoencoder(nn.Module):
    """`PoetryAutoencoder` behind a one-tensor forward: x (B, T, D) zero-padded word vectors ->
    reconstruction (B, T, D), without teacher forcing. A token is real where its vector is not all
    zero (the data keep only words that have a vector); each sequence's length is its real tokens.

    Args:
        config: the autoencoder's config (`self.config`, as the registry rebuilds models).
    """

    def __init__(self, config: AEConfig) -> None:
        super().__init__()
        self.config = config
        self.model = PoetryAutoencoder(config)

    @classmethod
    def of(cls, model: PoetryAutoencoder) -> "RegisteredAutoencoder":
        """The registered form of a trained autoencoder (its weights copied)."""
        view = cls(model.config)
        view.model.load_state_dict(model.state_dict())
        return view.to(next(model.parameters()).device)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        mask = x.abs().sum(dim=-1) > 0
        lengths = mask.sum(dim=1).clamp_min(1).cpu()
        return self.model(x, mask, lengths)[0]
