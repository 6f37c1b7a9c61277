"""Fresh training windows (`online`): the cached windows' recipe drawn anew, from a synthetic bank.

The re-projection against ripplegw's own injections is `test_online_matches_the_generator` (slow).
"""

from __future__ import annotations

import subprocess
import sys
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from _waveform_bank import CONFIG, chirp_pair, synthetic_bank
from jax_modules.gw_data.config import GWDataConfig
from jax_modules.gw_data.detectors import project
from jax_modules.gw_data.online import FADE, GUARD, MAX_GEOCENTRE_DELAY, FreshWindows, WaveformBank, bank_layout
from jax_modules.gw_data.snr import network_snr
from jax_modules.gw_data.sources import sample_sources
from jax_modules.gw_data.storage import InvalidDataError, waveform_bank_arrays, waveform_bank_from_arrays

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def fresh() -> FreshWindows:
    return FreshWindows(synthetic_bank(), CONFIG)


def test_injections_have_the_requested_network_snr(fresh):
    sources = sample_sources(np.random.default_rng(0), 40, replace(CONFIG, snr_min=4.0, snr_max=30.0))
    signals = fresh.signals(sources, np.arange(40) % len(fresh.bank))
    snr = network_snr(signals, fresh.bank.psd, CONFIG.sample_rate, CONFIG.f_lower)  # the cached data's definition
    np.testing.assert_allclose(snr, sources.snr, rtol=1e-9)


def test_injections_are_the_pair_projected_and_shifted_to_each_detectors_arrival(fresh):
    """Face-on, phase 0: h = F+ h+(t - t_arrival) + Fx hx(t - t_arrival), to the fraction of a sample."""
    sources = replace(sample_sources(np.random.default_rng(1), 30, CONFIG), iota=np.zeros(30), phase=np.zeros(30))
    index = np.arange(30) % len(fresh.bank)
    got = fresh.signals(sources, index)
    fplus, fcross, delay = project(fresh.bank.geometry, sources.ra, sources.dec, sources.psi)
    t = np.arange(CONFIG.n_samples) / CONFIG.sample_rate - (sources.t_merger[:, None] + delay)[..., None]
    pair = np.stack([chirp_pair(t[i], 60.0 + 20.0 * index[i]) for i in range(30)], axis=1)   # (2, n, D, T)
    expected = fplus[..., None] * pair[0] + fcross[..., None] * pair[1]
    scale = np.sum(got * expected, axis=(1, 2)) / np.sum(expected ** 2, axis=(1, 2))          # the SNR scaling
    error = np.linalg.norm(got - scale[:, None, None] * expected, axis=(1, 2)) / np.linalg.norm(got, axis=(1, 2))
    assert error.max() < 1e-5, error.max()   # rounding arrivals to whole samples would be off by ~0.3


def test_noise_windows_are_white_with_unit_variance_like_the_cached_ones(fresh):
    split = fresh.draw(np.random.default_rng(2), 512)
    noise = split.x[split.y == 0].astype(np.float64)
    assert abs(noise.std() - 1.0) < 0.02 and abs(noise.mean()) < 0.01
    power = np.mean(np.abs(np.fft.rfft(noise, axis=-1)) ** 2, axis=(0, 1))[1:-1]
    bands = power[: 15 * 64].reshape(15, 64).mean(axis=1) / power.mean()
    assert np.all(np.abs(bands - 1.0) < 0.1), bands        # flat: coloured with the PSD whitened with


def test_a_draw_is_balanced_shaped_and_labelled_like_a_cached_split(fresh):
    split = fresh.draw(np.random.default_rng(3), 300, snr=(6.0, 7.0))
    assert split.x.shape == (300, 2, CONFIG.n_samples) and split.x.dtype == np.float32
    assert split.y.sum() == 150
    signal = split.y == 1
    assert np.all((split.snr[signal] >= 6.0) & (split.snr[signal] <= 7.0)) and np.isnan(split.snr[~signal]).all()
    assert set(split.mass1[signal]) <= set(fresh.bank.mass1) and np.isnan(split.mass1[~signal]).all()
    # a loud injection shows in the whitened window
    loud = fresh.draw(np.random.default_rng(3), 64, snr=(200.0, 200.0))
    assert loud.x[loud.y == 1].std() > 2 * loud.x[loud.y == 0].std()


def test_draws_are_deterministic_for_a_seed_and_new_every_epoch(fresh):
    a, b = fresh.draw(np.random.default_rng(4), 64), fresh.draw(np.random.default_rng(4), 64)
    assert a.x.tobytes() == b.x.tobytes() and a.snr.tobytes() == b.snr.tobytes()
    rng = np.random.default_rng(4)
    first, second = fresh.draw(rng, 64), fresh.draw(rng, 64)
    assert first.x.tobytes() == a.x.tobytes()
    assert np.abs(first.x - second.x).mean() > 0.5 and not np.array_equal(first.y, second.y)


