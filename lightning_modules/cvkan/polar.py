"""The polarizing block: tokens transformed in polar form against their aggregated context."""

from __future__ import annotations

import torch
from torch import nn

from lightning_modules.cvkan.aggregation import TokenAggregation
from lightning_modules.cvkan.norms import make_norm
from lightning_modules.cvkan.polar_ops import EPS, polar_features, recompose
from lightning_modules.cvkan.realnet import RealNet

__all__ = ["MagnitudeExp", "PolarizingBlock"]


class MagnitudeExp(nn.Module):
    """log-magnitude -> magnitude, exp() in the dtype the log-magnitude arrives in.

    A module of its own so that a non-finite magnitude is located here by name: under float16
    autocast on a CPU the magnitude network returns float16 and exp() stays float16, which
    overflows to inf once a log-magnitude passes log(65504) ~ 11.09 (CUDA's autocast runs exp
    in float32 instead).
    """

    def forward(self, logmag: torch.Tensor) -> torch.Tensor:
        return torch.exp(logmag)


class PolarizingBlock(nn.Module):
    """(..., T, d) complex64 tokens -> the same shape.

    context c = aggregate(z); features = [log|z|, log|c|, cos, sin of angle(z) - angle(c)];
    log-magnitude' = magnitude_net(features); phase' = angle(z) + phase_net(features);
    z' = exp(log-magnitude') * exp(i phase') (the exp in `MagnitudeExp`); output = norm(z + z').

    The residual lets a token aligned with its context grow relative to the others: the spread of
    token magnitudes ("polarization") that a magnitude normalization removes.

    Args:
        d: features per token.
        hidden: hidden width of the two real networks.
        aggregation: how the context is formed (`TokenAggregation`).
        norm_type: "none", "layer" or "rms" (`make_norm`), applied after the residual.
        autocast_dtype: selective-AMP dtype of the real networks (`RealNet`).
        eps: added to magnitudes before their log.
    """

    def __init__(self, d: int, hidden: int, aggregation: str = "mean", norm_type: str = "none",
                 autocast_dtype: torch.dtype | None = None, eps: float = EPS) -> None:
        super().__init__()
        self.eps = eps
        self.aggregate = TokenAggregation(d, aggregation, autocast_dtype, eps)
        self.magnitude_net = RealNet(4 * d, hidden, d, autocast_dtype)
        self.phase_net = RealNet(4 * d, hidden, d, autocast_dtype)
        self.magnitude = MagnitudeExp()
        self.norm = make_norm(norm_type, d)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        feats = polar_features(z, self.aggregate(z), self.eps)  # (..., T, 4d) real
        logmag = self.magnitude_net(feats)
        phase = torch.angle(z) + self.phase_net(feats)
        return self.norm(z + recompose(self.magnitude(logmag), phase))
