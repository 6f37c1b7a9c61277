"""Pure functions between complex tokens and their polar form (log-magnitude, phase)."""

from __future__ import annotations

import torch

__all__ = ["EPS", "log_magnitude", "polar_features", "recompose", "pooled_features"]

EPS = 1e-6


def log_magnitude(z: torch.Tensor, eps: float = EPS) -> torch.Tensor:
    """log(|z| + eps), real, same shape as `z`."""
    return torch.log(z.abs() + eps)


def polar_features(z: torch.Tensor, context: torch.Tensor, eps: float = EPS) -> torch.Tensor:
    """Real features of each token combined with its context, (..., T, 4d): the token's
    log-magnitude, the context's log-magnitude, and cos/sin of the token's phase relative to the
    context's (cos/sin rather than the angle itself: no jump at +-pi).

    Args:
        z: (..., T, d) complex tokens.
        context: (..., d) complex context of those tokens.
    """
    m = log_magnitude(z, eps)
    cm = log_magnitude(context, eps).unsqueeze(-2).expand_as(m)
    rel = torch.angle(z) - torch.angle(context).unsqueeze(-2)
    return torch.cat([m, cm, torch.cos(rel), torch.sin(rel)], dim=-1)


def recompose(magnitude: torch.Tensor, phase: torch.Tensor) -> torch.Tensor:
    """magnitude * exp(i * phase) as complex64 (`torch.polar` takes float32 parts)."""
    return torch.polar(magnitude.float(), phase.float())


def pooled_features(p: torch.Tensor, eps: float = EPS) -> torch.Tensor:
    """Real features of complex vectors (..., d) -> (..., 3d): log-magnitude, cos and sin of phase."""
    phase = torch.angle(p)
    return torch.cat([log_magnitude(p, eps), torch.cos(phase), torch.sin(phase)], dim=-1)
