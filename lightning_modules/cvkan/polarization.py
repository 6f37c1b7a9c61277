"""Polarization: how unequal the token magnitudes are (document 003's "important tokens grow")."""

from __future__ import annotations

from typing import Sequence

import torch

__all__ = ["token_magnitudes", "magnitude_cv", "block_magnitude_cvs"]


def token_magnitudes(z: torch.Tensor) -> torch.Tensor:
    """(..., T, d) complex or real -> (..., T): each token's L2 norm of |z| over its d features."""
    z = z.detach()
    z = z.to(torch.complex64 if z.is_complex() else torch.float32)
    return torch.linalg.vector_norm(z, dim=-1)


def magnitude_cv(z: torch.Tensor) -> torch.Tensor:
    """Coefficient of variation (std, ddof=1, over mean) of the token magnitudes within each
    sequence, averaged over the batch: a 0-d tensor; 0 for sequences of one token."""
    mags = token_magnitudes(z)
    if mags.shape[-1] < 2:
        return torch.zeros((), device=z.device)
    cv = mags.std(dim=-1) / mags.mean(dim=-1).clamp_min(1e-12)
    return cv.mean()


def block_magnitude_cvs(trace: Sequence[torch.Tensor]) -> dict[str, torch.Tensor]:
    """`polar/block<i>/magnitude_cv` for the block outputs of a stack's trace."""
    return {f"polar/block{i}/magnitude_cv": magnitude_cv(z) for i, z in enumerate(trace)}
