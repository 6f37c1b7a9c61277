"""End to end: `generate_dataset` simulates in its own process and the data is physical; the
project caches it through the shared data cache (`load_run_data`).

One data set is generated per fixture (the subprocess costs a few seconds); SNRs are high so
single examples can be checked against their targets.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import jax
import numpy as np
import pytest
from scipy.signal import hilbert

import jax_modules.gw_data.subprocess_generate as subprocess_generate
import projects.cpc_snn_gw.data as run_data_module
from jax_modules.gw_data.config import ERROR_PREFIX, GWDataConfig
from jax_modules.gw_data.psd import design_psd
from jax_modules.gw_data.snr import matched_filter_snr
from jax_modules.gw_data.storage import InvalidDataError
from jax_modules.gw_data.subprocess_generate import GenerationError, _reason, generate_dataset, run_generator
from projects.cpc_snn_gw.config import CpcGwConfig
from projects.cpc_snn_gw.data import RunData, load_run_data

CONFIG = GWDataConfig(n_train=16, n_val=8, n_test=8, snr_min=25.0, snr_max=40.0, keep_clean=True, seed=7)

#: The project's smallest run: its data is what `load_run_data` caches.
RUN = dict(n_train=4, n_val=2, n_test=2, batch_size=2, seed=3)


@pytest.fixture(scope="module")
def temp_root(tmp_path_factory):
    """The temporary folder `generate_dataset` works in, so leftovers can be seen (and no one else's)."""
    root = tmp_path_factory.mktemp("tmp")
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(tempfile, "tempdir", str(root))
        yield root


@pytest.fixture(scope="module")
def dataset(temp_root):
    return generate_dataset(CONFIG, progress=False)


@pytest.fixture(scope="module")
def cache_dir(tmp_path_factory):
    return tmp_path_factory.mktemp("cache")


@pytest.fixture(scope="module")
def run_data(cache_dir, temp_root) -> RunData:
    """The tiny run's data, simulated into an empty cache."""
    return load_run_data(CpcGwConfig(**RUN, cache_dir=str(cache_dir)), progress=False)


def _signals(dataset):
    """All splits' signal examples: (x, clean, snr)."""
    splits = dataset.splits().values()
    return tuple(np.concatenate([getattr(s, f)[s.y == 1] for s in splits]) for f in ("x", "clean", "snr"))


def _noise(dataset):
    return np.concatenate([s.x[s.y == 0] for s in dataset.splits().values()])


def _assert_same_windows(a: RunData, b: RunData) -> None:
    for split in ("train", "val", "test"):
        for field in ("x", "y", "snr"):
            assert getattr(getattr(a, split), field).tobytes() == getattr(getattr(b, split), field).tobytes()


def _entry(cache_dir: Path) -> Path:
    """The one GW data entry in `cache_dir`."""
    (path,) = (cache_dir / "gw_data").glob("*.npz")
    return path


# --- generation ----------------------------------------------------------------------------------


def test_this_process_stays_float32_and_never_imports_ripplegw(dataset):
    assert dataset.generated and dataset.path is None
    assert jax.config.jax_enable_x64 is False
    assert "ripplegw" not in sys.modules


def test_generation_leaves_no_temporary_files(dataset, temp_root):
    assert list(temp_root.iterdir()) == []


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


def test_a_failing_child_is_reported_in_one_line_and_leaves_nothing(temp_root):
    bad = GWDataConfig(n_train=4, n_val=2, n_test=2)
    object.__setattr__(bad, "n_train", 3)  # valid here, rejected by the child: it must fail
    match = r"exit status 1\): ValueError: GWDataConfig.n_train=3 is out of range; allowed: an even integer"
    with pytest.raises(GenerationError, match=match) as info:
        generate_dataset(bad, progress=False)
    assert "\n" not in str(info.value)
    assert list(temp_root.iterdir()) == []


def test_an_unusable_output_is_a_generation_error(monkeypatch, temp_root):
    monkeypatch.setattr(subprocess_generate, "run_generator", lambda config, out, progress: out.write_bytes(b"junk"))
    with pytest.raises(GenerationError, match=r"the generator wrote an unusable data set \(\w+Error: "):
        generate_dataset(CONFIG, progress=False)
    assert list(temp_root.iterdir()) == []


def test_a_missing_output_folder_is_reported_in_one_line(tmp_path):
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


# --- the project's cache -------------------------------------------------------------------------


def test_the_first_call_simulates_and_stores_one_entry(run_data, cache_dir):
    assert run_data.generated is True
    assert len(run_data.train) == 4 and run_data.train.x.shape == (4, 2, 2048)
    assert _entry(cache_dir).is_file()


def test_a_second_call_reads_the_cache(run_data, cache_dir, monkeypatch):
    monkeypatch.setattr(run_data_module, "generate_dataset", _must_not_generate)
    again = load_run_data(CpcGwConfig(**RUN, cache_dir=str(cache_dir)), progress=False)
    assert again.generated is False
    _assert_same_windows(run_data, again)


def test_without_a_cache_dir_the_shared_default_is_used(run_data, cache_dir, monkeypatch):
    monkeypatch.setattr(run_data_module, "generate_dataset", _must_not_generate)
    monkeypatch.setenv("FIXLAB_CACHE", str(cache_dir))
    again = load_run_data(CpcGwConfig(**RUN), progress=False)
    assert again.generated is False
    _assert_same_windows(run_data, again)


def test_a_corrupt_entry_is_regenerated_byte_identically(run_data, cache_dir, tmp_path, capsys):
    entry = tmp_path / "gw_data" / _entry(cache_dir).name
    entry.parent.mkdir()
    shutil.copyfile(_entry(cache_dir), entry)
    entry.write_bytes(entry.read_bytes()[:-4096])
    config = CpcGwConfig(**RUN, cache_dir=str(tmp_path))
    with pytest.warns(RuntimeWarning, match=r"cache entry .*gw_data.* is invalid \(unreadable"):
        regenerated = load_run_data(config, progress=True)
    assert regenerated.generated is True
    assert "gw_data: waveforms" in capsys.readouterr().err  # the child's progress bar came through
    _assert_same_windows(run_data, regenerated)
    assert load_run_data(config, progress=False).generated is False  # the entry was replaced


def test_generated_arrays_that_do_not_fit_the_config_are_not_cached(monkeypatch, tmp_path, dataset):
    wrong = lambda config, progress: dataset  # noqa: E731  CONFIG's sizes and clean signals, not RUN's
    monkeypatch.setattr(run_data_module, "generate_dataset", wrong)
    with pytest.raises(InvalidDataError, match=r"GW data arrays: unexpected \['test/clean', 'train/clean'"):
        load_run_data(CpcGwConfig(**RUN, cache_dir=str(tmp_path)), progress=False)
    assert not (tmp_path / "gw_data").exists() or not any((tmp_path / "gw_data").iterdir())


def _must_not_generate(config: GWDataConfig, progress: bool) -> None:
    raise AssertionError(f"simulated {config} although it is in the cache")
