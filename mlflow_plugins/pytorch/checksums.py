"""Per-parameter checksums: two numbers that tell whether a parameter's values are the same."""

from __future__ import annotations

import math
from collections import defaultdict

import numpy as np
import torch


@torch.no_grad()
def param_checksums(params: list[torch.Tensor]) -> torch.Tensor:
    """(n_params, 2) float64 on the host: each parameter's L2 norm, and its sum / sqrt(numel)
    (bounded by the norm); equal values give equal checksums, bit for bit.

    Per (device, dtype) group (usually one): one fused norm and a sum per parameter on the
    device, accumulated in float64 (so that rounding cannot tell identical values apart), then
    one copy to the host. Complex parameters count as (real, imaginary) pairs.
    """
    if not params:
        return torch.zeros((0, 2), dtype=torch.float64)
    groups: dict[tuple[torch.device, torch.dtype], list[int]] = defaultdict(list)
    for i, p in enumerate(params):
        groups[(p.device, p.dtype)].append(i)
    blocks, order = [], []
    for (device, dtype), idx in groups.items():
        # complex as (real, imag) pairs: a view, no copy; MPS has no float64
        ts = [torch.view_as_real(params[i]) if dtype.is_complex else params[i] for i in idx]
        acc = torch.float32 if device.type == "mps" else torch.float64
        sums = [t.sum(dtype=acc) / math.sqrt(max(t.numel(), 1)) for t in ts]
        blocks.append(torch.stack([torch.stack(torch._foreach_norm(ts, 2, dtype=acc)),
                                   torch.stack(sums)], dim=1).to("cpu", torch.float64))
        order += idx
    rows = blocks[0] if len(blocks) == 1 else torch.cat(blocks)
    return rows if order == sorted(order) else rows[np.argsort(order)]
