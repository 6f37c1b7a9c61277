"""The real-valued sub-network every complex piece delegates its learned transform to."""

from __future__ import annotations

import torch
from torch import nn

__all__ = ["RealNet"]


class RealNet(nn.Module):
    """A small real MLP (Linear, GELU, Linear), or one Linear when `d_hidden` is None.

    With `autocast_dtype` set, it runs under its own autocast region of that dtype and returns
    float32: this is selective AMP, where only real arithmetic is lowered. Without it, it follows
    the surrounding autocast (under full fp16 autocast its output is float16).

    Args:
        d_in: input features.
        d_hidden: hidden width, or None for a single linear map.
        d_out: output features.
        autocast_dtype: e.g. torch.bfloat16 for selective AMP; None to follow the caller.
    """

    def __init__(self, d_in: int, d_hidden: int | None, d_out: int,
                 autocast_dtype: torch.dtype | None = None) -> None:
        super().__init__()
        if d_hidden is None:
            self.net: nn.Module = nn.Linear(d_in, d_out)
        else:
            self.net = nn.Sequential(nn.Linear(d_in, d_hidden), nn.GELU(), nn.Linear(d_hidden, d_out))
        self.autocast_dtype = autocast_dtype

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.autocast_dtype is None:
            return self.net(x)
        with torch.autocast(x.device.type, dtype=self.autocast_dtype):
            y = self.net(x)
        return y.float()
