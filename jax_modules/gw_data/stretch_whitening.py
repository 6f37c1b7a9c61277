"""Whitening a long stretch of strain with a PSD estimated at a coarser resolution.

`whitening.whiten` whitens windows as the training set was whitened (a Tukey taper over the whole
window, the PSD on the window's own grid). A matched filter over continuous data whitens a long
stretch at once instead: tapered only over `taper` samples at each end (which callers then leave
out), the PSD interpolated onto the stretch's frequency grid, and no rescaling, so stationary
noise with that PSD comes out with unit variance wherever the taper is 1.
"""

from __future__ import annotations

import numpy as np
import scipy.fft
from scipy.signal.windows import tukey

__all__ = ["whiten_stretch"]


def whiten_stretch(strain: np.ndarray, psd: np.ndarray, sample_rate: float, taper: int) -> np.ndarray:
    """(D, T) whitened strain of a (D, T) stretch, detector d with one-sided PSD `psd[d]`.

    Args:
        strain: (D, T) strain.
        psd: (D, F) one-sided PSDs [1/Hz] on the rfft grid of 2 (F - 1) samples at `sample_rate`.
        taper: samples tapered (Tukey) at each end; 0 <= 2 taper <= T.

    Raises:
        ValueError: shapes that do not match, a PSD that is not positive, or a taper out of range.
    """
    strain, psd = np.asarray(strain, dtype=np.float64), np.asarray(psd, dtype=np.float64)
    if strain.ndim != 2 or psd.ndim != 2 or len(psd) != len(strain) or psd.shape[1] < 2:
        raise ValueError(f"strain {strain.shape} and psd {psd.shape}; allowed: (D, T) and (D, F) with F >= 2")
    if not np.all(psd > 0):
        raise ValueError("psd is not positive at every frequency; allowed: a positive PSD")
    n = strain.shape[1]
    if not 0 <= 2 * taper <= n:
        raise ValueError(f"taper={taper!r} is out of range; allowed: 0 <= 2 taper <= {n} samples")
    fft_len = scipy.fft.next_fast_len(n, real=True)  # zero-padding after the taper changes nothing
    coarse = np.fft.rfftfreq(2 * (psd.shape[1] - 1), d=1.0 / sample_rate)
    fine = np.fft.rfftfreq(fft_len, d=1.0 / sample_rate)
    asd = np.sqrt(np.stack([np.interp(fine, coarse, p) for p in psd]) * sample_rate / 2.0)
    spectrum = scipy.fft.rfft(strain * tukey(n, alpha=2 * taper / n if n else 0.0), n=fft_len, axis=-1)
    return scipy.fft.irfft(spectrum / asd, n=fft_len, axis=-1)[:, :n]
