"""load_mlgwsc on small MLGWSC-1-format files written here: windows, labels, whitening, bad files."""

from __future__ import annotations

import tracemalloc
from pathlib import Path
from typing import Callable

import h5py
import numpy as np
import pytest

from jax_modules.gw_data.mlgwsc import DETECTORS, MLGWSCFormatError, load_mlgwsc
from jax_modules.gw_data.mlgwsc_check import check_injections, check_strain

GPS = 1238166018  # a GPS second in O3a; the files name segments by their integer start time
RATE = 2048
SCALE = 1e-21  # strain-like magnitudes, so float32 output and PSD units are exercised
SEGMENTS = {GPS + 64: 8, GPS: 16}  # start -> duration [s], written out of GPS order on purpose
# Injections: three inside the data, away from window edges (the whitening taper), one in the gap.
TC = np.array([GPS + 9.25, GPS + 3.5, GPS + 64 + 2.5, GPS + 40.0])
MASS1 = np.array([31.0, 12.0, 45.0, 20.0])
MASS2 = np.array([25.0, 8.0, 30.0, 15.0])


def _colored_noise(rng: np.random.Generator, n: int) -> np.ndarray:
    """Moving-average (low-pass) Gaussian noise: PSD falls 360x to Nyquist, lag-1 correlation 0.5."""
    white = rng.standard_normal(n + 1)
    return SCALE * (white[1:] + 0.9 * white[:-1])


def _sine_gaussian(times: np.ndarray, tc: float, f0: float = 100.0, q: float = 8.0) -> np.ndarray:
    tau = q / (2 * np.pi * f0)
    return 30 * SCALE * np.exp(-(((times - tc) / tau) ** 2)) * np.sin(2 * np.pi * f0 * (times - tc))


def _write_strain(path: Path, bursts: np.ndarray = TC, seed: int = 0, **storage: object) -> dict[int, np.ndarray]:
    """An MLGWSC-1 strain file of `SEGMENTS`, a sine-Gaussian at each burst time; returns the (2, T) data.
    `storage` goes to `create_dataset` (e.g. chunks and compression)."""
    rng = np.random.default_rng(seed)
    data = {}
    with h5py.File(path, "w") as f:
        for start, duration in SEGMENTS.items():
            times = start + np.arange(duration * RATE) / RATE
            signal = sum(_sine_gaussian(times, tc) for tc in bursts)
            data[start] = np.stack([_colored_noise(rng, times.size) + signal for _ in DETECTORS])
            for det, series in zip(DETECTORS, data[start]):
                dataset = f.create_dataset(f"{det}/{start}", data=series, **storage)
                dataset.attrs["start_time"] = float(start)
                dataset.attrs["delta_t"] = 1.0 / RATE
    return data


def _write_injections(path: Path) -> None:
    with h5py.File(path, "w") as f:
        for key, values in {"tc": TC, "mass1": MASS1, "mass2": MASS2, "distance": np.full(TC.size, 400.0)}.items():
            f.create_dataset(key, data=values)
        f.attrs["approximant"] = "IMRPhenomXPHM"


@pytest.fixture
def files(tmp_path: Path) -> tuple[Path, Path, dict[int, np.ndarray]]:
    strain, injections = tmp_path / "foreground.hdf", tmp_path / "injections.hdf"
    data = _write_strain(strain)
    _write_injections(injections)
    return strain, injections, data


def _expected_starts(stride: float, window: float = 1.0) -> np.ndarray:
    return np.concatenate(
        [start + stride * np.arange(int((SEGMENTS[start] - window) / stride) + 1) for start in sorted(SEGMENTS)]
    )


def _expected_labels(starts: np.ndarray, window: float = 1.0) -> np.ndarray:
    return np.array([any(t0 <= tc < t0 + window for tc in TC) for t0 in starts], dtype=np.int32)


def _lag1_correlation(x: np.ndarray) -> float:
    x = x - x.mean(axis=-1, keepdims=True)
    return float(np.mean(np.sum(x[..., 1:] * x[..., :-1], axis=-1) / np.sum(x * x, axis=-1)))


