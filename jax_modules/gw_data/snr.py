"""Signal-to-noise ratios: optimal SNR of a known signal, and matched filtering of whitened data."""

from __future__ import annotations

import numpy as np


def optimal_snr(strain: np.ndarray, psd: np.ndarray, sample_rate: float, f_lower: float) -> np.ndarray:
    """sqrt(4 sum_f |h(f)|^2 / S(f) df) over f >= `f_lower`, per series (last axis).

    Args:
        strain: (..., T) noise-free signal.
        psd: (T // 2 + 1,) one-sided PSD [1/Hz] on the series' rfft grid.
        sample_rate: samples per second.
        f_lower: lowest frequency integrated [Hz].

    Returns:
        (...) optimal SNR of each series.
    """
    n = strain.shape[-1]
    if psd.shape != (n // 2 + 1,):
        raise ValueError(f"psd has shape {psd.shape}; allowed: ({n // 2 + 1},) for series of {n} samples")
    freqs = np.fft.rfftfreq(n, d=1.0 / sample_rate)
    spectrum = np.fft.rfft(strain, axis=-1) / sample_rate  # continuous-FT normalisation
    df = sample_rate / n
    weight = np.where(freqs >= f_lower, 4.0 * df / psd, 0.0)
    return np.sqrt(np.sum(np.abs(spectrum) ** 2 * weight, axis=-1))


def network_snr(strain: np.ndarray, psd: np.ndarray, sample_rate: float, f_lower: float) -> np.ndarray:
    """Optimal network SNR of (..., n_detectors, T) signals: detectors added in quadrature."""
    return np.sqrt(np.sum(optimal_snr(strain, psd, sample_rate, f_lower) ** 2, axis=-1))


def scaled_to_snr(strain: np.ndarray, target: np.ndarray, psd: np.ndarray, sample_rate: float,
                  f_lower: float) -> np.ndarray:
    """(n, n_detectors, T) signals rescaled to optimal network SNR `target` (n,), measured where the
    network looks: on the window, over f >= `f_lower`, with the whitening PSD."""
    return strain * (np.asarray(target) / network_snr(strain, psd, sample_rate, f_lower))[:, None, None]


def matched_filter_snr(data: np.ndarray, template: np.ndarray) -> np.ndarray:
    """<d, h> / sqrt(<h, h>) over the last two axes (detectors, time) of whitened arrays.

    For unit-variance white noise plus the template this is Gaussian with mean equal to the
    template's optimal SNR and unit standard deviation.
    """
    data, template = np.asarray(data, dtype=np.float64), np.asarray(template, dtype=np.float64)
    if data.shape[-2:] != template.shape[-2:]:
        raise ValueError(f"data has shape {data.shape} and template {template.shape}; allowed: equal last two axes")
    norm = np.sqrt(np.sum(template**2, axis=(-2, -1)))
    return np.sum(data * template, axis=(-2, -1)) / norm
