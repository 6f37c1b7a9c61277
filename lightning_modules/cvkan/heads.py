"""Into and out of the complex domain: embedding of real inputs, classification and forecasting
heads that read real outputs from pooled magnitudes and phases."""

from __future__ import annotations

from typing import Literal

import torch
from torch import nn

from lightning_modules.cvkan.aggregation import TokenAggregation
from lightning_modules.cvkan.polar_ops import EPS, pooled_features
from lightning_modules.cvkan.realnet import RealNet

__all__ = ["ComplexEmbedding", "ClassifyHead", "ForecastHead", "FORECAST_OUTPUTS", "ForecastOutput"]

ForecastOutput = Literal["pooled", "per_token"]
FORECAST_OUTPUTS: tuple[str, ...] = ("pooled", "per_token")


class ComplexEmbedding(nn.Module):
    """(B, T, F) real -> (B, T, d) complex64: a linear map to 2d reals read as (re, im).

    Args:
        n_features: F.
        d: complex features per token.
        autocast_dtype: selective-AMP dtype of the linear map (`RealNet`).
    """

    def __init__(self, n_features: int, d: int, autocast_dtype: torch.dtype | None = None) -> None:
        super().__init__()
        self.proj = RealNet(n_features, None, 2 * d, autocast_dtype)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        re, im = self.proj(x).float().chunk(2, dim=-1)
        return torch.complex(re, im)


class ClassifyHead(nn.Module):
    """(B, T, d) complex -> (B, n_classes) real logits: pool the tokens (`TokenAggregation`), then
    an MLP over the pooled log-magnitudes and phases (cos, sin).

    Args:
        d: features per token.
        n_classes: logits.
        pooling: "mean", "attention" or "magnitude".
        hidden: MLP width.
        autocast_dtype: selective-AMP dtype (`RealNet`).
    """

    def __init__(self, d: int, n_classes: int, pooling: str = "mean", hidden: int = 64,
                 autocast_dtype: torch.dtype | None = None, eps: float = EPS) -> None:
        super().__init__()
        self.eps = eps
        self.pool = TokenAggregation(d, pooling, autocast_dtype, eps)
        self.mlp = RealNet(3 * d, hidden, n_classes, autocast_dtype)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return self.mlp(pooled_features(self.pool(z), self.eps))


class ForecastHead(nn.Module):
    """(B, T, d) complex -> (B, horizon, n_targets) real forecasts.

    `pooled`: pool the tokens, one MLP predicts the whole horizon. `per_token`: each of the last
    `horizon` tokens predicts its own step from its log-magnitude and phase.

    Args:
        d: features per token.
        horizon: forecast steps.
        n_targets: values per step.
        output: "pooled" or "per_token".
        pooling: the pooling of `pooled`.
        hidden: MLP width.
        autocast_dtype: selective-AMP dtype (`RealNet`).
    """

    def __init__(self, d: int, horizon: int, n_targets: int = 1, output: str = "pooled",
                 pooling: str = "mean", hidden: int = 64,
                 autocast_dtype: torch.dtype | None = None, eps: float = EPS) -> None:
        super().__init__()
        if output not in FORECAST_OUTPUTS:
            raise ValueError(f"forecast_output={output!r} is not allowed; allowed: {list(FORECAST_OUTPUTS)}")
        self.horizon, self.n_targets, self.output, self.eps = horizon, n_targets, output, eps
        self.pool = TokenAggregation(d, pooling, autocast_dtype, eps) if output == "pooled" else None
        d_out = horizon * n_targets if output == "pooled" else n_targets
        self.mlp = RealNet(3 * d, hidden, d_out, autocast_dtype)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        if self.pool is not None:
            y = self.mlp(pooled_features(self.pool(z), self.eps))
            return y.reshape(z.shape[0], self.horizon, self.n_targets)
        if z.shape[1] < self.horizon:
            raise ValueError(f"per_token forecasting needs at least horizon={self.horizon} tokens; "
                             f"got {z.shape[1]}")
        return self.mlp(pooled_features(z[:, -self.horizon:], self.eps))
