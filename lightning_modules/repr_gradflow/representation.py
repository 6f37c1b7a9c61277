"""The representation-learning stage: multi-scale 1-D convolutions and temporal attention pooling.

This is the stage whose parameters document 001's bug left untrained: it sits between the
fixed reservoir states `R_final` (B, T, N) and the linear readout, and turns a sequence of
states into one feature vector per sample.
"""

from __future__ import annotations

from typing import Sequence

import torch
from torch import nn

__all__ = ["MultiScaleConv", "TemporalAttentionPooling", "RepresentationLearning"]


class MultiScaleConv(nn.Module):
    """Parallel 1-D convolutions with different kernel sizes, concatenated over channels.

    Each branch is Conv1d -> BatchNorm1d -> GELU with 'same' padding, so every branch keeps the
    sequence length. Input and output are (B, C, T).

    Args:
        in_channels: channels of the input sequence.
        channels: output channels per branch.
        kernel_sizes: one branch per (odd) kernel size.
    """

    def __init__(self, in_channels: int, channels: int, kernel_sizes: Sequence[int] = (3, 5, 7)) -> None:
        super().__init__()
        for k in kernel_sizes:
            if k < 1 or k % 2 == 0:
                raise ValueError(f"kernel_sizes={tuple(kernel_sizes)!r} has {k!r}; allowed: odd sizes >= 1")
        self.branches = nn.ModuleList(
            # No conv bias: BatchNorm subtracts the mean, so its gradient would be exactly zero.
            nn.Sequential(nn.Conv1d(in_channels, channels, k, padding=k // 2, bias=False),
                          nn.BatchNorm1d(channels), nn.GELU())
            for k in kernel_sizes
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.cat([branch(x) for branch in self.branches], dim=1)


class TemporalAttentionPooling(nn.Module):
    """Additive attention over time: score_t = v . tanh(W h_t), output sum_t softmax(score)_t h_t.

    Args:
        channels: feature channels per time step.
        hidden: width of the scoring layer.
    """

    def __init__(self, channels: int, hidden: int = 32) -> None:
        super().__init__()
        # No bias on the last layer: softmax ignores a shift, so its gradient would be exactly zero.
        self.score = nn.Sequential(nn.Linear(channels, hidden), nn.Tanh(), nn.Linear(hidden, 1, bias=False))

    def forward(self, h: torch.Tensor) -> torch.Tensor:
        """Pool (B, T, channels) to (B, channels)."""
        weights = torch.softmax(self.score(h), dim=1)     # (B, T, 1)
        return (weights * h).sum(dim=1)


class RepresentationLearning(nn.Module):
    """Reservoir states (B, T, N) -> one feature vector per sample (B, F).

    Args:
        in_channels: reservoir size N.
        channels: output channels per convolution branch.
        kernel_sizes: convolution kernel sizes (document 001: multi-scale).
        attention_hidden: width of the attention scoring layer.
        dropout: dropout on the convolution features (active only in train() mode).
    """

    def __init__(self, in_channels: int, channels: int = 32, kernel_sizes: Sequence[int] = (3, 5, 7),
                 attention_hidden: int = 32, dropout: float = 0.1) -> None:
        super().__init__()
        self.conv = MultiScaleConv(in_channels, channels, kernel_sizes)
        self.dropout = nn.Dropout(dropout)
        self.pool = TemporalAttentionPooling(channels * len(kernel_sizes), attention_hidden)

    def forward(self, r_final: torch.Tensor) -> torch.Tensor:
        h = self.conv(r_final.transpose(1, 2))          # (B, channels * n_kernels, T)
        h = self.dropout(h).transpose(1, 2)             # (B, T, channels * n_kernels)
        return self.pool(h)