def test_windows_shapes_and_start_times(files):
    strain, injections, _ = files
    data = load_mlgwsc(strain, injections)
    assert len(data) == 16 + 8
    assert data.x.shape == (24, 2, RATE) and data.x.dtype == np.float32
    assert data.y.dtype == np.int32 and data.start_times.dtype == np.float64
    np.testing.assert_array_equal(data.start_times, _expected_starts(1.0))
    assert data.snr.dtype == np.float32 and np.isnan(data.snr).all()


def test_labels_and_masses_follow_tc(files):
    strain, injections, _ = files
    data = load_mlgwsc(strain, injections)
    np.testing.assert_array_equal(data.y, _expected_labels(data.start_times))
    assert data.y.sum() == 3  # the injection in the gap between segments labels nothing
    for tc, m1, m2 in zip(TC[:3], MASS1[:3], MASS2[:3]):
        (i,) = np.flatnonzero((data.start_times <= tc) & (tc < data.start_times + 1.0))
        assert (data.mass1[i], data.mass2[i]) == (m1, m2)
    assert np.isnan(data.mass1[data.y == 0]).all() and np.isnan(data.mass2[data.y == 0]).all()


def test_overlapping_windows_label_every_window_holding_tc(files):
    strain, injections, _ = files
    data = load_mlgwsc(strain, injections, stride=0.5)
    np.testing.assert_array_equal(data.start_times, _expected_starts(0.5))
    assert len(data) == 31 + 15
    np.testing.assert_array_equal(data.y, _expected_labels(data.start_times))
    assert data.y.sum() == 6  # each tc is in two half-overlapping windows


def test_whitened_noise_is_unit_variance_and_white(files):
    strain, injections, _ = files
    raw = load_mlgwsc(strain, injections, whiten=False)
    white = load_mlgwsc(strain, injections)
    noise = white.x[white.y == 0]
    np.testing.assert_allclose(noise.std(axis=(0, 2)), 1.0, atol=0.04)
    assert abs(_lag1_correlation(noise)) < 0.03
    assert _lag1_correlation(raw.x[raw.y == 0]) > 0.45  # the files' noise is coloured


def test_injected_burst_stands_out_after_whitening(files):
    strain, injections, _ = files
    data = load_mlgwsc(strain, injections)
    peak = np.abs(data.x).max(axis=(1, 2))
    assert peak[data.y == 1].min() > 2 * peak[data.y == 0].max()


def test_raw_windows_are_the_file_samples_in_detector_order(files):
    strain, _, written = files
    data = load_mlgwsc(strain, whiten=False)
    starts = sorted(SEGMENTS)
    for i in (0, 15, 16, 23):
        segment = starts[0] if i < 16 else starts[1]
        offset = (i if i < 16 else i - 16) * RATE
        np.testing.assert_array_equal(data.x[i], written[segment][:, offset : offset + RATE].astype(np.float32))
    assert not data.y.any() and np.isnan(data.mass1).all()  # no injection file: every label 0


def test_max_windows_keeps_the_earliest_windows_unchanged(files):
    strain, injections, _ = files
    full = load_mlgwsc(strain, injections, stride=0.5)
    first = load_mlgwsc(strain, injections, stride=0.5, max_windows=35)
    assert len(first) == 35
    np.testing.assert_array_equal(first.start_times, full.start_times[:35])
    np.testing.assert_array_equal(first.x, full.x[:35])  # the PSD still comes from the whole segment
    np.testing.assert_array_equal(first.y, full.y[:35])


