"""A waveform bank for fresh-window tests without ripplegw: chirping quadrature pairs with the real
H1/L1 geometry and design PSD, laid out as `online.bank_layout` asks."""

from __future__ import annotations

import numpy as np

from jax_modules.gw_data.config import GWDataConfig
from jax_modules.gw_data.detectors import detector_geometry
from jax_modules.gw_data.online import WaveformBank, bank_layout, fade_in
from jax_modules.gw_data.psd import design_psd

CONFIG = GWDataConfig(n_train=2, n_val=2, n_test=2, snr_min=8.0, snr_max=12.0)


def chirp_pair(t: np.ndarray, f0: float) -> np.ndarray:
    """(2, len(t)) [h+, hx] at times `t` [s] from the merger: a Gaussian burst (0.07 s) chirping
    through f0 at the merger by 200 Hz/s; smooth and band-limited, so a shifted copy is known exactly."""
    phase = 2 * np.pi * (f0 * t + 100.0 * t ** 2)
    return 1e-21 * np.exp(-(t / 0.1) ** 2) * np.stack([np.cos(phase), np.sin(phase)])


def synthetic_bank(config: GWDataConfig = CONFIG, n: int = 6) -> WaveformBank:
    """`n` chirps of different frequencies (masses are labels only)."""
    length, merger_index = bank_layout(config)
    t = (np.arange(length) - merger_index) / config.sample_rate
    pairs = np.stack([chirp_pair(t, 60.0 + 20.0 * i) for i in range(n)])
    masses = np.linspace(config.mass_max, config.mass_min, n).astype(np.float32)
    return WaveformBank(fade_in(pairs).astype(np.float32), masses, 0.8 * masses, merger_index,
                        detector_geometry(config.detectors, config.gps_time),
                        design_psd(config.sample_rate, config.n_samples, config.f_lower),
                        design_psd(config.sample_rate, 2 * config.n_samples, config.f_lower))
