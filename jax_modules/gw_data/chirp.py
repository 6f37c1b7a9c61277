"""Compact-binary mass combinations and the Newtonian chirp time (how long an inspiral lasts)."""

from __future__ import annotations

import numpy as np

#: G * M_sun / c^3 [s]: one solar mass expressed as a time.
MTSUN_S = 4.925491025543576e-06


def chirp_mass(mass1: np.ndarray, mass2: np.ndarray) -> np.ndarray:
    """Chirp mass (m1 m2)^(3/5) / (m1 + m2)^(1/5), in the units of the masses."""
    mass1, mass2 = np.asarray(mass1, dtype=np.float64), np.asarray(mass2, dtype=np.float64)
    return (mass1 * mass2) ** 0.6 / (mass1 + mass2) ** 0.2


def symmetric_mass_ratio(mass1: np.ndarray, mass2: np.ndarray) -> np.ndarray:
    """eta = m1 m2 / (m1 + m2)^2, in (0, 1/4]."""
    mass1, mass2 = np.asarray(mass1, dtype=np.float64), np.asarray(mass2, dtype=np.float64)
    return mass1 * mass2 / (mass1 + mass2) ** 2


def chirp_time(mass1: float, mass2: float, f_lower: float) -> float:
    """Seconds from the moment the signal passes `f_lower` [Hz] to merger (leading order).

    tau = 5/256 (G Mc / c^3)^(-5/3) (pi f)^(-8/3); post-Newtonian terms change it by a few
    per cent for the masses used here, which callers cover with a margin.
    """
    mc_s = float(chirp_mass(mass1, mass2)) * MTSUN_S
    return 5.0 / 256.0 * mc_s ** (-5.0 / 3.0) * (np.pi * f_lower) ** (-8.0 / 3.0)