def test_resampling_to_half_rate(files):
    strain, injections, _ = files
    data = load_mlgwsc(strain, injections, sample_rate=RATE // 2)
    assert data.x.shape == (24, 2, RATE // 2)
    np.testing.assert_array_equal(data.start_times, _expected_starts(1.0))
    np.testing.assert_array_equal(data.y, _expected_labels(data.start_times))
    np.testing.assert_allclose(data.x[data.y == 0].std(axis=(0, 2)), 1.0, atol=0.05)


def _set_attr(name: str, key: str, value: object) -> Callable[[h5py.File], None]:
    def mutate(f: h5py.File) -> None:
        f[name].attrs[key] = value

    return mutate


def _del(name: str) -> Callable[[h5py.File], None]:
    def mutate(f: h5py.File) -> None:
        del f[name]

    return mutate


def _replace(name: str, data: np.ndarray, **attrs: float) -> Callable[[h5py.File], None]:
    def mutate(f: h5py.File) -> None:
        del f[name]
        f.create_dataset(name, data=data).attrs.update(attrs)

    return mutate


def _short_segment(f: h5py.File) -> None:
    for det in DETECTORS:
        f.create_dataset(f"{det}/{GPS + 200}", data=np.zeros(3 * RATE // 2)).attrs.update(
            start_time=GPS + 200.0, delta_t=1.0 / RATE
        )


def _group_as_segment(f: h5py.File) -> None:
    for det in DETECTORS:
        f.create_group(f"{det}/{GPS + 300}")


def _second_segment_at_4096_hz(f: h5py.File) -> None:
    for det in DETECTORS:
        f[f"{det}/{GPS + 64}"].attrs["delta_t"] = 1.0 / 4096


def _overlapping_segment(f: h5py.File) -> None:
    for det in DETECTORS:
        f.create_dataset(f"{det}/{GPS + 8}", data=np.ones(4 * RATE)).attrs.update(start_time=GPS + 8.0, delta_t=1 / RATE)


_OK = {"start_time": float(GPS), "delta_t": 1.0 / RATE}

STRAIN_ERRORS = {
    "no L1 group": (_del("L1"), r"no group 'L1'.*expected groups \['H1', 'L1'\]"),
    "segment only in H1": (_del(f"L1/{GPS + 64}"), rf"only in H1: \['{GPS + 64}'\].*same non-empty set"),
    "start times differ": (_set_attr(f"L1/{GPS}", "start_time", GPS + 1.0), "start_time .* expected aligned"),
    "lengths differ": (_replace(f"L1/{GPS}", np.zeros(15 * RATE), **_OK), "n_samples 32768 in H1 but 30720"),
    "delta_t differs": (_set_attr(f"L1/{GPS}", "delta_t", 1.0 / 4096), "delta_t .* in H1 but .* expected aligned"),
    "delta_t zero": (_set_attr(f"H1/{GPS}", "delta_t", 0.0), rf"'H1/{GPS}': delta_t = 0.0; expected .* > 0"),
    "delta_t negative": (_set_attr(f"H1/{GPS}", "delta_t", -1.0 / RATE), r"delta_t = -0.000488.*> 0"),
    "delta_t missing": (_replace(f"H1/{GPS}", np.zeros(16 * RATE), start_time=GPS), "'delta_t' is missing"),
    "delta_t text": (_set_attr(f"H1/{GPS}", "delta_t", "fast"), "'delta_t' = .*fast.*expected one number"),
    "start_time missing": (_replace(f"H1/{GPS}", np.zeros(16 * RATE), delta_t=1 / RATE), "'start_time' is missing"),
    "segment is 2-D": (_replace(f"H1/{GPS}", np.zeros((2, 8 * RATE)), **_OK), r"shape \(2, 16384\).*1-D float"),
    "segment is a group": (_group_as_segment, rf"'H1/{GPS + 300}' is a group; expected a 1-D"),
    "two sample rates": (_second_segment_at_4096_hz, "one sample rate per file"),
    "NaN in strain": (
        _replace(f"H1/{GPS}", np.full(16 * RATE, np.nan), **_OK), rf"'H1/{GPS}': sample 0 \(GPS {GPS}\.0000\) is nan"),
    "segments overlap": (_overlapping_segment, rf"'{GPS + 8}' starts at GPS {GPS + 8}\.0000, before segment '{GPS}' ends"),
    "segment too short": (_short_segment, rf"'{GPS + 200}' has 3072 samples.*at least 4096 \(two windows"),
}


@pytest.mark.parametrize("case", list(STRAIN_ERRORS))
def test_malformed_strain_file_is_named_in_one_line(files, case):
    strain, injections, _ = files
    mutate, match = STRAIN_ERRORS[case]
    with h5py.File(strain, "a") as f:
        mutate(f)
    with pytest.raises(MLGWSCFormatError, match=match) as error:
        load_mlgwsc(strain, injections)
    assert str(strain) in str(error.value) and "\n" not in str(error.value)
    h5py.File(strain, "w").close()  # truncating fails if the loader left the file open
    h5py.File(injections, "w").close()


def _injections_without_tc(f: h5py.File) -> None:
    del f["tc"]


def _injections_mass1_short(f: h5py.File) -> None:
    del f["mass1"]
    f["mass1"] = MASS1[:2]


def _injections_tc_2d(f: h5py.File) -> None:
    del f["tc"]
    f["tc"] = np.stack([TC, TC])


def _injections_mass2_text(f: h5py.File) -> None:
    del f["mass2"]
    f["mass2"] = np.array([b"heavy"] * TC.size)


INJECTION_ERRORS = {
    "no tc": (_injections_without_tc, "dataset 'tc' is missing; expected a 1-D numeric dataset"),
    "mass2 is text": (_injections_mass2_text, r"'mass2' has dtype \|S5; expected numbers"),
    "tc is 2-D": (_injections_tc_2d, r"'tc' is shape \(2, 4\)"),
    "mass1 too short": (_injections_mass1_short, r"'mass1' has shape \(2,\); expected \(4,\)"),
}


@pytest.mark.parametrize("case", list(INJECTION_ERRORS))
def test_malformed_injection_file_is_named_in_one_line(files, case):
    strain, injections, _ = files
    mutate, match = INJECTION_ERRORS[case]
    with h5py.File(injections, "a") as f:
        mutate(f)
    with pytest.raises(MLGWSCFormatError, match=match) as error:
        load_mlgwsc(strain, injections)
    assert str(injections) in str(error.value) and "\n" not in str(error.value)
    h5py.File(injections, "w").close()


@pytest.mark.parametrize("which", ["strain", "injections"])
def test_missing_or_text_file(files, tmp_path, which):
    strain, injections, _ = files
    missing, text = tmp_path / "absent.hdf", tmp_path / "notes.txt"
    text.write_text("H1 L1 1238166018\n")
    for bad, match in ((missing, "no such file"), (text, "not an HDF5 file")):
        paths = (bad, injections) if which == "strain" else (strain, bad)
        with pytest.raises(MLGWSCFormatError, match=f"{bad}: {match}"):
            load_mlgwsc(*paths)


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"window": 0.0}, r"window=0.0; allowed: a duration > 0"),
        ({"window": 1.0001}, r"window=1.0001 s; allowed: a whole number of samples at 2048 Hz"),
        ({"stride": -1.0}, r"stride=-1.0; allowed"),
        ({"sample_rate": 3000}, r"sample_rate=3000 Hz; allowed: the file's 2048 Hz times or divided by an integer"),
        ({"sample_rate": -1024}, r"sample_rate=-1024 Hz; allowed"),
        ({"max_windows": 0}, r"max_windows=0; allowed: an integer >= 1"),
        ({"f_lower": 1024.0}, r"f_lower=1024.0; allowed: 0 <= f_lower < 1024 Hz"),
    ],
)
def test_bad_arguments_raise_value_error(files, kwargs, match):
    strain, injections, _ = files
    with pytest.raises(ValueError, match=match) as error:
        load_mlgwsc(strain, injections, **kwargs)
    assert not isinstance(error.value, MLGWSCFormatError)


