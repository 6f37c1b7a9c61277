"""Modules the plugin provides so their effect can be probed like any normalization layer."""

from __future__ import annotations

import torch


class L2Normalize(torch.nn.Module):
    """x / max(|x|, eps) along `dim`: the latent normalization of document 000 (bug #2).

    Args:
        dim: the dimension normalized to unit L2 norm.
        eps: floor on the norm, avoids division by zero.
    """

    def __init__(self, dim: int = -1, eps: float = 1e-8) -> None:
        super().__init__()
        if isinstance(eps, bool) or not isinstance(eps, (int, float)) or not eps > 0:
            raise ValueError(f"eps={eps!r} is out of range; allowed: a number > 0")
        self.dim, self.eps = int(dim), float(eps)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.nn.functional.normalize(x, p=2.0, dim=self.dim, eps=self.eps)

    def extra_repr(self) -> str:
        return f"dim={self.dim}, eps={self.eps}"
