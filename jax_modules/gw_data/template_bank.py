"""The matched filter's template bank from the same waveform library as the data (IMRPhenomD,
ripplegw): face-on, non-spinning templates over the data's mass range, each as the whitened
quadrature pair (h+, hx) with its merger at a fixed place in the window.

Importing this module imports ripplegw (float64 for the whole process): only the generator process
(`python -m jax_modules.gw_data.generate --bank N`) may import it; `generate_bank` runs that.
"""

from __future__ import annotations

import numpy as np

from .config import GWDataConfig
from .matched_filter import TemplateBank, mass_grid
from .psd import design_psd
from .waveforms import face_on_pairs
from .whitening import whiten

__all__ = ["MERGER_FRACTION", "make_bank"]

#: Where each template's merger sits in its window: the middle of the data's merger range (0.6-0.9).
MERGER_FRACTION = 0.75


def make_bank(config: GWDataConfig, n_masses: int) -> TemplateBank:
    """Templates on `mass_grid(config.mass_min, config.mass_max, n_masses)`, whitened with the PSD
    the data set is whitened with."""
    m1, m2 = mass_grid(config.mass_min, config.mass_max, n_masses)
    strain = face_on_pairs(config, m1, m2, MERGER_FRACTION * config.duration)
    psd = design_psd(config.sample_rate, config.n_samples, config.f_lower)
    white = whiten(strain, psd, config.sample_rate, taper=config.whiten_taper)
    return TemplateBank(white.astype(np.float32), m1, m2, float(config.sample_rate),
                        round(MERGER_FRACTION * config.n_samples))
