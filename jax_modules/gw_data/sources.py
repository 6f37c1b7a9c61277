"""Random compact-binary sources: masses, sky position, orientation, merger time and target SNR."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .config import GWDataConfig


@dataclass(frozen=True, eq=False)
class Sources:
    """(n,) float64 parameters of n binaries; angles in radians, times in seconds."""

    mass1: np.ndarray  # [M_sun], mass1 >= mass2
    mass2: np.ndarray
    ra: np.ndarray  # right ascension, uniform in [0, 2 pi)
    dec: np.ndarray  # declination, sin(dec) uniform: isotropic with ra
    psi: np.ndarray  # polarization angle, uniform in [0, pi)
    iota: np.ndarray  # inclination, cos(iota) uniform
    phase: np.ndarray  # coalescence phase, uniform in [0, 2 pi)
    t_merger: np.ndarray  # merger at the geocenter, seconds from the window start
    snr: np.ndarray  # optimal network SNR the injection is scaled to


def sample_sources(rng: np.random.Generator, n: int, config: GWDataConfig) -> Sources:
    """Draw `n` non-spinning binaries as MLGWSC-1 data set 1 does (masses uniform, then ordered)."""
    masses = rng.uniform(config.mass_min, config.mass_max, size=(n, 2))
    return Sources(
        mass1=masses.max(axis=1),
        mass2=masses.min(axis=1),
        ra=rng.uniform(0.0, 2.0 * np.pi, n),
        dec=np.arcsin(rng.uniform(-1.0, 1.0, n)),
        psi=rng.uniform(0.0, np.pi, n),
        iota=np.arccos(rng.uniform(-1.0, 1.0, n)),
        phase=rng.uniform(0.0, 2.0 * np.pi, n),
        t_merger=rng.uniform(config.merger_min, config.merger_max, n) * config.duration,
        snr=rng.uniform(config.snr_min, config.snr_max, n),
    )
