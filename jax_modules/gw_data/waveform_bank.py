"""The waveforms fresh training windows are drawn around (`online`): IMRPhenomD face-on quadrature
pairs of binaries drawn from the data's mass distribution, with the detector geometry and PSDs.

Importing this module imports ripplegw (float64 for the whole process): only the generator process
(`python -m jax_modules.gw_data.generate --waveforms N`) may import it; `generate_waveform_bank` runs that.
"""

from __future__ import annotations

from dataclasses import replace

import numpy as np

from .config import SPLITS, GWDataConfig
from .detectors import detector_geometry
from .online import WaveformBank, bank_layout, fade_in
from .psd import design_psd
from .sources import sample_sources
from .waveforms import face_on_pairs

__all__ = ["make_waveform_bank"]


def make_waveform_bank(config: GWDataConfig, n_waveforms: int) -> WaveformBank:
    """`n_waveforms` binaries with masses drawn as `sample_sources` draws them, from a child of
    `SeedSequence(config.seed)` that no split of the cached data set uses.

    Raises:
        ValueError: `n_waveforms` < 1.
    """
    if isinstance(n_waveforms, bool) or not isinstance(n_waveforms, int) or n_waveforms < 1:
        raise ValueError(f"n_waveforms={n_waveforms!r} is out of range; allowed: an integer >= 1")
    rng = np.random.default_rng(np.random.SeedSequence(config.seed).spawn(len(SPLITS) + 1)[-1])
    sources = sample_sources(rng, n_waveforms, config)
    length, merger_index = bank_layout(config)
    fs = config.sample_rate
    # The stretch as a window of its own, its merger fixed at merger_index (the segment covers the inspiral).
    stretch = replace(config, duration=length / fs, merger_min=merger_index / length, merger_max=merger_index / length)
    pairs = face_on_pairs(stretch, sources.mass1, sources.mass2, merger_index / fs, batch_size=128)
    return WaveformBank(fade_in(pairs).astype(np.float32), sources.mass1.astype(np.float32),
                        sources.mass2.astype(np.float32), merger_index,
                        detector_geometry(config.detectors, config.gps_time),
                        design_psd(fs, config.n_samples, config.f_lower),
                        design_psd(fs, 2 * config.n_samples, config.f_lower))
