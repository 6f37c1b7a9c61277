"""Aggregating complex tokens into one context token: mean, learned attention, or |z|-weighted."""

from __future__ import annotations

from typing import Literal

import torch
from torch import nn

from lightning_modules.cvkan.polar_ops import EPS, log_magnitude
from lightning_modules.cvkan.realnet import RealNet

__all__ = ["AGGREGATIONS", "Aggregation", "TokenAggregation", "check_aggregation"]

Aggregation = Literal["mean", "attention", "magnitude"]
AGGREGATIONS: tuple[str, ...] = ("mean", "attention", "magnitude")


def check_aggregation(mode: str, argument: str = "aggregation") -> str:
    """`mode`, or ValueError naming `argument` and the allowed modes."""
    if mode not in AGGREGATIONS:
        raise ValueError(f"{argument}={mode!r} is not allowed; allowed: {list(AGGREGATIONS)}")
    return mode


class TokenAggregation(nn.Module):
    """(..., T, d) complex tokens -> (..., d) complex context.

    - `mean`: the plain mean over tokens.
    - `attention`: a learned score per token (a linear map of its log-magnitudes), softmax over
      the tokens, weighted sum.
    - `magnitude`: parameter-free; each feature is weighted by |z| / sum over tokens of |z|, so
      tokens that already grew contribute more (the note's "magnitude-weighted mean").

    Args:
        d: features per token.
        mode: one of `AGGREGATIONS`.
        autocast_dtype: selective-AMP dtype of the attention scorer (see `RealNet`).
        eps: added to magnitudes before the log and to the weight denominator.
    """

    def __init__(self, d: int, mode: str = "mean", autocast_dtype: torch.dtype | None = None,
                 eps: float = EPS) -> None:
        super().__init__()
        self.mode = check_aggregation(mode)
        self.eps = eps
        self.score = RealNet(d, None, 1, autocast_dtype) if mode == "attention" else None

    def weights(self, z: torch.Tensor) -> torch.Tensor | None:
        """Real weights over the token axis (..., T, 1 or d) summing to 1; None for the mean."""
        if self.mode == "attention":
            return torch.softmax(self.score(log_magnitude(z, self.eps)).float(), dim=-2)
        if self.mode == "magnitude":
            a = z.abs()
            return a / (a.sum(dim=-2, keepdim=True) + self.eps)
        return None

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        w = self.weights(z)
        return z.mean(dim=-2) if w is None else (w * z).sum(dim=-2)
