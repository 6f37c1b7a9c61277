"""Stationary Gaussian detector noise coloured by a one-sided PSD."""

from __future__ import annotations

import numpy as np


def colored_noise(rng: np.random.Generator, psd: np.ndarray, sample_rate: float, shape: tuple[int, ...]) -> np.ndarray:
    """Independent Gaussian noise series with PSD `psd`, drawn in the frequency domain.

    Each rfft bin is a complex Gaussian with E|X_k|^2 = S_k N f_s / 2, so that the series has
    variance sum_k S_k df; the DC bin is zero and the Nyquist bin real.

    Args:
        rng: source of randomness (consumed in a fixed order: deterministic for its seed).
        psd: (N // 2 + 1,) one-sided PSD [1/Hz] on the rfft grid of N (even) samples.
        sample_rate: samples per second.
        shape: leading shape of the output, e.g. (n_examples, n_detectors).

    Returns:
        (*shape, N) float64 strain.
    """
    psd = np.asarray(psd, dtype=np.float64)
    if psd.ndim != 1 or psd.size < 2 or np.any(psd <= 0) or not np.all(np.isfinite(psd)):
        raise ValueError(f"psd has shape {psd.shape}; allowed: a 1-D array of at least 2 positive finite values")
    n = 2 * (psd.size - 1)
    scale = np.sqrt(psd * n * sample_rate / 4.0)
    real = rng.standard_normal((*shape, psd.size))
    imag = rng.standard_normal((*shape, psd.size))
    spectrum = (real + 1j * imag) * scale
    spectrum[..., 0] = 0.0
    spectrum[..., -1] = spectrum[..., -1].real * np.sqrt(2.0)
    return np.fft.irfft(spectrum, n=n, axis=-1)
