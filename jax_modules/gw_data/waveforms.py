"""IMRPhenomD signals (ripplegw) as each detector sees them, cut to the analysis window.

Importing this module imports ripplegw, which switches JAX to float64 for the whole process:
only the generator process (`python -m jax_modules.gw_data.generate`) may import it.
"""

from __future__ import annotations

from collections.abc import Callable

import jax
import jax.numpy as jnp
import numpy as np
from ripplegw.waveforms.cbc.IMRPhenomD.IMRPhenomD import gen_IMRPhenomD_hphc

from .chirp import chirp_mass, symmetric_mass_ratio
from .config import GWDataConfig
from .sources import Sources

# ripplegw's import already did this; waveform phases need float64, so say it here too.
jax.config.update("jax_enable_x64", True)

#: Luminosity distance waveforms are generated at [Mpc]; injections are rescaled to a target SNR.
REFERENCE_DISTANCE_MPC = 100.0

#: Width of the waveform's turn-on above f_lower, as a fraction of f_lower.
TAPER_FRACTION = 0.1


def imrphenomd_parameters(sources: Sources) -> np.ndarray:
    """(n, 8) ripplegw theta: [Mchirp, eta, chi1, chi2, D_Mpc, tc, phic, iota], no spin, tc = 0."""
    n = sources.mass1.size
    return np.stack(
        [
            chirp_mass(sources.mass1, sources.mass2),
            symmetric_mass_ratio(sources.mass1, sources.mass2),
            np.zeros(n),
            np.zeros(n),
            np.full(n, REFERENCE_DISTANCE_MPC),
            np.zeros(n),
            sources.phase,
            sources.iota,
        ],
        axis=1,
    )


class WindowProjector:
    """Strain h = F+ h+ + Fx hx in each detector, in the time domain, over the analysis window.

    Waveforms are generated in the frequency domain from `f_lower` on a segment of
    `config.segment_samples` (long enough that the inspiral does not wrap around), shifted so
    the merger arrives at the requested time, inverse-FFT'd, and the window is the segment's
    last `n_samples`. One jitted, vmapped float64 function handles `batch_size` sources at a
    time; the last batch is padded, so nothing recompiles.

    Args:
        config: sample rate, window, `f_lower` and segment length.
        batch_size: sources per compiled call.
    """

    def __init__(self, config: GWDataConfig, batch_size: int) -> None:
        if batch_size < 1:
            raise ValueError(f"batch_size={batch_size!r} is out of range; allowed: >= 1")
        self.batch_size = batch_size
        self._config = config
        n_seg = config.segment_samples
        self._window_start = (n_seg - config.n_samples) / config.sample_rate
        self._k_low = int(np.ceil(config.f_lower * n_seg / config.sample_rate))
        # ripplegw infers its frequency cutoff from f[1] - f[0]: the grid must be uniform.
        self._freqs = jnp.arange(self._k_low, n_seg // 2 + 1) * (config.sample_rate / n_seg)
        # A cosine turn-on over the first TAPER_FRACTION * f_lower Hz instead of a step at f_lower:
        # a step rings in time (a ~f_lower Hz tail through the whole segment, merger included).
        ramp = jnp.clip((self._freqs - config.f_lower) / (TAPER_FRACTION * config.f_lower), 0.0, 1.0)
        self._turn_on = 0.5 - 0.5 * jnp.cos(jnp.pi * ramp)
        self._project = jax.jit(self._window_strain)

    def __call__(
        self,
        theta: np.ndarray,
        fplus: np.ndarray,
        fcross: np.ndarray,
        t_arrival: np.ndarray,
        on_batch: Callable[[int], object] | None = None,
    ) -> np.ndarray:
        """(n, n_detectors, n_samples) float64 strain at `REFERENCE_DISTANCE_MPC`.

        Args:
            theta: (n, 8) from `imrphenomd_parameters`.
            fplus, fcross: (n, n_detectors) antenna patterns.
            t_arrival: (n, n_detectors) merger time in each detector, seconds from window start.
            on_batch: called with the number of sources after each batch (progress bars).
        """
        n = len(theta)
        out = np.empty((n, fplus.shape[1], self._config.n_samples))
        for start in range(0, n, self.batch_size):
            stop = min(start + self.batch_size, n)
            batch = (theta, fplus, fcross, t_arrival + self._window_start)
            args = [_pad(a[start:stop], self.batch_size) for a in batch]
            out[start:stop] = np.asarray(self._project(*args))[: stop - start]
            if on_batch is not None:
                on_batch(stop - start)
        return out

    def _window_strain(self, theta: jax.Array, fplus: jax.Array, fcross: jax.Array, t_segment: jax.Array) -> jax.Array:
        """One batch: (B, 8), (B, D), (B, D), merger times from the segment start (B, D) -> (B, D, T)."""
        config, freqs = self._config, self._freqs
        hp, hc = jax.vmap(lambda th: gen_IMRPhenomD_hphc(freqs, th, config.f_lower))(theta)  # (B, K)
        h = fplus[..., None] * hp[:, None, :] + fcross[..., None] * hc[:, None, :]  # (B, D, K)
        h = h * self._turn_on * jnp.exp(-2j * jnp.pi * freqs * t_segment[..., None])  # merger at t_segment
        h = jnp.pad(h, ((0, 0), (0, 0), (self._k_low, 0)))  # nothing below f_lower
        n_seg = config.segment_samples
        series = jnp.fft.irfft(h, n=n_seg, axis=-1) * config.sample_rate  # continuous-FT normalisation
        return series[..., n_seg - config.n_samples :]


def face_on_pairs(config: GWDataConfig, mass1: np.ndarray, mass2: np.ndarray, merger: float,
                   batch_size: int = 64) -> np.ndarray:
    """(n, 2, n_samples) float64 strain [h+, hx] of face-on, non-spinning binaries at
    `REFERENCE_DISTANCE_MPC` with coalescence phase 0, merging `merger` seconds after the window start.

    Any inclination and phase of the (2, 2) mode is a combination of this quadrature pair, so it
    serves both the matched filter's templates and the re-projected injections of fresh training data.
    """
    mass1, mass2 = np.asarray(mass1, dtype=np.float64), np.asarray(mass2, dtype=np.float64)
    n = len(mass1)
    zeros = np.zeros(n)
    theta = np.stack([chirp_mass(mass1, mass2), symmetric_mass_ratio(mass1, mass2), zeros, zeros,
                      np.full(n, REFERENCE_DISTANCE_MPC), zeros, zeros, zeros], axis=1)
    # Two "detectors" that see only h+ and only hx: the quadrature pair of each binary.
    fplus, fcross = np.tile([1.0, 0.0], (n, 1)), np.tile([0.0, 1.0], (n, 1))
    return WindowProjector(config, batch_size=min(batch_size, n))(theta, fplus, fcross, np.full((n, 2), merger))


def _pad(array: np.ndarray, size: int) -> np.ndarray:
    """Repeat the first row up to `size` rows (valid parameters, so padding stays finite)."""
    array = np.asarray(array, dtype=np.float64)
    return np.concatenate([array, np.repeat(array[:1], size - len(array), axis=0)])
