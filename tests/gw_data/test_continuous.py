"""Continuous strain, the pieces a search over hours is made of: endless noise with the design PSD,
the challenge's injection schedule and distances, whitening a long stretch, the matched filter at
every sample, and reading a file block by block (bounded, complete, gaps and short segments reported)."""

from __future__ import annotations

from pathlib import Path

import h5py
import numpy as np
import pytest
from scipy.signal import welch

from jax_modules.gw_data.chirp import chirp_mass
from jax_modules.gw_data.injection_set import REFERENCE_CHIRP_MASS, merger_times, sample_injections
from jax_modules.gw_data.matched_filter import TemplateBank, continuous_statistic
from jax_modules.gw_data.mlgwsc_format import MLGWSCFormatError, open_hdf5
from jax_modules.gw_data.noise_stream import NoiseStream, fir_from_psd
from jax_modules.gw_data.psd import design_psd
from jax_modules.gw_data.strain_blocks import iter_blocks, plan_strain
from jax_modules.gw_data.stretch_whitening import whiten_stretch

RATE = 2048
GPS = 1238166018.0


def _write(path: Path, segments: dict[float, int], rate: int = RATE, lengths: tuple[int, int] | None = None) -> Path:
    """Strain file of white noise: GPS start -> seconds; `lengths` overrides (H1, L1) samples of the first."""
    rng = np.random.default_rng(0)
    with h5py.File(path, "w") as f:
        for d, det in enumerate(("H1", "L1")):
            group = f.create_group(det)
            for i, (start, seconds) in enumerate(segments.items()):
                n = lengths[d] if lengths and i == 0 else seconds * rate
                ds = group.create_dataset(str(int(start)), data=rng.standard_normal(n))
                ds.attrs["start_time"], ds.attrs["delta_t"] = start, 1.0 / rate
    return path


def test_noise_stream_is_the_same_series_however_it_is_chunked() -> None:
    psd = design_psd(RATE, 4 * RATE)
    one = NoiseStream(psd, RATE, np.random.default_rng(3)).next(10 * RATE)
    stream = NoiseStream(psd, RATE, np.random.default_rng(3))
    parts = np.concatenate([stream.next(n) for n in (RATE, 3 * RATE + 17, 6 * RATE - 17)])
    np.testing.assert_allclose(parts, one, rtol=1e-9, atol=1e-12 * np.abs(one).max())


def test_noise_stream_has_the_design_psd() -> None:
    psd = design_psd(RATE, 4 * RATE)
    noise = NoiseStream(psd, RATE, np.random.default_rng(1)).next(128 * RATE)
    freqs, measured = welch(noise, fs=RATE, nperseg=4 * RATE)
    band = (freqs >= 20) & (freqs <= 800)
    ratio = measured[band] / psd[band]
    assert abs(np.median(ratio) - 1) < 0.03  # 31 Welch segments: a few per cent per bin
    assert np.all((ratio > 0.4) & (ratio < 2.5))


def test_fir_refuses_a_psd_that_is_not_positive() -> None:
    with pytest.raises(ValueError, match="positive finite"):
        fir_from_psd(np.array([1.0, 0.0, 1.0]), RATE)


def test_injections_come_every_24_s_give_or_take_3_and_keep_off_the_ends() -> None:
    times = merger_times(np.random.default_rng(0), GPS, GPS + 3600)
    gaps = np.diff(times)
    assert np.all((gaps >= 18) & (gaps <= 30)) and abs(gaps.mean() - 24) < 0.5
    offsets = (times - GPS) - 24 * np.round((times - GPS) / 24)
    assert np.all(np.abs(offsets) <= 3) and offsets.std() > 1.5  # uniform on +/- 3: std 1.73
    assert times.min() >= GPS + 20 and times.max() <= GPS + 3600 - 20
    assert len(times) in (148, 149)


def test_distances_follow_the_chirp_distance_drawn_uniform_in_volume() -> None:
    inj = sample_injections(np.random.default_rng(0), GPS, GPS + 86400)
    assert np.all(inj.mass1 >= inj.mass2) and inj.mass2.min() >= 10 and inj.mass1.max() <= 50
    expected = inj.chirp_distance * (chirp_mass(inj.mass1, inj.mass2) / REFERENCE_CHIRP_MASS) ** (5 / 6)
    np.testing.assert_allclose(inj.distance, expected)
    # Uniform in volume between 130 and 350 Mpc: the cube of the chirp distance is uniform.
    cube = (inj.chirp_distance ** 3 - 130 ** 3) / (350 ** 3 - 130 ** 3)
    assert cube.min() >= 0 and cube.max() <= 1 and abs(cube.mean() - 0.5) < 0.03


def test_a_whitened_stretch_of_coloured_noise_has_unit_variance() -> None:
    psd = design_psd(RATE, RATE)
    noise = np.stack([NoiseStream(design_psd(RATE, 4 * RATE), RATE, np.random.default_rng(s)).next(64 * RATE)
                      for s in (0, 1)])
    white = whiten_stretch(noise, np.stack([psd, psd]), RATE, taper=2 * RATE)
    core = white[:, 4 * RATE:-4 * RATE]
    np.testing.assert_allclose(core.std(axis=1), 1.0, atol=0.03)
    with pytest.raises(ValueError, match="taper"):
        whiten_stretch(noise, np.stack([psd, psd]), RATE, taper=40 * RATE)


