"""The parameter census of a torch model: the start of training against its end."""

from __future__ import annotations

import numpy as np
import torch

from ..analysis.param_census import ParamCensus

CENSUS_TITLE = "Parameters per module"


class CensusWatch:
    """Fingerprints every model parameter at the start (per-parameter L2 norm and sum, fused,
    on the device) and compares at `finish()`: two fused reductions per run, nothing per step.

    Args:
        model: the model.
        held: the parameters the optimizer holds.
    """

    def __init__(self, model: torch.nn.Module, held: list[torch.nn.Parameter]) -> None:
        named = list(model.named_parameters())
        self.names = tuple(n for n, _ in named)
        self.params = [p for _, p in named]
        ids = {id(p) for p in held}
        self.held = np.array([id(p) in ids for p in self.params], dtype=bool)
        self.numel = np.array([p.numel() for p in self.params], dtype=np.int64)
        self._start = _fingerprint(self.params)

    def finish(self) -> ParamCensus:
        changed = np.any(_fingerprint(self.params) != self._start, axis=0)
        return ParamCensus(self.names, self.numel, np.array([p.requires_grad for p in self.params]),
                           self.held, changed)


def _fingerprint(params: list[torch.Tensor]) -> np.ndarray:
    """(2, n): each parameter's L2 norm and sum, in float64 on the host (one copy)."""
    if not params:
        return np.zeros((2, 0))
    values = [p.detach() for p in params]
    device = values[0].device
    norms = torch.stack([n.to(device, torch.float64) for n in torch._foreach_norm(values, 2.0)])
    sums = torch.stack([(v.sum() if not v.is_complex() else torch.view_as_real(v).sum()).to(device, torch.float64)
                        for v in values])
    return torch.stack([norms, sums]).cpu().numpy()
