"""Source parameters, mass combinations and detector response (bilby geometry)."""

from __future__ import annotations

import numpy as np
import pytest

from jax_modules.gw_data.chirp import chirp_mass, chirp_time, symmetric_mass_ratio
from jax_modules.gw_data.config import GWDataConfig
from jax_modules.gw_data.detectors import detector_response
from jax_modules.gw_data.sources import sample_sources

CONFIG = GWDataConfig(n_train=8, n_val=8, n_test=8, mass_min=12.0, mass_max=40.0, snr_min=6.0, snr_max=9.0)


def test_sources_cover_the_configured_ranges_isotropically():
    s = sample_sources(np.random.default_rng(0), 20000, CONFIG)
    assert np.all(s.mass1 >= s.mass2) and s.mass2.min() >= 12.0 and s.mass1.max() <= 40.0
    # each component uniform before ordering: the lighter one has mean min + (max - min) / 3
    assert abs(s.mass2.mean() - (12.0 + 28.0 / 3)) < 0.3
    assert s.snr.min() >= 6.0 and s.snr.max() <= 9.0
    assert np.all((s.t_merger >= 0.6) & (s.t_merger <= 0.9))
    for uniform in (np.sin(s.dec), np.cos(s.iota)):  # isotropic sky and orientation
        assert abs(uniform.mean()) < 0.02 and abs(uniform.var() - 1 / 3) < 0.01
    assert s.ra.min() >= 0 and s.ra.max() < 2 * np.pi and s.psi.max() < np.pi


def test_sources_are_deterministic_for_a_seed():
    a, b, c = (sample_sources(np.random.default_rng(seed), 5, CONFIG) for seed in (1, 1, 2))
    assert a.mass1.tobytes() == b.mass1.tobytes() and a.ra.tobytes() == b.ra.tobytes()
    assert not np.allclose(a.mass1, c.mass1)


def test_mass_combinations_and_chirp_time():
    assert chirp_mass(30.0, 30.0) == pytest.approx(30.0 * 2 ** (-0.2))
    assert symmetric_mass_ratio(30.0, 30.0) == 0.25 and symmetric_mass_ratio(40.0, 10.0) == pytest.approx(0.16)
    # a binary neutron star spends about 17 minutes above 10 Hz (leading order)
    assert chirp_time(1.4, 1.4, 10.0) == pytest.approx(1000.0, rel=0.02)
    assert chirp_time(10.0, 10.0, 40.0) == pytest.approx(chirp_time(10.0, 10.0, 20.0) * 2 ** (-8 / 3))


def test_detector_response_matches_the_h1_l1_geometry():
    rng = np.random.default_rng(0)
    n = 2000
    ra, dec, psi = rng.uniform(0, 2 * np.pi, n), np.arcsin(rng.uniform(-1, 1, n)), rng.uniform(0, np.pi, n)
    fplus, fcross, delay = detector_response(("H1", "L1"), ra, dec, psi, CONFIG.gps_time)
    assert fplus.shape == fcross.shape == delay.shape == (n, 2)
    assert np.all(fplus**2 + fcross**2 <= 1.0 + 1e-12)
    relative = np.abs(delay[:, 0] - delay[:, 1])
    assert relative.max() <= 10.02e-3 and relative.max() > 9.5e-3  # H1-L1 light travel time: 10.0 ms
    assert np.abs(delay).max() < 21.5e-3  # at most an Earth radius from the geocenter
    # polarization angle only rotates (F+, Fx): spin-2, so psi + pi/4 turns F+ into -+Fx
    turned_plus, turned_cross, _ = detector_response(("H1", "L1"), ra, dec, psi + np.pi / 4, CONFIG.gps_time)
    np.testing.assert_allclose(turned_plus**2 + turned_cross**2, fplus**2 + fcross**2, atol=1e-12)
    np.testing.assert_allclose(np.abs(turned_plus), np.abs(fcross), atol=1e-12)