# Damaged files: whatever HDF5 says about them, the loader's error is the one-line MLGWSCFormatError.

LATE = GPS + 64  # the later segment: `max_windows=1` never reads it


def _zero_from(offset: Callable[[h5py.File], int]) -> Callable[[Path], None]:
    """Zero every byte from `offset(file)` to the end: a preallocated copy that stopped there."""

    def damage(path: Path) -> None:
        with h5py.File(path, "r") as f:
            start = offset(f)
        with open(path, "r+b") as raw:
            raw.seek(start)
            raw.write(bytes(path.stat().st_size - start))

    return damage


def _header(name: str) -> Callable[[h5py.File], int]:
    return lambda f: h5py.h5o.get_info(f[name].id).addr


def _data(name: str) -> Callable[[h5py.File], int]:
    return lambda f: f[name].id.get_offset()


def _truncate(path: Path) -> None:
    """Keep the first 60 %: an interrupted download."""
    with open(path, "r+b") as raw:
        raw.truncate(int(0.6 * path.stat().st_size))


def _all_zero(path: Path) -> None:
    path.write_bytes(bytes(path.stat().st_size))


def _corrupt_chunk(name: str, sample: int) -> Callable[[Path], None]:
    """Overwrite 16 bytes in the middle of the compressed chunk that holds `sample` of `name`."""

    def damage(path: Path) -> None:
        with h5py.File(path, "r") as f:
            chunk = f[name].id.get_chunk_info_by_coord((sample,))
        with open(path, "r+b") as raw:
            raw.seek(chunk.byte_offset + chunk.size // 2)
            raw.write(b"\xff" * 16)

    return damage


CHUNKED = {"chunks": (RATE,), "compression": "gzip"}

# case -> (storage, damage, what the one-line error must say)
LOADER_DAMAGE = {
    "truncated": ({}, _truncate, r"cannot be opened as HDF5 \(.*truncated file: eof = \d+.*\); expected a complete"),
    "zero-filled": ({}, _all_zero, "not an HDF5 file"),
    "zeroed from a group header": ({}, _zero_from(_header("L1")), r"'L1' cannot be read \(.*\); expected an undamaged"),
    "zeroed from a dataset header": (
        {}, _zero_from(_header(f"L1/{GPS}")), rf"'L1/{GPS}' cannot be read \(.*bad object header.*\); expected"),
    "zeroed strain data": ({}, _zero_from(_data(f"H1/{GPS}")), rf"'H1/{GPS}': its Welch PSD is 0 .*exact zeros"),
    "corrupt chunk, later segment": (
        CHUNKED, _corrupt_chunk(f"L1/{LATE}", 3 * RATE),
        rf"'L1/{LATE}': samples 6144 to 8191 \(GPS {LATE + 3}(\.0*)? to {LATE + 3}\.99\d*\) cannot be read \(.*filter"),
}


@pytest.mark.parametrize("case", list(LOADER_DAMAGE))
def test_damaged_strain_file_is_one_line_error_from_the_loader(tmp_path, case):
    storage, damage, match = LOADER_DAMAGE[case]
    strain = tmp_path / "foreground.hdf"
    _write_strain(strain, **storage)
    damage(strain)
    with pytest.raises(MLGWSCFormatError, match=match) as error:
        load_mlgwsc(strain)
    assert str(error.value).startswith(f"{strain}: ") and "\n" not in str(error.value)


# check_strain / check_injections: every sample read once, so damage past the first windows (which
# `max_windows=1` never reads) is found before a run starts, with the sample and its GPS time.


def _set_sample(name: str, index: int | slice, value: float) -> Callable[[Path], None]:
    def damage(path: Path) -> None:
        with h5py.File(path, "a") as f:
            f[name][index] = value

    return damage


def _text(path: Path) -> None:
    path.write_text("H1 L1 1238166018\n")


# case -> (storage, damage, what the one-line error must say, found by a one-window load too)
CHECK_DAMAGE = {
    "truncated": (*LOADER_DAMAGE["truncated"], True),
    "zero-filled": (*LOADER_DAMAGE["zero-filled"], True),
    "not HDF5": ({}, _text, "not an HDF5 file", True),
    "zeroed from a group header": (*LOADER_DAMAGE["zeroed from a group header"], True),
    "zeroed from a dataset header": (*LOADER_DAMAGE["zeroed from a dataset header"], True),
    "zeroed strain data": (
        {}, _zero_from(_data(f"H1/{GPS}")),
        rf"'H1/{GPS}': samples 0 to 32767 \(GPS {GPS}\.0000 to {GPS + 15}\.9995\) are all exactly 0 \(16 s\)", True),
    "corrupt chunk, later segment": (*LOADER_DAMAGE["corrupt chunk, later segment"], False),
    "NaN, later segment": (
        {}, _set_sample(f"H1/{LATE}", 5000, np.nan), rf"'H1/{LATE}': sample 5000 \(GPS {LATE + 5000 / RATE:.4f}\) is nan",
        False),
    "-Inf, later segment of L1": (
        {}, _set_sample(f"L1/{LATE}", 12345, -np.inf), rf"'L1/{LATE}': sample 12345 \(GPS .*\) is -inf", False),
    "2 s of zeros, later segment": (
        {}, _set_sample(f"L1/{LATE}", slice(2 * RATE, 4 * RATE), 0.0),
        rf"'L1/{LATE}': samples 4096 to 8191 \(GPS {LATE + 2}\.0000 to {LATE + 3}\.9995\) are all exactly 0 \(2 s\)",
        False),
}


@pytest.mark.parametrize("case", list(CHECK_DAMAGE))
def test_check_strain_names_the_damage_in_one_line(tmp_path, case):
    storage, damage, match, one_window_finds_it = CHECK_DAMAGE[case]
    strain = tmp_path / "foreground.hdf"
    _write_strain(strain, **storage)
    damage(strain)
    with pytest.raises(MLGWSCFormatError, match=match) as error:
        check_strain(strain)
    assert str(error.value).startswith(f"{strain}: ") and "\n" not in str(error.value)
    if not one_window_finds_it:  # the pre-check this replaces let it through
        assert len(load_mlgwsc(strain, max_windows=1)) == 1


@pytest.mark.parametrize("storage", [{}, CHUNKED], ids=["contiguous", "chunked"])
def test_check_strain_passes_an_intact_file_and_summarizes_it(files, tmp_path, storage):
    strain = tmp_path / "intact.hdf"
    _write_strain(strain, **storage)
    summary = check_strain(strain)
    assert [s.name for s in summary.segments] == [str(GPS), str(GPS + 64)]  # GPS order, not file order
    assert summary.seconds == 24.0
    assert summary.inside(np.array([GPS - 1e-3, GPS, GPS + 16.0 - 1e-3, GPS + 16.0, GPS + 70.0])).tolist() == [
        False, True, True, False, True]
    assert check_injections(files[1], summary) == 3  # the fourth tc lies in the gap
    assert check_injections(files[1]) == 4


@pytest.mark.parametrize("block", [999, 1000, 4096, 1 << 20])
def test_findings_do_not_depend_on_the_block_size(tmp_path, block):
    strain = tmp_path / "foreground.hdf"
    _write_strain(strain)
    _set_sample(f"H1/{GPS}", slice(1000, 1000 + 2 * RATE - 1), 0.0)(strain)  # one sample short of 2 s: allowed
    check_strain(strain, block_samples=block)
    _set_sample(f"L1/{GPS}", slice(1500, 1500 + 2 * RATE), 0.0)(strain)
    with pytest.raises(MLGWSCFormatError, match=rf"'L1/{GPS}': samples 1500 to 5595 .* \(2 s\)"):
        check_strain(strain, block_samples=block)
    _set_sample(f"H1/{LATE}", 1000, np.inf)(strain)  # found first: an earlier segment in GPS order is not, a later one is
    _set_sample(f"L1/{GPS}", 1500, 1e-21)(strain)
    _set_sample(f"H1/{LATE}", 999, np.nan)(strain)
    with pytest.raises(MLGWSCFormatError, match=rf"'H1/{LATE}': sample 999 \(GPS .*\) is nan"):
        check_strain(strain, block_samples=block)


def test_check_strain_holds_one_block_not_the_file(tmp_path):
    strain = tmp_path / "long.hdf"
    with h5py.File(strain, "w") as f:
        for det in DETECTORS:  # 64 s at 2048 Hz: 1 MiB per detector
            ds = f.create_dataset(f"{det}/{GPS}", data=np.random.default_rng(0).normal(size=64 * RATE))
            ds.attrs.update(_OK)
    tracemalloc.start()
    try:
        check_strain(strain, block_samples=4096)
        peak_check = tracemalloc.get_traced_memory()[1]
        tracemalloc.reset_peak()
        load_mlgwsc(strain, whiten=False)
        peak_load = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak_check < 128 * 1024 < 1024 * 1024 < peak_load, (peak_check, peak_load)


@pytest.mark.parametrize(("kwargs", "match"), [
    ({"block_samples": 0}, r"block_samples=0; allowed: an integer >= 1"),
    ({"zero_run_s": 0.0}, r"zero_run_s=0.0; allowed: a finite duration > 0 s"),
])
def test_check_strain_bad_arguments(files, kwargs, match):
    with pytest.raises(ValueError, match=match) as error:
        check_strain(files[0], **kwargs)
    assert not isinstance(error.value, MLGWSCFormatError)


def _write_big_injections(path: Path) -> None:
    """The usual injections plus a 4096-entry `distance` in gzip chunks of 512."""
    _write_injections(path)
    with h5py.File(path, "a") as f:
        del f["distance"]
        f.create_dataset("distance", data=np.linspace(100.0, 2000.0, 4096), chunks=(512,), compression="gzip")


def _injections_tc(values: np.ndarray) -> Callable[[Path], None]:
    def damage(path: Path) -> None:
        with h5py.File(path, "a") as f:
            for key, data in {"tc": values, "mass1": np.resize(MASS1, values.shape),
                              "mass2": np.resize(MASS2, values.shape)}.items():
                del f[key]
                f[key] = data

    return damage


def _injections_set(key: str, index: int, value: float) -> Callable[[Path], None]:
    def damage(path: Path) -> None:
        with h5py.File(path, "a") as f:
            f[key][index] = value

    return damage


INJECTION_DAMAGE = {
    "tc outside the strain": (
        _injections_tc(TC + 1000.0),
        rf"none of its 4 merger times 'tc' \(GPS {GPS + 1003}\.5 to {GPS + 1066}\.5\) lies in a segment of "
        rf".*foreground\.hdf \(GPS {GPS}\.0 to {GPS + 72}\.0, 2 segments\); expected the injection file"),
    "no injections at all": (_injections_tc(np.array([])), r"none of its 0 merger times 'tc' lies in a segment"),
    "tc NaN": (_injections_set("tc", 2, np.nan), r"dataset 'tc': entry 2 is nan; expected finite GPS merger times"),
    "mass1 Inf": (_injections_set("mass1", 0, np.inf), r"dataset 'mass1': entry 0 is inf; expected finite masses"),
    "truncated": (_truncate, r"cannot be opened as HDF5 \(.*truncated file"),
    "corrupt chunk of distance": (
        _corrupt_chunk("distance", 1024), r"dataset 'distance': entries 1024 to 1535 cannot be read \(.*filter"),
}


@pytest.mark.parametrize("case", list(INJECTION_DAMAGE))
def test_check_injections_names_the_damage_in_one_line(files, case):
    strain, injections, _ = files
    _write_big_injections(injections)
    summary = check_strain(strain)
    damage, match = INJECTION_DAMAGE[case]
    damage(injections)
    with pytest.raises(MLGWSCFormatError, match=match) as error:
        check_injections(injections, summary, block_samples=1000)
    assert str(error.value).startswith(f"{injections}: ") and "\n" not in str(error.value)


@pytest.mark.parametrize("case", ["truncated", "corrupt chunk of distance"])
def test_loader_reads_a_damaged_injection_file_as_one_line(files, case):
    strain, injections, _ = files
    _write_big_injections(injections)
    damage, match = INJECTION_DAMAGE[case]
    damage(injections)
    with pytest.raises(MLGWSCFormatError, match=match) as error:
        load_mlgwsc(strain, injections)
    assert "\n" not in str(error.value)
