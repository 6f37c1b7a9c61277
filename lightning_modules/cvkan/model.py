"""Document 003's complex-valued polarizing network: config, the network, parameter counts."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

import torch
from torch import nn

from lightning_modules.cvkan.aggregation import check_aggregation
from lightning_modules.cvkan.heads import FORECAST_OUTPUTS, ClassifyHead, ComplexEmbedding, ForecastHead
from lightning_modules.cvkan.norms import NORM_TYPES
from lightning_modules.cvkan.polar import PolarizingBlock
from lightning_modules.cvkan.precision import check_precision_mode, real_autocast_dtype
from lightning_modules.cvkan.stacks import FlatStack, HierarchicalStack, level_sizes

__all__ = ["CVKANConfig", "CVKANNet", "n_params", "STACKS", "TASKS"]

STACKS: tuple[str, ...] = ("flat", "hierarchical")
TASKS: tuple[str, ...] = ("classify", "forecast")


@dataclass(frozen=True)
class CVKANConfig:
    """Architecture, task, learning rate and precision of one document-003 run.

    Args:
        n_features: real input features per time step / token.
        seq_len: tokens per sequence (the hierarchical stack is built for it).
        d: complex features per token.
        hidden: width of every real sub-network.
        n_layers: blocks of the flat stack.
        aggregation: context of each block: "mean", "attention" or "magnitude".
        pooling: pooling of the head: "mean", "attention" or "magnitude".
        norm_type: "none" (the note's best), "layer" or "rms" after each block.
        stack: "flat" or "hierarchical".
        group_size: tokens per local group of the hierarchical stack.
        share_weights: one block for all levels (else one per level).
        top_down: the hierarchical stack sends context back down (per-token outputs).
        level_capacity: per-level blocks to build (None: the levels seq_len needs; the note: 10).
        task: "classify" or "forecast".
        n_classes: logits of classification.
        horizon: forecast steps.
        n_targets: forecast values per step.
        forecast_output: "pooled" or "per_token".
        lr: Adam learning rate.
        precision_mode: "fp32", "fp16", "bf16" or "bf16_real_only" (see `precision`).
        eps: added to magnitudes before their log.
    """

    n_features: int = 1
    seq_len: int = 16
    d: int = 16
    hidden: int = 32
    n_layers: int = 2
    aggregation: str = "mean"
    pooling: str = "mean"
    norm_type: str = "none"
    stack: str = "flat"
    group_size: int = 2
    share_weights: bool = True
    top_down: bool = False
    level_capacity: int | None = None
    task: str = "classify"
    n_classes: int = 2
    horizon: int = 1
    n_targets: int = 1
    forecast_output: str = "pooled"
    lr: float = 1e-3
    precision_mode: str = "fp32"
    eps: float = 1e-6

    def __post_init__(self) -> None:
        for name in ("n_features", "seq_len", "d", "hidden", "n_layers", "n_classes", "horizon",
                     "n_targets"):
            value = getattr(self, name)
            if not isinstance(value, int) or isinstance(value, bool) or value < 1:
                raise ValueError(f"{name}={value!r} is not allowed; allowed: an int >= 1")
        check_aggregation(self.aggregation, "aggregation")
        check_aggregation(self.pooling, "pooling")
        check_precision_mode(self.precision_mode)
        for name, allowed in (("norm_type", NORM_TYPES), ("stack", STACKS), ("task", TASKS),
                              ("forecast_output", FORECAST_OUTPUTS)):
            if getattr(self, name) not in allowed:
                raise ValueError(f"{name}={getattr(self, name)!r} is not allowed; allowed: {list(allowed)}")
        if not (self.lr > 0):
            raise ValueError(f"lr={self.lr!r} is not allowed; allowed: a float > 0")
        if self.stack == "hierarchical":
            level_sizes(self.seq_len, self.group_size)
        per_token = self.task == "forecast" and self.forecast_output == "per_token"
        if per_token and self.stack == "hierarchical" and not self.top_down:
            raise ValueError("forecast_output='per_token' with stack='hierarchical' needs top_down=True "
                             "(without it the stack returns one token per sequence)")
        if per_token and self.horizon > self.seq_len:
            raise ValueError(f"horizon={self.horizon} is not allowed with forecast_output='per_token'; "
                             f"allowed: at most seq_len={self.seq_len}")

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def n_params(module: nn.Module) -> int:
    """Number of trainable parameters (complex ones count twice: they hold two reals)."""
    return sum(p.numel() * (2 if p.is_complex() else 1) for p in module.parameters() if p.requires_grad)


class CVKANNet(nn.Module):
    """Real inputs (B, T, F) -> complex64 tokens (B, T, d) -> polarizing stack -> real outputs:
    logits (B, n_classes) or forecasts (B, horizon, n_targets).

    Args:
        config: the architecture (`CVKANConfig`).

    Example:
        >>> net = CVKANNet(CVKANConfig(stack="hierarchical", group_size=2))
        >>> net(torch.randn(8, 16, 1)).shape
        torch.Size([8, 2])
    """

    def __init__(self, config: CVKANConfig) -> None:
        super().__init__()
        self.config = c = config
        dtype = real_autocast_dtype(c.precision_mode)
        self.embed = ComplexEmbedding(c.n_features, c.d, dtype)

        def make_block() -> PolarizingBlock:
            return PolarizingBlock(c.d, c.hidden, c.aggregation, c.norm_type, dtype, c.eps)

        if c.stack == "flat":
            self.stack: nn.Module = FlatStack(c.n_layers, make_block)
        else:
            self.stack = HierarchicalStack(c.seq_len, c.group_size, make_block, c.share_weights,
                                           c.top_down, c.level_capacity)
        if c.task == "classify":
            self.head: nn.Module = ClassifyHead(c.d, c.n_classes, c.pooling, c.hidden, dtype, c.eps)
        else:
            self.head = ForecastHead(c.d, c.horizon, c.n_targets, c.forecast_output, c.pooling,
                                     c.hidden, dtype, c.eps)

    def forward(self, x: torch.Tensor, trace: list[torch.Tensor] | None = None) -> torch.Tensor:
        """`trace`, when given, receives the tokens after each block (level) of the stack."""
        return self.head(self.stack(self.embed(x), trace))

    def param_counts(self) -> dict[str, int]:
        """Trainable parameters by component: embed, stack, head, total."""
        counts = {"embed": n_params(self.embed), "stack": n_params(self.stack), "head": n_params(self.head)}
        counts["total"] = sum(counts.values())
        return counts
