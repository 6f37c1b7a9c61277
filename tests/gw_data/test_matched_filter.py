"""The matched filter on windows whose answer is known: a template planted without noise is found at
exactly its SNR, whatever its phase, arrival time and inter-detector delay within the light-travel
time; in white noise it stands clear of noise-only windows; and the bank's grid and checks."""

from __future__ import annotations

import numpy as np
import pytest

from jax_modules.gw_data.matched_filter import TemplateBank, mass_grid, network_statistic

RATE, N, MERGER = 2048, 2048, 1536


def _chirp_pair() -> np.ndarray:
    """(2, N) a chirp rising from 30 to 250 Hz into a merger at MERGER, then a 10 ms ring-down, in
    quadrature (cos, sin of one phase)."""
    t = (np.arange(N) - MERGER) / RATE
    inspiral = t <= 0
    tau = np.clip(-t, 1e-3, None)
    freq = np.where(inspiral, np.clip(30 * (tau / 0.5) ** (-3 / 8), 30, 250), 250)
    phase = 2 * np.pi * np.cumsum(freq) / RATE
    amplitude = np.where(inspiral, (freq / 30) ** (2 / 3) * (tau < 0.5), np.exp(-t / 0.01))
    return np.stack([amplitude * np.cos(phase), amplitude * np.sin(phase)])


def _bank() -> TemplateBank:
    pair = _chirp_pair()
    return TemplateBank(pair[None].astype(np.float32), np.array([30.0]), np.array([30.0]), RATE, MERGER)


def _planted(snr: tuple[float, float], *, phase: float = 0.0, shift_s: float = 0.0, delay_s: float = 0.0
             ) -> np.ndarray:
    """(2, N) noise-free detector data: the template at `phase`, merger shifted by `shift_s` in the
    first detector and `delay_s` more in the second, scaled to each detector's optimal SNR."""
    hp, hx = _chirp_pair()
    signal = np.cos(phase) * hp + np.sin(phase) * hx
    signal /= np.sqrt(np.sum(signal ** 2))
    out = []
    for rho, shift in zip(snr, (shift_s, shift_s + delay_s)):
        out.append(rho * np.roll(signal, round(shift * RATE)))
    return np.stack(out)


ARRIVAL = (0.6, 0.9)


@pytest.mark.parametrize("phase", [0.0, 0.7, 2.5])
@pytest.mark.parametrize("shift_s, delay_s", [(0.0, 0.0), (-0.1, 0.008), (0.1, -0.01)])
def test_a_planted_template_is_found_at_its_network_snr(phase: float, shift_s: float, delay_s: float) -> None:
    x = _planted((6.0, 8.0), phase=phase, shift_s=shift_s, delay_s=delay_s)[None]
    assert network_statistic(x, _bank(), arrival=ARRIVAL)[0] == pytest.approx(10.0, rel=0.02)


def test_detectors_further_apart_than_light_are_not_combined() -> None:
    near = network_statistic(_planted((6.0, 8.0), delay_s=0.009)[None], _bank(), arrival=ARRIVAL)[0]
    far = network_statistic(_planted((6.0, 8.0), delay_s=0.05)[None], _bank(), arrival=ARRIVAL)[0]
    assert near == pytest.approx(10.0, rel=0.02)
    assert far < 8.5  # the louder detector alone (plus what the other gives at a wrong time)


def test_a_merger_outside_the_searched_range_is_not_found() -> None:
    x = _planted((6.0, 8.0), shift_s=-0.5)[None]  # merger at 0.25 s
    assert network_statistic(x, _bank(), arrival=ARRIVAL)[0] < 5.0


def test_in_white_noise_signals_stand_clear_of_noise() -> None:
    rng = np.random.default_rng(0)
    noise = rng.normal(size=(40, 2, N))
    signals = noise[:20] + np.stack([_planted((8.0, 9.0), phase=p) for p in rng.uniform(0, 6, 20)])
    stats = network_statistic(np.concatenate([noise[20:], signals]), _bank(), arrival=ARRIVAL, chunk=7)
    background, found = stats[:20], stats[20:]
    assert found.min() > background.max()
    assert np.mean(found) == pytest.approx(np.hypot(8.0, 9.0), rel=0.1)  # noise adds about one unit in quadrature
    assert 2.0 < np.median(background) < 6.0  # the loudest of ~600 times x 4 degrees of freedom


