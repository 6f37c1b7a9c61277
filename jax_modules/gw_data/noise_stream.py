"""Continuous stationary Gaussian noise with a detector PSD, produced chunk after chunk.

`colored_noise` draws each window independently in the frequency domain, so its series are periodic
and cannot be joined end to end. Hours of strain are made here instead by filtering one white
Gaussian stream with a fixed FIR filter whose amplitude response is the ASD (what PyCBC's
`pycbc.noise.reproduceable.colored_noise`, used by MLGWSC-1's generator, also does in effect): the
output is stationary across chunk boundaries, and the same for any chunking of the same draws.
"""

from __future__ import annotations

import numpy as np
from scipy.signal import fftconvolve
from scipy.signal.windows import hann

__all__ = ["NoiseStream", "fir_from_psd"]


def fir_from_psd(psd: np.ndarray, sample_rate: float) -> np.ndarray:
    """(L,) causal FIR filter turning unit-variance white noise into noise with one-sided PSD `psd`.

    `psd` lies on the rfft grid of L (even) samples. Unit white noise has one-sided PSD 2 / f_s, so
    the amplitude response is sqrt(psd f_s / 2); the zero-phase impulse response is centred in the
    filter and Hann-windowed (smoothing the PSD over ~2 / (L / f_s) Hz, far finer than its features).

    Raises:
        ValueError: `psd` not 1-D with at least 2 positive finite values.
    """
    psd = np.asarray(psd, dtype=np.float64)
    if psd.ndim != 1 or psd.size < 2 or not np.all(np.isfinite(psd)) or np.any(psd <= 0):
        raise ValueError(f"psd has shape {psd.shape}; allowed: a 1-D array of at least 2 positive finite values")
    n = 2 * (psd.size - 1)
    impulse = np.fft.irfft(np.sqrt(psd * sample_rate / 2.0), n=n)
    return np.roll(impulse, n // 2) * hann(n, sym=False)


class NoiseStream:
    """One detector's noise: `next(n)` returns the next n samples of one endless stationary series.

    White samples are drawn from `rng` in order (n at a time) and convolved with the FIR filter,
    keeping its last L - 1 inputs between calls, so `next(a)` then `next(b)` equals `next(a + b)`.

    Args:
        psd: one-sided PSD [1/Hz] on the rfft grid of the filter length L (even).
        sample_rate: samples per second.
        rng: the source of the white draws (consumed only by this stream).

    Example:
        >>> stream = NoiseStream(design_psd(2048, 16384), 2048, np.random.default_rng(0))
        >>> stream.next(2048 * 64).shape
        (131072,)
    """

    def __init__(self, psd: np.ndarray, sample_rate: float, rng: np.random.Generator) -> None:
        self._fir = fir_from_psd(psd, sample_rate)
        self._rng = rng
        self._history = rng.standard_normal(len(self._fir) - 1)  # the filter's warm-up inputs

    def next(self, n: int) -> np.ndarray:
        """The next `n` samples (float64)."""
        if isinstance(n, bool) or not isinstance(n, (int, np.integer)) or n < 1:
            raise ValueError(f"n={n!r} is out of range; allowed: an integer >= 1")
        white = np.concatenate([self._history, self._rng.standard_normal(int(n))])
        self._history = white[len(white) - len(self._history):]
        return fftconvolve(white, self._fir, mode="valid")
