"""Whitening: divide strain by the noise amplitude spectral density, so noise is white with unit variance."""

from __future__ import annotations

import numpy as np
from scipy.signal.windows import tukey


def whiten(strain: np.ndarray, psd: np.ndarray, sample_rate: float, taper: float = 0.1) -> np.ndarray:
    """Whiten windows of strain along the last axis with a one-sided PSD on their rfft grid.

    A Tukey window (fraction `taper`) suppresses edge effects; the result is scaled so that
    stationary Gaussian noise with this PSD comes out with unit variance per sample.

    Args:
        strain: (..., T) real strain.
        psd: (T // 2 + 1,) one-sided PSD [1/Hz].
        sample_rate: samples per second.
        taper: Tukey window fraction, in [0, 1].
    """
    strain = np.asarray(strain, dtype=np.float64)
    n = strain.shape[-1]
    if psd.shape != (n // 2 + 1,):
        raise ValueError(f"psd has shape {psd.shape}; allowed: ({n // 2 + 1},) for windows of {n} samples")
    if not 0.0 <= taper <= 1.0:
        raise ValueError(f"taper={taper!r} is out of range; allowed: 0 <= taper <= 1")
    window = tukey(n, alpha=taper)
    spectrum = np.fft.rfft(strain * window, axis=-1)
    white = np.fft.irfft(spectrum / np.sqrt(psd * sample_rate / 2.0), n=n, axis=-1)
    return white / np.sqrt(np.mean(window**2))
