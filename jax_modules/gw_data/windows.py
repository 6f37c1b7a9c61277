"""How every simulated window is made from its signal: coloured Gaussian noise added, then whitened.

Shared by the cached data set (`simulate`) and the fresh training windows drawn every epoch
(`online`), so both come out of the same recipe with the same statistics.
"""

from __future__ import annotations

import numpy as np

from .config import GWDataConfig
from .noise import colored_noise
from .whitening import whiten

__all__ = ["NOISE_CHUNK", "whitened_windows"]

#: Examples coloured and whitened at a time (the noise stream's draws follow this chunking).
NOISE_CHUNK = 256


def whitened_windows(rng: np.random.Generator, signals: np.ndarray, psd: np.ndarray, noise_psd: np.ndarray,
                     config: GWDataConfig) -> np.ndarray:
    """(n, D, T) float32: `signals` (n, D, T) strain plus Gaussian noise of `noise_psd`, whitened with `psd`.

    Args:
        rng: the noise stream (consumed NOISE_CHUNK windows at a time: deterministic for its seed).
        signals: noise-free strain per window and detector (zeros for noise-only windows).
        psd: (T // 2 + 1,) one-sided PSD the windows are whitened with.
        noise_psd: (T + 1,) the same PSD on the grid of 2 T samples: noise is drawn over twice the
            window and cut, so the window's noise is not periodic.
        config: sample rate, detectors, window length and Tukey taper.
    """
    n, n_samples = len(signals), config.n_samples
    x = np.empty(signals.shape, dtype=np.float32)
    for start in range(0, n, NOISE_CHUNK):
        stop = min(start + NOISE_CHUNK, n)
        noise = colored_noise(rng, noise_psd, config.sample_rate, (stop - start, len(config.detectors)))
        strain = noise[..., :n_samples] + signals[start:stop]
        x[start:stop] = whiten(strain, psd, config.sample_rate, taper=config.whiten_taper)
    return x
