"""The injections of an MLGWSC-1 data-set-1-like strain file: when, what, how far.

Follows the challenge's generator (Schäfer et al. 2023, MLGWSC-1; gwastro/ml-mock-data-challenge-1,
`generate_data.py` and `ds1.ini`):
- merger times every 24 s, each moved by a uniform jitter of +/- 3 s (pycbc_create_injections'
  time step and time window), none within `padding` s of either end of the data (the challenge's
  `--padding-start/--padding-end`, 20 s);
- component masses uniform in 10-50 solar masses, ordered so mass1 >= mass2; isotropic sky;
  uniform polarization and coalescence phase; inclination uniform in cos; no spins: drawn by this
  project's `sample_sources` (the simulated training set's conventions);
- chirp distance uniform in volume between 130 and 350 Mpc (`ds1.ini`: `uniform_radius`), and the
  luminosity distance d = d_c (M_c / M_ref)^(5/6), M_ref = 2^(-1/5) 1.4 solar masses (PyCBC's
  `distance_from_chirp_distance_mchirp`), so the loudness is spread the same for every chirp mass.
"""

from __future__ import annotations

from dataclasses import dataclass, fields

import numpy as np

from .chirp import chirp_mass
from .config import GWDataConfig
from .sources import sample_sources

__all__ = ["InjectionSet", "REFERENCE_CHIRP_MASS", "sample_injections"]

#: The chirp mass of a 1.4 + 1.4 solar-mass binary, which chirp distances refer to.
REFERENCE_CHIRP_MASS = 1.4 * 2.0 ** (-0.2)

TIME_STEP_S = 24.0
TIME_JITTER_S = 3.0
PADDING_S = 20.0
CHIRP_DISTANCE_MPC = (130.0, 350.0)


@dataclass(frozen=True, eq=False)
class InjectionSet:
    """(n,) float64 parameters of n injections, named as in MLGWSC-1 injection files."""

    tc: np.ndarray             # GPS merger time at the geocentre [s]
    mass1: np.ndarray          # [solar masses], mass1 >= mass2
    mass2: np.ndarray
    ra: np.ndarray             # [rad]
    dec: np.ndarray
    polarization: np.ndarray
    inclination: np.ndarray
    coa_phase: np.ndarray
    chirp_distance: np.ndarray  # [Mpc]
    distance: np.ndarray       # luminosity distance [Mpc]

    def __len__(self) -> int:
        return len(self.tc)

    def arrays(self) -> dict[str, np.ndarray]:
        """The parameters by name (the injection file's datasets)."""
        return {f.name: getattr(self, f.name) for f in fields(self)}

    def take(self, index: np.ndarray | slice) -> "InjectionSet":
        """The injections at `index`."""
        return InjectionSet(**{name: values[index] for name, values in self.arrays().items()})


def merger_times(rng: np.random.Generator, start: float, end: float, *, step: float = TIME_STEP_S,
                 jitter: float = TIME_JITTER_S, padding: float = PADDING_S) -> np.ndarray:
    """Times start + k step + U(-jitter, jitter), k = 1, 2, ..., kept where padding <= t - start and
    t <= end - padding; sorted (jitter < step / 2 keeps them in order)."""
    if not 0 <= jitter < step / 2:
        raise ValueError(f"jitter={jitter!r} is out of range; allowed: 0 <= jitter < step / 2 = {step / 2:g} s")
    grid = start + step * np.arange(1, max(int((end - start) // step) + 1, 1))
    times = grid + rng.uniform(-jitter, jitter, size=len(grid))
    return times[(times >= start + padding) & (times <= end - padding)]


def sample_injections(rng: np.random.Generator, start: float, end: float, *, mass_min: float = 10.0,
                      mass_max: float = 50.0, padding: float = PADDING_S) -> InjectionSet:
    """Injections for strain from GPS `start` to `end`, as MLGWSC-1 data set 1 draws them (see above).

    Raises:
        ValueError: end <= start, or a mass range GWDataConfig does not allow.
    """
    if not end > start:
        raise ValueError(f"end={end!r} is not after start={start!r}; allowed: end > start")
    tc = merger_times(rng, start, end, padding=padding)
    config = GWDataConfig(n_train=2, n_val=2, n_test=2, mass_min=mass_min, mass_max=mass_max)
    sources = sample_sources(rng, len(tc), config)
    low, high = CHIRP_DISTANCE_MPC
    chirp_distance = rng.uniform(low**3, high**3, size=len(tc)) ** (1.0 / 3.0)  # uniform in volume
    distance = chirp_distance * (chirp_mass(sources.mass1, sources.mass2) / REFERENCE_CHIRP_MASS) ** (5.0 / 6.0)
    return InjectionSet(tc=tc, mass1=sources.mass1, mass2=sources.mass2, ra=sources.ra, dec=sources.dec,
                        polarization=sources.psi, inclination=sources.iota, coa_phase=sources.phase,
                        chirp_distance=chirp_distance, distance=distance)
