"""AResGW-style 1-D residual network (BatchNorm-free) over (B, T, C) channels-last series."""

from __future__ import annotations

import math

import jax
from flax import nnx


def _norm(kind: str, width: int, rngs: nnx.Rngs) -> nnx.Module | None:
    return nnx.GroupNorm(width, num_groups=math.gcd(width, 8), rngs=rngs) if kind == "group" else None


class ResidualBlock(nnx.Module):
    """conv -> norm -> ReLU -> conv -> norm, plus a (1x1 strided) shortcut, then ReLU.

    Args:
        in_width / out_width: channels in and out.
        stride: downsampling of the first convolution and of the shortcut.
        kernel: convolution kernel size.
        norm: "group" (GroupNorm, no batch statistics) or "none".
    """

    def __init__(self, in_width: int, out_width: int, *, stride: int, kernel: int, norm: str,
                 rngs: nnx.Rngs) -> None:
        self.conv1 = nnx.Conv(in_width, out_width, kernel_size=kernel, strides=stride, rngs=rngs)
        self.norm1 = _norm(norm, out_width, rngs)
        self.conv2 = nnx.Conv(out_width, out_width, kernel_size=kernel, rngs=rngs)
        self.norm2 = _norm(norm, out_width, rngs)
        self.shortcut = nnx.Conv(in_width, out_width, kernel_size=1, strides=stride, rngs=rngs) \
            if stride != 1 or in_width != out_width else None

    def __call__(self, x: jax.Array) -> jax.Array:
        h = self.conv1(x)
        h = nnx.relu(self.norm1(h) if self.norm1 is not None else h)
        h = self.conv2(h)
        h = self.norm2(h) if self.norm2 is not None else h
        return nnx.relu(h + (self.shortcut(x) if self.shortcut is not None else x))


class ResNet1D(nnx.Module):
    """Stem convolution, then one stage per width (first block of a stage halves T), -> (B, S, F).

    Args:
        in_channels: C.
        stem_width / stem_stride: the stem convolution (kernel 2 * stride).
        widths: channels of each stage.
        blocks: residual blocks per stage.
        kernel: kernel size in the blocks.
        norm: "group" or "none".
    """

    def __init__(self, in_channels: int, *, stem_width: int, stem_stride: int, widths: tuple[int, ...],
                 blocks: int, kernel: int, norm: str, rngs: nnx.Rngs) -> None:
        self.stem = nnx.Conv(in_channels, stem_width, kernel_size=2 * stem_stride, strides=stem_stride,
                             rngs=rngs)
        layers, width = [], stem_width
        for out_width in widths:
            for i in range(blocks):
                layers.append(ResidualBlock(width, out_width, stride=2 if i == 0 else 1, kernel=kernel,
                                            norm=norm, rngs=rngs))
                width = out_width
        self.blocks = nnx.List(layers)
        self.out_width = width

    def __call__(self, x: jax.Array) -> jax.Array:
        x = nnx.relu(self.stem(x))
        for block in self.blocks:
            x = block(x)
        return x
