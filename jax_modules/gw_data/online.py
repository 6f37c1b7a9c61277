"""Fresh training windows every epoch, as gravitational-wave searches train: new noise, sky positions,
orientations, arrival times and SNRs around waveforms generated once.

The waveforms (IMRPhenomD from ripplegw, made in the generator process: `waveform_bank`) are stored as
each binary's face-on quadrature pair (h+, hx) over a stretch of samples around its merger. A draw
then does in numpy what the cached data set's generator does (`simulate`): it picks a binary from the
bank, and draws inclination, coalescence phase, sky position, polarisation, geocentre merger time and
network SNR as `sample_sources` draws them; combines the pair into h+ and hx for that inclination and
phase (the (2, 2) mode: ripplegw's h+ = (1 + cos^2 i) / 2 h0, hx = -i cos i h0, h0 turning by twice
the phase); projects them on each detector (`detectors.project`); shifts each to its arrival time
(whole samples by slicing the stretch, the fraction by a phase ramp); scales to the network SNR
(`snr.scaled_to_snr`, the cached data's definition); adds coloured Gaussian noise and whitens
(`windows.whitened_windows`, the cached data's recipe). Validation and test windows stay the cached
ones, so every run is scored on the same windows.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace

import numpy as np

from .config import GWDataConfig
from .dataset import Split
from .detectors import DetectorGeometry, project
from .snr import scaled_to_snr
from .sources import Sources, sample_sources
from .windows import NOISE_CHUNK, whitened_windows

__all__ = ["FADE", "GUARD", "MAX_GEOCENTRE_DELAY", "WaveformBank", "FreshWindows", "bank_layout", "fade_in"]

#: Samples at the start of a stored stretch that fade in (where it cuts through the inspiral).
FADE = 256
#: Samples between any window and the faded start or the end of a stretch.
GUARD = 64
#: Farthest a detector's arrival lies from the geocentre's [s]: Earth's radius over c is 21.3 ms.
MAX_GEOCENTRE_DELAY = 0.025
#: Signals shifted at a time (bounds memory: chunk x detectors x stretch complex numbers).
SIGNAL_CHUNK = 256


def bank_layout(config: GWDataConfig) -> tuple[int, int]:
    """(stretch length, merger index): the samples stored per waveform (a power of two) and where its
    merger sits, so that every window `config` can ask for (merger range, detector delays) lies inside
    the stretch, `FADE + GUARD` samples after its start and `GUARD` before its end."""
    fs = config.sample_rate
    latest = math.ceil((config.merger_max * config.duration + MAX_GEOCENTRE_DELAY) * fs)
    earliest = math.floor((config.merger_min * config.duration - MAX_GEOCENTRE_DELAY) * fs)
    merger_index = FADE + GUARD + latest + 1
    needed = merger_index - earliest + config.n_samples + GUARD + 1
    return 1 << (needed - 1).bit_length(), merger_index


def fade_in(pairs: np.ndarray) -> np.ndarray:
    """`pairs` (..., L) with their first FADE samples brought in by a half cosine: the stretch then has
    no edge, so shifting it by a fraction of a sample does not ring into the windows."""
    ramp = 0.5 - 0.5 * np.cos(np.pi * np.arange(FADE) / FADE)
    out = np.array(pairs, copy=True)
    out[..., :FADE] *= ramp
    return out


@dataclass(frozen=True, eq=False)
class WaveformBank:
    """What fresh windows need from the generator process.

    Args:
        pairs: (n, 2, L) float32 strain [h+, hx] of face-on binaries at the reference distance with
            coalescence phase 0, merger at sample `merger_index`, faded in (`fade_in`).
        mass1, mass2: (n,) float32 component masses [M_sun], mass1 >= mass2.
        merger_index: the sample of the stretch where the merger arrives.
        geometry: the detectors' tensors and vertices and the sidereal time (`detectors.project`).
        psd: (T // 2 + 1,) float64 PSD the windows are whitened and SNRs measured with.
        noise_psd: (T + 1,) float64 the same PSD on the grid noise is drawn on (2 T samples).

    Raises:
        ValueError: arrays of the wrong shape or dtype.
    """

    pairs: np.ndarray
    mass1: np.ndarray
    mass2: np.ndarray
    merger_index: int
    geometry: DetectorGeometry
    psd: np.ndarray
    noise_psd: np.ndarray

    def __post_init__(self) -> None:
        n = len(self.pairs)
        if self.pairs.dtype != np.float32 or self.pairs.ndim != 3 or self.pairs.shape[1] != 2 or n == 0:
            raise ValueError(f"pairs is {self.pairs.dtype} {self.pairs.shape}; allowed: float32 (n >= 1, 2, L)")
        for name in ("mass1", "mass2"):
            array = getattr(self, name)
            if array.dtype != np.float32 or array.shape != (n,):
                raise ValueError(f"{name} is {array.dtype} {array.shape}; allowed: float32 ({n},)")
        if not 0 <= self.merger_index < self.pairs.shape[2]:
            raise ValueError(f"merger_index={self.merger_index} is outside the {self.pairs.shape[2]}-sample stretch")
        if self.noise_psd.shape != (2 * (len(self.psd) - 1) + 1,):
            raise ValueError(f"psd {self.psd.shape} and noise_psd {self.noise_psd.shape}; allowed: (T // 2 + 1,) "
                             "and (T + 1,)")

    def __len__(self) -> int:
        return len(self.pairs)


class FreshWindows:
    """Draws training windows like the cached data set's, from a `WaveformBank`.

    Args:
        bank: the waveforms, detector geometry and PSDs.
        config: the cached data set's config (window, detectors, merger range, masses, SNR range).

    Raises:
        ValueError: a bank made for another window layout or detector network.

    Example:
        >>> fresh = FreshWindows(bank, config)
        >>> split = fresh.draw(np.random.default_rng(0), 1024)          # one epoch's windows
        >>> split.x.shape, int(split.y.sum())
        ((1024, 2, 2048), 512)
    """

    def __init__(self, bank: WaveformBank, config: GWDataConfig) -> None:
        length, merger_index = bank_layout(config)
        found = (bank.pairs.shape[2], bank.merger_index, len(bank.geometry.tensors), len(bank.psd))
        wanted = (length, merger_index, len(config.detectors), config.n_samples // 2 + 1)
        if found != wanted:
            raise ValueError(f"bank has (stretch, merger index, detectors, PSD bins) {found}; allowed for this "
                             f"config: {wanted}")
        self.bank, self.config = bank, config
        self._ramp = 2j * np.pi * np.arange(length // 2 + 1) / length  # shift by d samples: exp(ramp * d)

    def signals(self, sources: Sources, index: np.ndarray) -> np.ndarray:
        """(n, D, T) float64 strain of bank binaries `index` placed as `sources` say (inclination,
        phase, sky, polarisation, merger time) and scaled to `sources.snr`; their masses are the bank's."""
        bank, config = self.bank, self.config
        fplus, fcross, delay = project(bank.geometry, sources.ra, sources.dec, sources.psi)
        cos_i, alpha = np.cos(sources.iota)[:, None], 2.0 * sources.phase[:, None]
        plus, cross = 0.5 * (1.0 + cos_i ** 2), cos_i
        weight_h = fplus * plus * np.cos(alpha) + fcross * cross * np.sin(alpha)    # of the face-on h+
        weight_k = -fplus * plus * np.sin(alpha) + fcross * cross * np.cos(alpha)   # of the face-on hx
        start = bank.merger_index - (sources.t_merger[:, None] + delay) * config.sample_rate
        whole = np.floor(start).astype(np.int64)
        offsets = whole[..., None] + np.arange(config.n_samples)
        out = np.empty((len(index), len(config.detectors), config.n_samples))
        for lo in range(0, len(index), SIGNAL_CHUNK):
            part = slice(lo, lo + SIGNAL_CHUNK)
            spectra = np.fft.rfft(bank.pairs[index[part]].astype(np.float64), axis=-1)   # (c, 2, F)
            mixed = weight_h[part, :, None] * spectra[:, None, 0] + weight_k[part, :, None] * spectra[:, None, 1]
            mixed *= np.exp(self._ramp * (start[part] - whole[part])[..., None])
            series = np.fft.irfft(mixed, n=bank.pairs.shape[2], axis=-1)                # (c, D, L)
            out[part] = np.take_along_axis(series, offsets[part], axis=-1)
        return scaled_to_snr(out, sources.snr, bank.psd, config.sample_rate, config.f_lower)

    def draw(self, rng: np.random.Generator, n: int, snr: tuple[float, float] | None = None) -> Split:
        """`n` whitened windows, half with an injection, in random order; deterministic for `rng`'s state.

        Args:
            rng: the one stream labels, sources, bank picks and noise are drawn from, in that order.
            n: windows, even.
            snr: the injections' network SNR range; default the config's.

        Raises:
            ValueError: `n` not an even integer >= 2, or an SNR range not 0 < low <= high.
        """
        if isinstance(n, bool) or not isinstance(n, (int, np.integer)) or n < 2 or n % 2:
            raise ValueError(f"n={n!r} is not allowed; allowed: an even integer >= 2 (half the windows hold a signal)")
        low, high = snr if snr is not None else (self.config.snr_min, self.config.snr_max)
        if not 0 < low <= high:
            raise ValueError(f"snr={snr!r} is not allowed; allowed: (low, high) with 0 < low <= high")
        config = replace(self.config, snr_min=float(low), snr_max=float(high))
        y = rng.permutation(np.repeat(np.array([0, 1], dtype=np.int32), n // 2))
        sources = sample_sources(rng, n // 2, config)  # its masses are not used: the bank's binary is
        index = rng.integers(len(self.bank), size=n // 2)
        signal_of = np.cumsum(y) - 1                   # which injection a signal window holds
        x = np.empty((n, len(config.detectors), config.n_samples), dtype=np.float32)
        step = 4 * NOISE_CHUNK                         # a multiple of NOISE_CHUNK: the noise stream is unchanged
        for lo in range(0, n, step):
            rows = np.arange(lo, min(lo + step, n))
            held = signal_of[rows][y[rows] == 1]
            signals = np.zeros((len(rows), *x.shape[1:]))
            signals[y[rows] == 1] = self.signals(_take(sources, held), index[held])
            x[rows] = whitened_windows(rng, signals, self.bank.psd, self.bank.noise_psd, config)
        per_example = np.full(n, np.nan, dtype=np.float32)
        snr_out, mass1, mass2 = per_example.copy(), per_example.copy(), per_example.copy()
        snr_out[y == 1], mass1[y == 1], mass2[y == 1] = sources.snr, self.bank.mass1[index], self.bank.mass2[index]
        return Split(x=x, y=y, snr=snr_out, mass1=mass1, mass2=mass2)


def _take(sources: Sources, rows: np.ndarray) -> Sources:
    return Sources(**{name: getattr(sources, name)[rows] for name in Sources.__dataclass_fields__})