def _pair(n: int = 512, merger: int = 384) -> np.ndarray:
    t = (np.arange(n) - merger) / RATE
    envelope = np.exp(-(t / 0.05) ** 2)
    return np.stack([envelope * np.cos(2 * np.pi * 120 * t), envelope * np.sin(2 * np.pi * 120 * t)])


def test_the_continuous_matched_filter_equals_a_direct_correlation() -> None:
    bank = TemplateBank(np.stack([_pair(), _pair() * np.array([[1.0], [-1.0]])]).astype(np.float32),
                        np.ones(2), np.ones(2), float(RATE), 384)
    x = np.random.default_rng(2).standard_normal((2, 3000))
    stat = continuous_statistic(x, bank)
    reach = round(0.012 * RATE)
    for k in (100, 1234, 2000):
        best = 0.0
        for h in bank.templates.astype(np.float64):
            sigma = np.sqrt((h ** 2).sum(axis=1))
            rho2 = lambda d, j: sum((x[d, j:j + h.shape[1]] @ h[q] / sigma[q]) ** 2 for q in range(2))  # noqa: E731
            best = max(best, rho2(0, k) + max(rho2(1, j) for j in range(k - reach, k + reach + 1)))
        assert stat[k] == pytest.approx(np.sqrt(best), rel=1e-9)


def test_a_planted_template_peaks_at_its_merger_sample_with_its_snr() -> None:
    pair = _pair()
    bank = TemplateBank(pair[None].astype(np.float32), np.ones(1), np.ones(1), float(RATE), 384)
    signal = (np.cos(0.4) * pair[0] + np.sin(0.4) * pair[1]) / np.sqrt((pair[0] ** 2).sum())
    x = np.zeros((2, 4096))
    x[0, 1000:1512] += 6.0 * signal
    x[1, 1010:1522] += 8.0 * signal  # 10 samples (5 ms) later in the second detector
    stat = continuous_statistic(x, bank)
    assert int(np.argmax(stat)) + 384 == 1000 + 384
    assert stat.max() == pytest.approx(10.0, rel=1e-3)


def test_blocks_cover_every_sample_once_and_never_read_more_than_a_block_and_its_context(tmp_path) -> None:
    path = _write(tmp_path / "s.hdf", {GPS: 50})
    block, before, after = 16 * RATE, 3 * RATE, 2 * RATE
    with open_hdf5(path) as f, h5py.File(path, "r") as raw:
        (segment,) = plan_strain(f, path, sample_rate=RATE, min_seconds=16).searched
        blocks = list(iter_blocks(f, path, segment, block=block, before=before, after=after))
        h1 = raw["H1"][str(int(GPS))][:]
    cores = [b.core for b in blocks]
    assert cores == [(0, block), (block, 2 * block), (2 * block, 3 * block), (3 * block, 50 * RATE)]
    for b in blocks:
        assert b.strain.shape[1] <= block + before + after
        assert b.psd_span[1] - b.psd_span[0] == block  # the short last block estimates over the last 16 s
        np.testing.assert_array_equal(b.strain[0], h1[b.first:b.first + b.strain.shape[1]])
        assert b.first <= max(0, b.core[0] - before) and b.first + b.strain.shape[1] >= min(50 * RATE, b.core[1] + after)


def test_gaps_are_reported_and_short_segments_skipped(tmp_path) -> None:
    path = _write(tmp_path / "s.hdf", {GPS: 20, GPS + 30: 8, GPS + 40: 20})
    with open_hdf5(path) as f:
        plan = plan_strain(f, path, sample_rate=RATE, min_seconds=16)
    assert [s.start_time for s in plan.searched] == [GPS, GPS + 40]
    assert [s.start_time for s in plan.skipped] == [GPS + 30]
    assert plan.gaps == ((GPS + 20, GPS + 30), (GPS + 38, GPS + 40)) and plan.gap_seconds == 12


def test_a_file_at_another_rate_is_refused_naming_both_rates(tmp_path) -> None:
    path = _write(tmp_path / "s.hdf", {GPS: 20}, rate=4096)
    with open_hdf5(path) as f, pytest.raises(MLGWSCFormatError, match=r"sampled at 4096 Hz.*expected 2048 Hz"):
        plan_strain(f, path, sample_rate=RATE, min_seconds=16)


def test_detectors_of_different_lengths_are_refused(tmp_path) -> None:
    path = _write(tmp_path / "s.hdf", {GPS: 20}, lengths=(20 * RATE, 20 * RATE - 5))
    with open_hdf5(path) as f, pytest.raises(MLGWSCFormatError, match="n_samples 40960 in H1 but 40955 in L1"):
        plan_strain(f, path, sample_rate=RATE, min_seconds=16)
