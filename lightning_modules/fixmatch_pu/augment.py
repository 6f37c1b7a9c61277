"""FixMatch's two views of a batch of micrograph patches (B, 1, H, W), drawn from torch's global
generator (seeded by Lightning, carried in checkpoints by the run's `RandomState`).

Weak: what leaves a particle a particle: a random dihedral transform (a particle's projection can
appear at any in-plane rotation and either handedness of view) and a shift of a few pixels.
Strong: the weak view plus what a micrograph's imaging varies: contrast and offset jitter, extra
Gaussian noise (lower SNR), and a cut-out square (RandAugment/Cutout's role in FixMatch, for
greyscale cryo-EM patches).
"""

from __future__ import annotations

import torch

__all__ = ["weak_view", "strong_view"]


def _dihedral(x: torch.Tensor) -> torch.Tensor:
    """Each patch rotated by a random multiple of 90 degrees and flipped with probability 1/2."""
    k = torch.randint(0, 4, (x.shape[0],))
    flip = torch.rand(x.shape[0]) < 0.5
    out = torch.empty_like(x)
    for turns in range(4):
        idx = (k == turns).nonzero(as_tuple=True)[0]
        if len(idx):
            out[idx] = torch.rot90(x[idx], turns, dims=(-2, -1))
    return torch.where(flip.view(-1, 1, 1, 1).to(x.device), out.flip(-1), out)


def _shift(x: torch.Tensor, max_shift: int) -> torch.Tensor:
    """Each patch shifted by up to `max_shift` pixels per axis, edges reflected."""
    if max_shift <= 0:
        return x
    h, w = x.shape[-2:]
    padded = torch.nn.functional.pad(x, (max_shift,) * 4, mode="reflect")
    offsets = torch.randint(0, 2 * max_shift + 1, (x.shape[0], 2)).tolist()
    return torch.stack([padded[i, :, r:r + h, c:c + w] for i, (r, c) in enumerate(offsets)])


def weak_view(x: torch.Tensor, *, max_shift: int = 3) -> torch.Tensor:
    """A random dihedral transform and a small shift of every patch."""
    return _shift(_dihedral(x), max_shift)


def strong_view(x: torch.Tensor, *, max_shift: int = 3, noise: float = 0.5, cutout: float = 0.35) -> torch.Tensor:
    """The weak view, then per patch: contrast x[0.6, 1.4] and offset +-0.3 (in standard deviations
    of the normalized patch), Gaussian noise of standard deviation up to `noise`, and a zeroed square
    of side `cutout` times the patch size at a random place."""
    x = weak_view(x, max_shift=max_shift)
    b, _, h, w = x.shape
    gain = torch.empty(b, 1, 1, 1).uniform_(0.6, 1.4).to(x)
    offset = torch.empty(b, 1, 1, 1).uniform_(-0.3, 0.3).to(x)
    sigma = torch.rand(b, 1, 1, 1).to(x) * noise
    x = x * gain + offset + sigma * torch.randn(x.shape).to(x)
    side = max(1, round(cutout * min(h, w)))
    rows = torch.randint(0, h - side + 1, (b,))
    cols = torch.randint(0, w - side + 1, (b,))
    grid_r = torch.arange(h).view(1, h, 1)
    grid_c = torch.arange(w).view(1, 1, w)
    hole = ((grid_r >= rows.view(-1, 1, 1)) & (grid_r < (rows + side).view(-1, 1, 1))
            & (grid_c >= cols.view(-1, 1, 1)) & (grid_c < (cols + side).view(-1, 1, 1)))
    return x.masked_fill(hole.unsqueeze(1).to(x.device), 0.0)