def test_one_detector_is_its_own_snr() -> None:
    x = _planted((7.0, 0.0))[:1][None]
    assert network_statistic(x, _bank(), arrival=ARRIVAL)[0] == pytest.approx(7.0, rel=0.02)


def test_mass_grid_is_the_upper_triangle_with_m1_at_least_m2() -> None:
    m1, m2 = mass_grid(7.0, 50.0, 4)
    assert len(m1) == 10 and np.all(m1 >= m2) and m1.max() == pytest.approx(50.0) and m2.min() == pytest.approx(7.0)
    with pytest.raises(ValueError, match="allowed: 0 < mass_min <= mass_max"):
        mass_grid(50.0, 7.0, 4)


def test_bad_shapes_and_ranges_are_refused() -> None:
    with pytest.raises(ValueError, match=r"templates has shape \(3, 2048\)"):
        TemplateBank(np.zeros((3, N), np.float32), np.ones(3), np.ones(3), RATE, 0)
    with pytest.raises(ValueError, match="merger_index=2048 is outside"):
        TemplateBank(np.zeros((1, 2, N), np.float32), np.ones(1), np.ones(1), RATE, N)
    with pytest.raises(ValueError, match="arrival=.* is not allowed"):
        network_statistic(np.zeros((1, 2, N)), _bank(), arrival=(0.9, 0.6))
    with pytest.raises(ValueError, match="allowed: \\(n_windows, 1 or 2 detectors"):
        network_statistic(np.zeros((1, 3, N)), _bank(), arrival=ARRIVAL)


def test_bank_arrays_round_trip_and_are_checked() -> None:
    from jax_modules.gw_data import GWDataConfig
    from jax_modules.gw_data.storage import InvalidDataError, bank_arrays, bank_from_arrays

    config = GWDataConfig(n_train=2, n_val=2, n_test=2)
    bank = TemplateBank(np.zeros((3, 2, config.n_samples), np.float32), np.ones(3), np.ones(3), RATE, 7)
    again = bank_from_arrays(bank_arrays(bank), config)
    assert again.merger_index == 7 and again.templates.shape == (3, 2, config.n_samples)
    with pytest.raises(InvalidDataError, match="lack \\['merger_index'\\]"):
        bank_from_arrays({k: v for k, v in bank_arrays(bank).items() if k != "merger_index"}, config)
    with pytest.raises(InvalidDataError, match="allowed: float32 \\(n, 2, 2048\\)"):
        bank_from_arrays({**bank_arrays(bank), "templates": np.zeros((3, 2, 100), np.float32)}, config)


@pytest.mark.slow
def test_the_imrphenomd_bank_finds_the_data_sets_own_injections_at_their_snr() -> None:
    # The bank is made in a generator process from the data's own waveform library; on the
    # noise-free whitened injections the statistic is about their optimal SNR, less the bank's mismatch.
    from jax_modules.gw_data import GWDataConfig, generate_dataset
    from jax_modules.gw_data.subprocess_generate import generate_bank

    config = GWDataConfig(n_train=2, n_val=2, n_test=16, snr_min=8.0, snr_max=12.0, keep_clean=True, seed=3)
    data, bank = generate_dataset(config, progress=False), generate_bank(config, 6)
    assert len(bank) == 21 and bank.merger_index == round(0.75 * config.n_samples)
    signal = data.test.y == 1
    stat = network_statistic(data.test.clean[signal], bank, arrival=(0.57, 0.93))
    ratio = stat / data.test.snr[signal]
    # Up to ~12 % is lost between the 6 x 6 grid's masses; the windows' taper adds up to a few per cent.
    assert np.all(ratio > 0.85) and np.all(ratio < 1.05) and np.median(ratio) > 0.93, ratio
