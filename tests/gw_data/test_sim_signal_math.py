"""Coloured noise, optimal SNR and matched filtering, against closed forms and each other."""

from __future__ import annotations

import numpy as np
import pytest

from jax_modules.gw_data.noise import colored_noise
from jax_modules.gw_data.psd import design_psd, welch_psd
from jax_modules.gw_data.snr import matched_filter_snr, network_snr, optimal_snr
from jax_modules.gw_data.whitening import whiten

FS, N = 2048, 2048


def test_whitened_colored_noise_is_white_with_unit_variance():
    psd = design_psd(FS, 2 * N)
    noise = colored_noise(np.random.default_rng(0), psd, FS, (64, 2))[..., :N]
    white = whiten(noise, design_psd(FS, N), FS)
    assert abs(white.std() - 1.0) < 0.02
    power = np.mean(np.abs(np.fft.rfft(white, axis=-1)) ** 2, axis=(0, 1))[1:-1]
    bands = power[: 15 * 64].reshape(15, 64).mean(axis=1) / power.mean()
    assert np.all(np.abs(bands - 1.0) < 0.1), bands


def test_colored_noise_has_the_requested_psd():
    psd = design_psd(FS, 64 * N)
    strain = colored_noise(np.random.default_rng(1), psd, FS, ())
    estimate, expected = welch_psd(strain, FS, N), design_psd(FS, N)
    ratio = (estimate / expected)[32:928].reshape(28, 32).mean(axis=1)  # 32 Hz bands, 32 Hz to 928 Hz
    assert np.all(np.abs(ratio - 1.0) < 0.1), ratio


def test_colored_noise_is_deterministic_for_a_seed():
    psd = design_psd(FS, N)
    a, b, c = (colored_noise(np.random.default_rng(s), psd, FS, (2,)) for s in (5, 5, 6))
    assert a.tobytes() == b.tobytes() and np.abs(a - c).max() > 0.5 * np.abs(a).max()


def test_colored_noise_rejects_a_bad_psd():
    with pytest.raises(ValueError, match="psd has shape .*positive finite"):
        colored_noise(np.random.default_rng(0), np.array([1.0, 0.0, 1.0]), FS, (1,))


def test_optimal_snr_of_a_sinusoid_matches_the_closed_form():
    psd = 1e-46 * (1.0 + (50.0 / np.maximum(np.fft.rfftfreq(N, 1.0 / FS), 1.0)) ** 4)
    t = np.arange(N) / FS
    amplitude, f0 = 1e-22, 100.0  # on the 1 Hz grid
    snr = optimal_snr(amplitude * np.sin(2 * np.pi * f0 * t), psd, FS, f_lower=20.0)
    assert snr == pytest.approx(amplitude * np.sqrt((N / FS) / psd[int(f0)]), rel=1e-9)
    below = optimal_snr(amplitude * np.sin(2 * np.pi * 15.0 * t), psd, FS, f_lower=20.0)
    assert below < 1e-9 * snr


def test_network_snr_adds_detectors_in_quadrature():
    psd = np.full(N // 2 + 1, 1e-46)
    strain = np.random.default_rng(2).standard_normal((3, 2, N)) * 1e-23
    single = optimal_snr(strain, psd, FS, 20.0)
    np.testing.assert_allclose(network_snr(strain, psd, FS, 20.0), np.sqrt((single**2).sum(axis=1)))


def test_optimal_snr_rejects_a_psd_on_another_grid():
    with pytest.raises(ValueError, match=r"psd has shape \(10,\); allowed: \(1025,\)"):
        optimal_snr(np.zeros(N), np.ones(10), FS, 20.0)


def test_matched_filter_snr_has_unit_variance_in_noise_and_finds_the_template():
    rng = np.random.default_rng(3)
    template = rng.standard_normal((2, 256))
    template *= 10.0 / np.sqrt(np.sum(template**2))  # optimal SNR 10
    noise = rng.standard_normal((4000, 2, 256))
    in_noise = matched_filter_snr(noise, template)
    assert abs(in_noise.mean()) < 0.1 and abs(in_noise.std() - 1.0) < 0.05
    with_signal = matched_filter_snr(noise + template, template)
    assert abs(with_signal.mean() - 10.0) < 0.1
    with pytest.raises(ValueError, match="equal last two axes"):
        matched_filter_snr(noise, template[:1])
