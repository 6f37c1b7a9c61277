"""Complex-aware normalizations: they normalize each token's magnitudes and keep its phases.

This is what document 003 found erases "polarization": after them every token has about the same
magnitude, whatever it had before. Each wraps a torch `LayerNorm`/`RMSNorm` applied to |z|, so
fixlab's `NormalizationEffectCallback` finds that inner layer on its own; the outer classes can
also be named, e.g. `norm_modules=["ComplexLayerNorm"]` (complex tokens are supported).
"""

from __future__ import annotations

from typing import Literal

import torch
from torch import nn

__all__ = ["NORM_TYPES", "NormType", "ComplexLayerNorm", "ComplexRMSNorm", "make_norm"]

NormType = Literal["none", "layer", "rms"]
NORM_TYPES: tuple[str, ...] = ("none", "layer", "rms")


class ComplexLayerNorm(nn.Module):
    """z -> LayerNorm(|z|) * sgn(z) over the d features of each token.

    A normalized magnitude can be negative, which turns the phase by pi.
    """

    def __init__(self, d: int, eps: float = 1e-5) -> None:
        super().__init__()
        self.norm = nn.LayerNorm(d, eps=eps)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return self.norm(z.abs()) * torch.sgn(z)


class ComplexRMSNorm(nn.Module):
    """z -> RMSNorm(|z|) * sgn(z) over the d features of each token."""

    def __init__(self, d: int, eps: float = 1e-6) -> None:
        super().__init__()
        self.norm = nn.RMSNorm(d, eps=eps)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return self.norm(z.abs()) * torch.sgn(z)


def make_norm(norm_type: str, d: int) -> nn.Module:
    """The normalization for `norm_type` ("none" is the identity).

    Raises:
        ValueError: an unknown `norm_type`, listing the allowed ones.
    """
    table = {"none": nn.Identity, "layer": ComplexLayerNorm, "rms": ComplexRMSNorm}
    if norm_type not in table:
        raise ValueError(f"norm_type={norm_type!r} is not allowed; allowed: {list(NORM_TYPES)}")
    return nn.Identity() if norm_type == "none" else table[norm_type](d)
