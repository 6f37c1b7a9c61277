"""A tiny stand-in for whitened H1/L1 strain: white noise, half the windows with a chirp burst."""

from __future__ import annotations

import numpy as np


def chirp_burst(n_samples: int, sample_rate: float, arrival: float, amplitude: float) -> np.ndarray:
    """A 0.25 s chirp (40 -> 250 Hz, Hann envelope) ending at `arrival` seconds."""
    t = np.arange(n_samples) / sample_rate - (arrival - 0.25)
    inside = (t >= 0) & (t < 0.25)
    phase = 2 * np.pi * (40.0 * t + 0.5 * (250.0 - 40.0) / 0.25 * t**2)
    return np.where(inside, amplitude * np.sin(np.pi * t / 0.25) ** 2 * np.sin(phase), 0.0)


def synthetic_strain(n: int, seed: int, n_samples: int = 2048, sample_rate: float = 2048.0,
                     amplitude: float = 1.0) -> tuple[np.ndarray, np.ndarray]:
    """(x float32 (n, 2, n_samples), y int32 (n,)): balanced labels; a chirp at a random time in
    both detectors (up to 10 ms apart) when y = 1. amplitude 1 gives a matched-filter SNR of about 14
    per detector: an easy task."""
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((n, 2, n_samples))
    y = rng.permutation(np.arange(n) % 2).astype(np.int32)
    duration = n_samples / sample_rate
    for i in np.flatnonzero(y):
        arrival = rng.uniform(0.3, duration - 0.05)
        for d, shift in enumerate((0.0, rng.uniform(-0.01, 0.01))):
            x[i, d] += chirp_burst(n_samples, sample_rate, arrival + shift, amplitude)
    return x.astype(np.float32), y
