"""The parameter census of a torch model: the start of training against its end."""

from __future__ import annotations

import numpy as np
import torch

from ..analysis.param_census import ParamCensus
from .checksums import param_checksums

CENSUS_TITLE = "Parameters per module"


class CensusWatch:
    """Checksums every model parameter at the start (`param_checksums`: fused, on the device)
    and compares at `finish()`: two fused reductions per run, nothing per step.

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
        self._start = param_checksums(self.params).numpy()

    def finish(self) -> ParamCensus:
        changed = np.any(param_checksums(self.params).numpy() != self._start, axis=1)
        return ParamCensus(self.names, self.numel, np.array([p.requires_grad for p in self.params]),
                           self.held, changed)

