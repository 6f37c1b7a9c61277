"""End to end: `load_or_generate` simulates in its own process, caches, and the data is physical.

One data set is generated per module (the subprocess costs a few seconds); SNRs are high so
single examples can be checked against their targets.
"""

from __future__ import annotations

import dataclasses
import json
import shutil
import subprocess
import sys

import jax
import numpy as np
import pytest
from scipy.signal import hilbert

from jax_modules.gw_data.cache import GenerationError, _reason, cache_path, load_or_generate, run_generator
from jax_modules.gw_data.config import GWDataConfig
from jax_modules.gw_data.config import ERROR_PREFIX
from jax_modules.gw_data.psd import design_psd
from jax_modules.gw_data.snr import matched_filter_snr

CONFIG = GWDataConfig(n_train=16, n_val=8, n_test=8, snr_min=25.0, snr_max=40.0, keep_clean=True, seed=7)


@pytest.fixture(scope="module")
def cache_dir(tmp_path_factory):
    return tmp_path_factory.mktemp("gw_cache")


@pytest.fixture(scope="module")
def dataset(cache_dir):
    return load_or_generate(CONFIG, cache_dir, progress=False)


def _signals(dataset):
    """All splits' signal examples: (x, clean, snr)."""
    splits = dataset.splits().values()
    return tuple(np.concatenate([getattr(s, f)[s.y == 1] for s in splits]) for f in ("x", "clean", "snr"))


def _noise(dataset):
    return np.concatenate([s.x[s.y == 0] for s in dataset.splits().values()])


def test_this_process_stays_float32_and_never_imports_ripplegw(dataset):
    assert dataset.generated
    assert jax.config.jax_enable_x64 is False
    assert "ripplegw" not in sys.modules


def test_splits_have_the_promised_shapes_labels_and_metadata(dataset):
    for name, split in dataset.splits().items():
        n = CONFIG.split_sizes()[name]
        assert split.x.shape == (n, 2, 2048) and split.x.dtype == np.float32
        assert split.y.dtype == np.int32 and split.y.sum() == n // 2  # balanced
        signal = split.y == 1
        assert np.all(np.isnan(split.snr[~signal])) and np.all(np.isnan(split.mass1[~signal]))
        assert np.all((split.snr[signal] >= 25.0) & (split.snr[signal] <= 40.0))
        assert np.all((split.mass2[signal] >= 10.0) & (split.mass1[signal] <= 50.0))
        assert np.all(split.mass1[signal] >= split.mass2[signal])
        assert np.all(split.clean[~signal] == 0.0)
    np.testing.assert_array_equal(dataset.psd, design_psd(2048, 2048, 20.0))


def test_whitened_noise_has_unit_variance(dataset):
    noise = _noise(dataset).astype(np.float64)
    assert abs(noise.std() - 1.0) < 0.03 and abs(noise.mean()) < 0.02


def test_injections_have_their_target_snr(dataset):
    x, clean, snr = _signals(dataset)
    optimal = np.sqrt(np.sum(clean.astype(np.float64) ** 2, axis=(1, 2)))
    # whiten() rescales by its Tukey window's RMS (3 % for taper 0.1): a signal in the flat
    # middle comes out that much louder than its optimal SNR
    np.testing.assert_allclose(optimal / snr, 1.03, atol=0.02)
    measured = matched_filter_snr(x, clean)
    assert np.all(np.abs(measured / snr - 1.0) < 0.15), measured / snr


def test_h1_and_l1_see_the_merger_within_the_light_travel_time(dataset):
    _, clean, _ = _signals(dataset)
    peaks = np.abs(hilbert(clean.astype(np.float64), axis=-1)).argmax(axis=-1) / CONFIG.sample_rate
    assert np.all(np.abs(peaks[:, 0] - peaks[:, 1]) <= 10.0e-3 + 2.0 / CONFIG.sample_rate)
    assert np.all((peaks >= 0.6 - 0.025) & (peaks <= 0.9 + 0.025))


