"""The three benchmark models (1 to 10 M parameters) and their fixed, seeded data.

Each model carries the normalization layer the plugin probes: LayerNorm (MLP, LSTM) or
BatchNorm (CNN), so the default `watch()` runs every diagnostic it has.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Literal

import torch
from torch import nn

Scale = Literal["full", "quick", "tiny"]
N_CLASSES = 10


class MLP(nn.Module):
    """Linear -> LayerNorm -> GELU -> Linear -> GELU -> Linear."""

    def __init__(self, d_in: int = 1024, hidden: int = 2048) -> None:
        super().__init__()
        self.net = nn.Sequential(nn.Linear(d_in, hidden), nn.LayerNorm(hidden), nn.GELU(),
                                 nn.Linear(hidden, d_in), nn.GELU(), nn.Linear(d_in, N_CLASSES))

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # x: (B, d_in)
        return self.net(x)


class CNN1d(nn.Module):
    """Five Conv1d -> BatchNorm1d -> ReLU stages (strided), global average pool, linear head."""

    def __init__(self, channels: tuple[int, ...] = (2, 128, 256, 256, 512, 512)) -> None:
        super().__init__()
        layers: list[nn.Module] = []
        for i, (c_in, c_out) in enumerate(zip(channels[:-1], channels[1:])):
            k = 7 if i == 0 else 5 if i < 3 else 3
            layers += [nn.Conv1d(c_in, c_out, k, stride=1 if i == 0 else 2, padding=k // 2,
                                 bias=False),
                       nn.BatchNorm1d(c_out), nn.ReLU()]
        self.features = nn.Sequential(*layers)
        self.head = nn.Linear(channels[-1], N_CLASSES)

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # x: (B, C, L)
        return self.head(self.features(x).mean(-1))


class LSTMClassifier(nn.Module):
    """Two-layer LSTM, LayerNorm on its output sequence, linear head on the last step."""

    def __init__(self, d_in: int = 32, hidden: int = 512, layers: int = 2) -> None:
        super().__init__()
        self.lstm = nn.LSTM(d_in, hidden, num_layers=layers, batch_first=True)
        self.norm = nn.LayerNorm(hidden)
        self.head = nn.Linear(hidden, N_CLASSES)

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # x: (B, T, d_in)
        out, _ = self.lstm(x)
        return self.head(self.norm(out)[:, -1])


@dataclass(frozen=True)
class Bench:
    """One benchmark model: how to build it and the shape of one batch (batch first)."""

    name: str
    build: Callable[[], nn.Module]
    input_shape: tuple[int, ...]

    def batches(self, n: int, seed: int) -> list[tuple[torch.Tensor, torch.Tensor]]:
        """`n` fixed (input, label) batches from a seeded generator: every variant sees these."""
        g = torch.Generator().manual_seed(seed)
        return [(torch.randn(self.input_shape, generator=g),
                 torch.randint(0, N_CLASSES, (self.input_shape[0],), generator=g))
                for _ in range(n)]


# "full": 1.7 to 2.4 M parameters, batches sized for a training step of tens of ms on one
# intra-op thread of this (shared, two-core) machine. "quick": the same architectures at about
# a quarter of the width (0.4 to 1.1 M parameters) and a few ms per step, for CI; its ratios
# are indicative only. "tiny": for the smoke test, which checks the code path, not numbers.
_SIZES: dict[Scale, dict[str, tuple[Callable[[], nn.Module], tuple[int, ...]]]] = {
    "full": {"mlp": (lambda: MLP(768, 1536), (64, 768)),
             "cnn1d": (CNN1d, (8, 2, 96)),
             "lstm": (lambda: LSTMClassifier(32, 384, 2), (16, 8, 32))},
    "quick": {"mlp": (lambda: MLP(512, 1024), (16, 512)),
              "cnn1d": (lambda: CNN1d((2, 64, 128, 128, 256, 256)), (4, 2, 128)),
              "lstm": (lambda: LSTMClassifier(32, 256, 2), (4, 8, 32))},
    "tiny": {"mlp": (lambda: MLP(32, 64), (8, 32)),
             "cnn1d": (lambda: CNN1d((2, 8, 8, 8, 16, 16)), (4, 2, 64)),
             "lstm": (lambda: LSTMClassifier(8, 16, 1), (4, 6, 8))},
}


def benches(scale: Scale) -> list[Bench]:
    """The three models at a scale."""
    if scale not in _SIZES:
        raise ValueError(f"scale={scale!r} is not a scale; allowed: {sorted(_SIZES)}")
    return [Bench(name, build, shape) for name, (build, shape) in _SIZES[scale].items()]


def n_params(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())
