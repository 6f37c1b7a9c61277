"""The fixed temporal feature stage: a seeded leaky echo-state reservoir.

Document 001's model computes reservoir states `R_final` from the input time series and feeds
them to a learned representation stage. The reservoir is never trained, so its weights are
registered as buffers: they move with `.to(device)` and are saved in the state dict, but they
are not parameters and no optimizer ever holds them.
"""

from __future__ import annotations

import torch
from torch import nn

__all__ = ["EchoStateReservoir"]


class EchoStateReservoir(nn.Module):
    """A leaky-integrator echo-state network with fixed random weights.

    h_t = (1 - leak) * h_{t-1} + leak * tanh(x_t W_in + h_{t-1} W + b), h_0 = 0.

    Args:
        n_inputs: channels per time step of the input.
        size: number of reservoir units.
        spectral_radius: the recurrent matrix is rescaled to this spectral radius (< 1 keeps
            the echo-state property).
        input_scaling: scale of the uniform input weights.
        leak: leak rate in (0, 1].
        density: fraction of nonzero recurrent weights.
        seed: seeds the weights; the same seed always builds the same reservoir.

    Example:
        >>> reservoir = EchoStateReservoir(3, 64, seed=0)
        >>> reservoir(torch.zeros(2, 50, 3)).shape
        torch.Size([2, 50, 64])
    """

    def __init__(self, n_inputs: int, size: int = 64, *, spectral_radius: float = 0.9,
                 input_scaling: float = 0.5, leak: float = 0.5, density: float = 0.2,
                 seed: int = 0) -> None:
        super().__init__()
        if not 0.0 < leak <= 1.0:
            raise ValueError(f"leak={leak!r} is out of range; allowed: 0 < leak <= 1")
        if not 0.0 < density <= 1.0:
            raise ValueError(f"density={density!r} is out of range; allowed: 0 < density <= 1")
        g = torch.Generator().manual_seed(seed)
        w_in = (torch.rand(n_inputs, size, generator=g, dtype=torch.float64) * 2 - 1) * input_scaling
        w = torch.randn(size, size, generator=g, dtype=torch.float64)
        w = w * (torch.rand(size, size, generator=g, dtype=torch.float64) < density)
        radius = torch.linalg.eigvals(w).abs().max()
        w = w * (spectral_radius / radius)
        bias = (torch.rand(size, generator=g, dtype=torch.float64) * 2 - 1) * 0.1
        self.register_buffer("w_in", w_in.float())
        self.register_buffer("w", w.float())
        self.register_buffer("bias", bias.float())
        self.leak = leak
        self.size = size

    @torch.no_grad()
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Reservoir states `R_final`, (B, T, size), for inputs (B, T, n_inputs)."""
        drive = x @ self.w_in + self.bias                  # (B, T, size), all steps at once
        h = x.new_zeros(x.shape[0], self.size)
        states = []
        for t in range(x.shape[1]):
            h = (1 - self.leak) * h + self.leak * torch.tanh(drive[:, t] + h @ self.w)
            states.append(h)
        return torch.stack(states, dim=1)
