"""Stacks of polarizing blocks: flat (N blocks over all tokens) and hierarchical (local groups
first, then the groups' summaries, until one group remains)."""

from __future__ import annotations

import math
from typing import Callable

import torch
from torch import nn

from lightning_modules.cvkan.polar import PolarizingBlock

__all__ = ["FlatStack", "HierarchicalStack", "level_sizes"]

BlockFactory = Callable[[], PolarizingBlock]


class FlatStack(nn.Module):
    """`n_layers` polarizing blocks applied in turn to all tokens; (B, T, d) -> (B, T, d).

    Args:
        n_layers: number of blocks (>= 1).
        make_block: builds one block.
    """

    def __init__(self, n_layers: int, make_block: BlockFactory) -> None:
        super().__init__()
        self.blocks = nn.ModuleList(make_block() for _ in range(n_layers))

    def forward(self, z: torch.Tensor, trace: list[torch.Tensor] | None = None) -> torch.Tensor:
        """`trace`, when given, receives each block's output tokens."""
        for block in self.blocks:
            z = block(z)
            if trace is not None:
                trace.append(z)
        return z


def level_sizes(seq_len: int, group_size: int) -> list[int]:
    """Tokens entering each level: groups of `group_size` become one token each, until a level
    holds at most one group. 16 tokens, groups of 2 -> [16, 8, 4, 2]; groups of 4 -> [16, 4].

    Raises:
        ValueError: seq_len < 1 or group_size < 2.
    """
    if seq_len < 1:
        raise ValueError(f"seq_len={seq_len!r} is not allowed; allowed: an int >= 1")
    if group_size < 2:
        raise ValueError(f"group_size={group_size!r} is not allowed; allowed: an int >= 2")
    sizes = [seq_len]
    while sizes[-1] > group_size:
        sizes.append(math.ceil(sizes[-1] / group_size))
    return sizes


class HierarchicalStack(nn.Module):
    """Recursive multi-scale polarization over (B, T, d) tokens.

    Each level splits its tokens into groups of `group_size` (the last group zero-padded), runs a
    polarizing block inside every group, and hands each group's aggregate (the block's own
    aggregation) up as one token. The top level holds a single group; its aggregate is the
    output, (B, 1, d). With `top_down`, the upper level's tokens are added back to their
    children, level by level, and the output is the bottom level's tokens, (B, T, d).

    Args:
        seq_len: tokens per sequence (sets the number of levels, `level_sizes`).
        group_size: tokens per local group (>= 2).
        make_block: builds one block.
        share_weights: one block for every level; else one block per level.
        top_down: send the context back down and return per-token outputs.
        level_capacity: per-level blocks to build (None: as many as `seq_len` needs). The note's
            models were built with a capacity of 10, of which 4 levels were used; the unused
            blocks count as parameters and never receive a gradient.

    Raises:
        ValueError: a bad `seq_len`/`group_size`, or a capacity below the levels needed.
    """

    def __init__(self, seq_len: int, group_size: int, make_block: BlockFactory,
                 share_weights: bool = True, top_down: bool = False,
                 level_capacity: int | None = None) -> None:
        super().__init__()
        self.seq_len, self.group_size = seq_len, group_size
        self.sizes = level_sizes(seq_len, group_size)
        self.share_weights, self.top_down = share_weights, top_down
        n_blocks = 1 if share_weights else (level_capacity or len(self.sizes))
        if not share_weights and n_blocks < len(self.sizes):
            raise ValueError(f"level_capacity={level_capacity!r} is not allowed; seq_len={seq_len} "
                             f"with group_size={group_size} needs {len(self.sizes)} levels")
        self.blocks = nn.ModuleList(make_block() for _ in range(n_blocks))

    @property
    def n_levels(self) -> int:
        return len(self.sizes)

    def _block(self, level: int) -> PolarizingBlock:
        return self.blocks[0 if self.share_weights else level]

    def forward(self, z: torch.Tensor, trace: list[torch.Tensor] | None = None) -> torch.Tensor:
        """`trace`, when given, receives each level's block output, (B, T_level, d)."""
        if z.shape[1] != self.seq_len:
            raise ValueError(f"got {z.shape[1]} tokens; this stack was built for seq_len={self.seq_len}")
        levels: list[tuple[torch.Tensor, int]] = []  # (B, n_groups * group_len, d), real length
        x = z
        for level in range(self.n_levels):
            b, t, d = x.shape
            n_groups = math.ceil(t / self.group_size)
            group_len = t if n_groups == 1 else self.group_size
            pad = n_groups * group_len - t
            if pad:
                x = torch.cat([x, x.new_zeros(b, pad, d)], dim=1)
            block = self._block(level)
            y = block(x.reshape(b * n_groups, group_len, d))
            x = block.aggregate(y).reshape(b, n_groups, d)
            y = y.reshape(b, n_groups * group_len, d)
            levels.append((y, t))
            if trace is not None:
                trace.append(y[:, :t])
        if not self.top_down:
            return x
        for y, t in reversed(levels):
            b, n, d = y.shape
            n_groups = x.shape[1]
            x = (y.reshape(b, n_groups, n // n_groups, d) + x.unsqueeze(2)).reshape(b, n, d)[:, :t]
        return x