def test_bank_layout_keeps_every_possible_window_inside_the_stretch():
    for config in (CONFIG, GWDataConfig(n_train=2, n_val=2, n_test=2, duration=2.0, merger_min=0.05, merger_max=0.95),
                   GWDataConfig(n_train=2, n_val=2, n_test=2, sample_rate=4096, merger_min=0.9, merger_max=0.9)):
        length, merger_index = bank_layout(config)
        fs = config.sample_rate
        first = merger_index - (config.merger_max * config.duration + MAX_GEOCENTRE_DELAY) * fs
        last = merger_index - (config.merger_min * config.duration - MAX_GEOCENTRE_DELAY) * fs + config.n_samples
        assert first >= FADE + GUARD and last <= length - GUARD and length & (length - 1) == 0


def test_draw_and_bank_refuse_what_does_not_fit(fresh):
    rng = np.random.default_rng(0)
    with pytest.raises(ValueError, match=r"n=7 is not allowed; allowed: an even integer >= 2"):
        fresh.draw(rng, 7)
    with pytest.raises(ValueError, match=r"snr=\(8.0, 6.0\) is not allowed; allowed: \(low, high\) with 0 < low"):
        fresh.draw(rng, 8, snr=(8.0, 6.0))
    with pytest.raises(ValueError, match=r"bank has \(stretch, merger index, detectors, PSD bins\)"):
        FreshWindows(fresh.bank, replace(CONFIG, duration=2.0))
    bank = fresh.bank
    with pytest.raises(ValueError, match=r"pairs is float64 .*; allowed: float32 \(n >= 1, 2, L\)"):
        WaveformBank(bank.pairs.astype(np.float64), bank.mass1, bank.mass2, bank.merger_index, bank.geometry,
                     bank.psd, bank.noise_psd)


def test_bank_arrays_round_trip_and_are_checked_against_the_windows():
    bank = synthetic_bank(n=2)
    back = waveform_bank_from_arrays(waveform_bank_arrays(bank), CONFIG)
    assert back.pairs.tobytes() == bank.pairs.tobytes() and back.geometry.gmst == bank.geometry.gmst
    np.testing.assert_array_equal(back.geometry.tensors, bank.geometry.tensors)
    with pytest.raises(InvalidDataError, match=r"allowed for these windows: \(n, 2, 8192\)"):
        waveform_bank_from_arrays(waveform_bank_arrays(bank), replace(CONFIG, duration=2.0))
    with pytest.raises(InvalidDataError, match=r"waveform bank arrays lack \['gmst'\]"):
        waveform_bank_from_arrays({k: v for k, v in waveform_bank_arrays(bank).items() if k != "gmst"}, CONFIG)


CHECK = """
import json, sys
from dataclasses import replace
import numpy as np
from jax_modules.gw_data.config import GWDataConfig
from jax_modules.gw_data.online import FreshWindows
from jax_modules.gw_data.psd import design_psd
from jax_modules.gw_data.simulate import injections
from jax_modules.gw_data.sources import sample_sources
from jax_modules.gw_data.waveform_bank import make_waveform_bank
from jax_modules.gw_data.waveforms import WindowProjector
from jax_modules.gw_data.whitening import whiten
config = GWDataConfig(n_train=2, n_val=2, n_test=2, snr_min=5.0, snr_max=15.0, seed=3)
bank = make_waveform_bank(config, 12)
sources = sample_sources(np.random.default_rng(1), 12, config)
sources = replace(sources, mass1=bank.mass1.astype(float), mass2=bank.mass2.astype(float))
psd = design_psd(config.sample_rate, config.n_samples, config.f_lower)
white = lambda s: whiten(s, psd, config.sample_rate, config.whiten_taper)
expected = white(injections(sources, config, psd, WindowProjector(config, batch_size=12)))
got = white(FreshWindows(bank, config).signals(sources, np.arange(12)))
print(json.dumps(float(np.max(np.linalg.norm(got - expected, axis=(1, 2)) / np.linalg.norm(expected, axis=(1, 2))))))
"""


@pytest.mark.slow
def test_online_matches_the_generator():
    """Fresh injections equal the cached data set's for the same binaries and draws (ripplegw, in a
    fresh interpreter: it switches JAX to float64)."""
    out = subprocess.run([sys.executable, "-c", CHECK], cwd=REPO, capture_output=True, text=True, check=True,
                         env={"PYTHONPATH": str(REPO), "JAX_PLATFORMS": "cpu", "PATH": "/usr/bin:/bin"})
    assert float(out.stdout.strip().splitlines()[-1]) < 1e-4  # float32 storage of the bank: ~1e-6