def test_loud_signals_are_visible_in_the_whitened_data(dataset):
    x, _, _ = _signals(dataset)
    energy = lambda a: np.sum(a.astype(np.float64) ** 2, axis=(1, 2))  # noqa: E731
    assert energy(x).min() > energy(_noise(dataset)).max()


def test_splits_are_disjoint(dataset):
    rows = [s.x.reshape(len(s), -1) for s in dataset.splits().values()]
    keys = [{r.tobytes() for r in split} for split in rows]
    assert sum(map(len, keys)) == len(set().union(*keys)) == sum(map(len, rows))


def test_a_second_call_reads_the_cache(dataset, cache_dir):
    again = load_or_generate(CONFIG, cache_dir, progress=False)
    assert again.generated is False and again.path == cache_path(CONFIG, cache_dir)
    assert again.train.x.tobytes() == dataset.train.x.tobytes()


def test_a_corrupt_entry_is_regenerated_byte_identically(dataset, cache_dir, tmp_path, capsys):
    path = cache_path(CONFIG, tmp_path)
    shutil.copyfile(cache_path(CONFIG, cache_dir), path)
    path.write_bytes(path.read_bytes()[:-4096])
    with pytest.warns(RuntimeWarning, match=r"gw_data: cache entry .* is invalid \(unreadable"):
        regenerated = load_or_generate(CONFIG, tmp_path, progress=True)
    assert regenerated.generated
    assert "gw_data: waveforms" in capsys.readouterr().err  # the child's progress bar came through
    for name, split in dataset.splits().items():
        for field, array in split.arrays().items():
            assert regenerated.splits()[name].arrays()[field].tobytes() == array.tobytes(), (name, field)


def test_another_seed_gives_other_data(dataset, tmp_path):
    other = load_or_generate(dataclasses.replace(CONFIG, seed=8), tmp_path, progress=False)
    assert not np.array_equal(other.train.x, dataset.train.x)
    assert not np.array_equal(other.train.snr, dataset.train.snr, equal_nan=True)


def test_a_failing_generator_is_reported_in_one_line(tmp_path):
    match = r"exit status 1\): FileNotFoundError: --out folder .* does not exist"
    with pytest.raises(GenerationError, match=match) as info:
        run_generator(CONFIG, tmp_path / "missing" / "out.npz", progress=False)
    assert "\n" not in str(info.value)


@pytest.mark.parametrize(
    ("stderr", "status", "reason"),
    [
        (f"gw_data: waveforms: 10%\r{ERROR_PREFIX}OSError: disk full\n", 1, "OSError: disk full"),
        ("gw_data: waveforms: 10%|#  | 2/20\r", -9, "killed by SIGKILL (out of memory, or stopped from outside)"),
        ("Traceback (most recent call last):\n  ...\nSystemError: boom\n", 1, "SystemError: boom"),
        ("", 1, "no output on stderr"),
    ],
)
def test_the_failure_reason_is_the_child_s_error_line(stderr, status, reason):
    assert _reason(stderr, status) == reason


def test_the_generator_command_rejects_a_bad_config(tmp_path):
    bad = json.dumps({**json.loads(CONFIG.to_json()), "n_train": 3})
    command = [sys.executable, "-m", "jax_modules.gw_data.generate", "--config", bad, "--out", str(tmp_path / "x.npz")]
    result = subprocess.run(command, capture_output=True, text=True, timeout=60)
    assert result.returncode == 1
    assert result.stderr.strip().splitlines()[-1].startswith(ERROR_PREFIX + "ValueError: GWDataConfig.n_train=3")
    assert not any(tmp_path.iterdir())


def test_importing_the_package_is_light():
    probe = "import sys, jax_modules.gw_data; print(sorted({'ripplegw', 'bilby', 'jax'} & set(sys.modules)))"
    result = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, timeout=60, check=True)
    assert result.stdout.strip() == "[]"
