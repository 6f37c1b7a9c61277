"""Cache entries: round trip, atomic writes, and every kind of damage detected on read."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from jax_modules.gw_data.config import GWDataConfig
from jax_modules.gw_data.dataset import GWDataset, Split
from jax_modules.gw_data.storage import InvalidCacheError, read_dataset, write_dataset

CONFIG = GWDataConfig(n_train=4, n_val=2, n_test=2, sample_rate=256, duration=1.0, f_lower=20.0, mass_min=30.0)


def _split(rng: np.random.Generator, n: int, config: GWDataConfig) -> Split:
    y = np.repeat(np.array([0, 1], dtype=np.int32), n // 2)
    meta = np.where(y == 1, rng.uniform(10, 50, n), np.nan).astype(np.float32)
    x = rng.standard_normal((n, len(config.detectors), config.n_samples)).astype(np.float32)
    return Split(x=x, y=y, snr=meta, mass1=meta + 1, mass2=meta)


def _dataset(config: GWDataConfig = CONFIG) -> GWDataset:
    rng = np.random.default_rng(0)
    splits = {name: _split(rng, n, config) for name, n in config.split_sizes().items()}
    return GWDataset(**splits, config=config, psd=rng.uniform(1, 2, config.n_samples // 2 + 1), generated=True)


def _assert_same(a: GWDataset, b: GWDataset) -> None:
    for name, split in a.splits().items():
        for field, array in split.arrays().items():
            assert array.tobytes() == b.splits()[name].arrays()[field].tobytes(), (name, field)
    assert a.psd.tobytes() == b.psd.tobytes()


def test_round_trip_leaves_no_temporary_files(tmp_path):
    path = tmp_path / "entry.npz"
    write_dataset(_dataset(), path)
    loaded = read_dataset(path, CONFIG)
    _assert_same(_dataset(), loaded)
    assert loaded.generated is False and loaded.path == path and loaded.config == CONFIG
    assert [p.name for p in tmp_path.iterdir()] == ["entry.npz"]


def test_a_failed_write_keeps_the_previous_entry(tmp_path, monkeypatch):
    path = tmp_path / "entry.npz"
    write_dataset(_dataset(), path)
    before = path.read_bytes()

    def crash(*args, **kwargs):
        raise OSError("disk full")

    monkeypatch.setattr(np, "savez", crash)
    with pytest.raises(OSError, match="disk full"):
        write_dataset(_dataset(), path)
    assert path.read_bytes() == before
    assert [p.name for p in tmp_path.iterdir()] == ["entry.npz"]


@pytest.mark.parametrize(
    ("damage", "match"),
    [
        (lambda b: b[: len(b) // 2], "unreadable"),
        (lambda b: b"", "unreadable"),
        (lambda b: b[:1000] + bytes([b[1000] ^ 0xFF]) + b[1001:], "unreadable|checksum"),
    ],
    ids=["truncated", "empty", "bit-flip"],
)
def test_damaged_entries_are_rejected(tmp_path, damage, match):
    path = tmp_path / "entry.npz"
    write_dataset(_dataset(), path)
    path.write_bytes(damage(path.read_bytes()))
    with pytest.raises(InvalidCacheError, match=match):
        read_dataset(path, CONFIG)


def test_an_entry_for_another_config_is_rejected(tmp_path):
    path = tmp_path / "entry.npz"
    write_dataset(_dataset(), path)
    with pytest.raises(InvalidCacheError, match=f"written for config {CONFIG.cache_key()}"):
        read_dataset(path, dataclasses.replace(CONFIG, seed=1))


def test_entries_with_missing_or_altered_arrays_are_rejected(tmp_path):
    path = tmp_path / "entry.npz"
    write_dataset(_dataset(), path)
    with np.load(path, allow_pickle=False) as npz:
        arrays = {name: npz[name] for name in npz.files}
    damaged = tmp_path / "damaged.npz"
    np.savez(damaged, **{k: v for k, v in arrays.items() if k != "val/snr"})
    with pytest.raises(InvalidCacheError, match=r"arrays .*expected .*'val/snr'"):
        read_dataset(damaged, CONFIG)
    arrays["train/y"] = arrays["train/y"][::-1].copy()
    np.savez(damaged, **arrays)
    with pytest.raises(InvalidCacheError, match="checksum mismatch"):
        read_dataset(damaged, CONFIG)
    np.savez(damaged, **{k: v for k, v in arrays.items() if k != "checksum"})
    with pytest.raises(InvalidCacheError, match=r"missing \['checksum'\]"):
        read_dataset(damaged, CONFIG)


def test_clean_signals_round_trip(tmp_path):
    config = dataclasses.replace(CONFIG, keep_clean=True)
    base = _dataset(config)
    splits = {n: dataclasses.replace(s, clean=s.x * 0.5) for n, s in base.splits().items()}
    dataset = dataclasses.replace(base, **splits)
    write_dataset(dataset, tmp_path / "entry.npz")
    loaded = read_dataset(tmp_path / "entry.npz", config)
    _assert_same(dataset, loaded)
    assert loaded.test.clean is not None


@pytest.mark.parametrize(
    ("change", "match"),
    [
        ({"x": np.zeros((4, 2, 256))}, r"Split.x is float64 \(4, 2, 256\); allowed: float32"),
        ({"y": np.zeros(3, dtype=np.int32)}, r"Split.y is int32 \(3,\); allowed: int32 with 1 axes and 4 rows"),
        ({"snr": [1.0] * 4}, r"Split.snr is list; allowed: float32"),
        ({"clean": np.zeros((4, 2, 8), dtype=np.float32)}, r"Split.clean is float32 \(4, 2, 8\)"),
    ],
)
def test_split_rejects_inconsistent_arrays(change, match):
    split = _split(np.random.default_rng(0), 4, CONFIG)
    with pytest.raises(ValueError, match=match):
        dataclasses.replace(split, **change)


def test_writing_into_a_missing_folder_fails_without_side_effects(tmp_path):
    with pytest.raises(FileNotFoundError):
        write_dataset(_dataset(), tmp_path / "missing" / "entry.npz")
    assert not (tmp_path / "missing").exists()
