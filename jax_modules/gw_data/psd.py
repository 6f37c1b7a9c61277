"""Detector noise power spectral densities: the design curve from bilby, or an estimate from data."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from scipy.signal import welch

#: Advanced LIGO design sensitivity, zero-detuned high power (LIGO-T0900288), as shipped by bilby.
ALIGO_ZDHP = "aLIGO_ZERO_DET_high_P_psd.txt"


def design_psd_file(name: str = ALIGO_ZDHP) -> Path:
    """Path of a PSD table shipped inside bilby (no download)."""
    import bilby  # heavy import, only where the design curve is needed

    path = Path(bilby.__file__).parent / "gw" / "detector" / "noise_curves" / name
    if not path.is_file():
        raise FileNotFoundError(f"PSD table {name!r} is not shipped with bilby {bilby.__version__}")
    return path


def design_psd(sample_rate: float, n_samples: int, f_lower: float = 20.0, name: str = ALIGO_ZDHP) -> np.ndarray:
    """One-sided PSD [1/Hz] on the rfft grid of `n_samples` at `sample_rate`.

    Below `f_lower` (and past the table's ends) the PSD is held at its value at the edge, so
    whitening does not amplify the unphysical low-frequency end of the curve.
    """
    table = np.loadtxt(design_psd_file(name))
    freqs = np.fft.rfftfreq(n_samples, d=1.0 / sample_rate)
    f_clip = np.clip(freqs, max(f_lower, table[0, 0]), table[-1, 0])
    return np.exp(np.interp(np.log(f_clip), np.log(table[:, 0]), np.log(table[:, 1])))


def welch_psd(strain: np.ndarray, sample_rate: float, n_samples: int, f_lower: float = 20.0) -> np.ndarray:
    """Welch estimate of a one-sided PSD from a long strain segment, on the rfft grid of `n_samples`.

    Segments of `n_samples` with 50 % overlap and a Hann window, median-averaged (robust to
    loud transients), interpolated onto the grid; held constant below `f_lower`.
    """
    strain = np.asarray(strain, dtype=np.float64)
    if strain.ndim != 1 or strain.size < 2 * n_samples:
        raise ValueError(
            f"strain has {strain.size} samples; allowed: a 1-D segment of at least {2 * n_samples} samples"
        )
    freqs, psd = welch(strain, fs=sample_rate, nperseg=n_samples, noverlap=n_samples // 2, average="median")
    grid = np.fft.rfftfreq(n_samples, d=1.0 / sample_rate)
    psd = np.interp(grid, freqs, psd)
    psd[grid < f_lower] = psd[np.searchsorted(grid, f_lower)]
    return psd
