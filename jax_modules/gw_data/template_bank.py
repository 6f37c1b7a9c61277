"""The matched filter's template bank from the same waveform library as the data (IMRPhenomD,
ripplegw): face-on, non-spinning templates over the data's mass range, each as the whitened
quadrature pair (h+, hx) with its merger at a fixed place in the window.

Importing this module imports ripplegw (float64 for the whole process): only the generator process
(`python -m jax_modules.gw_data.generate --bank N`) may import it; `generate_bank` runs that.
"""

from __future__ import annotations

import numpy as np

from .chirp import chirp_mass, symmetric_mass_ratio
from .config import GWDataConfig
from .matched_filter import TemplateBank, mass_grid
from .psd import design_psd
from .waveforms import REFERENCE_DISTANCE_MPC, WindowProjector
from .whitening import whiten

__all__ = ["MERGER_FRACTION", "make_bank"]

#: Where each template's merger sits in its window: the middle of the data's merger range (0.6-0.9).
MERGER_FRACTION = 0.75


def make_bank(config: GWDataConfig, n_masses: int) -> TemplateBank:
    """Templates on `mass_grid(config.mass_min, config.mass_max, n_masses)`, whitened with the PSD
    the data set is whitened with."""
    m1, m2 = mass_grid(config.mass_min, config.mass_max, n_masses)
    n = len(m1)
    zeros = np.zeros(n)
    theta = np.stack([chirp_mass(m1, m2), symmetric_mass_ratio(m1, m2), zeros, zeros,
                      np.full(n, REFERENCE_DISTANCE_MPC), zeros, zeros, zeros], axis=1)  # face-on, phase 0
    # Two "detectors" that see only h+ and only hx: the quadrature pair of each template.
    fplus, fcross = np.tile([1.0, 0.0], (n, 1)), np.tile([0.0, 1.0], (n, 1))
    merger = MERGER_FRACTION * config.duration
    strain = WindowProjector(config, batch_size=min(64, n))(theta, fplus, fcross, np.full((n, 2), merger))
    psd = design_psd(config.sample_rate, config.n_samples, config.f_lower)
    white = whiten(strain, psd, config.sample_rate, taper=config.whiten_taper)
    return TemplateBank(white.astype(np.float32), m1, m2, float(config.sample_rate),
                        round(MERGER_FRACTION * config.n_samples))
