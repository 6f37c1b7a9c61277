"""`dataset_arrays` / `dataset_from_arrays`: a lossless round trip, and every mismatch rejected by name."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from jax_modules.gw_data.config import GWDataConfig
from jax_modules.gw_data.dataset import GWDataset, Split
from jax_modules.gw_data.storage import InvalidDataError, dataset_arrays, dataset_from_arrays

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
        assert split.arrays().keys() == b.splits()[name].arrays().keys(), name
        for field, array in split.arrays().items():
            assert array.tobytes() == b.splits()[name].arrays()[field].tobytes(), (name, field)
    assert a.psd.tobytes() == b.psd.tobytes()


def test_the_arrays_have_flat_split_names_and_the_psd():
    arrays = dataset_arrays(_dataset())
    fields = ("mass1", "mass2", "snr", "x", "y")
    assert sorted(arrays) == sorted(["psd", *(f"{s}/{f}" for s in ("train", "val", "test") for f in fields)])
    assert arrays["psd"].dtype == np.float64 and arrays["val/x"].shape == (2, 2, 256)


def test_round_trip_is_lossless():
    dataset = _dataset()
    loaded = dataset_from_arrays(dataset_arrays(dataset), CONFIG, generated=False, path=None)
    _assert_same(dataset, loaded)
    assert loaded.generated is False and loaded.path is None and loaded.config == CONFIG


def test_generated_and_path_are_passed_through(tmp_path):
    loaded = dataset_from_arrays(dataset_arrays(_dataset()), CONFIG, generated=True, path=tmp_path / "entry.npz")
    assert loaded.generated is True and loaded.path == tmp_path / "entry.npz"


def test_clean_signals_round_trip():
    config = dataclasses.replace(CONFIG, keep_clean=True)
    base = _dataset(config)
    splits = {n: dataclasses.replace(s, clean=s.x * 0.5) for n, s in base.splits().items()}
    dataset = dataclasses.replace(base, **splits)
    loaded = dataset_from_arrays(dataset_arrays(dataset), config, generated=False)
    _assert_same(dataset, loaded)
    assert loaded.test.clean is not None


def _without(arrays: dict[str, np.ndarray], name: str) -> dict[str, np.ndarray]:
    return {k: v for k, v in arrays.items() if k != name}


@pytest.mark.parametrize(
    ("damage", "match"),
    [
        (lambda a: {**a, "train/x": a["train/x"][:, :, :128]},
         r"GW data array train/x is float32 \(4, 2, 128\); allowed: float32 \(4, 2, 256\)"),
        (lambda a: {**a, "val/y": a["val/y"].astype(np.int64)},
         r"GW data array val/y is int64 \(2,\); allowed: int32 \(2,\)"),
        (lambda a: {**a, "psd": a["psd"].astype(np.float32)},
         r"GW data array psd is float32 \(129,\); allowed: float64 \(129,\)"),
        (lambda a: {**a, "test/snr": [1.0, 2.0]}, r"GW data array test/snr is list; allowed: float32 \(2,\)"),
        (lambda a: _without(a, "val/snr"), r"GW data arrays: missing \['val/snr'\]; allowed: exactly \["),
        (lambda a: {**a, "train/clean": a["train/x"]}, r"GW data arrays: unexpected \['train/clean'\]; allowed"),
        (lambda a: {**_without(a, "psd"), "extra": a["psd"]}, r"missing \['psd'\], unexpected \['extra'\]"),
    ],
    ids=["shape", "dtype", "psd-dtype", "not-an-array", "missing", "extra", "missing-and-extra"],
)
def test_arrays_that_do_not_fit_the_config_are_rejected(damage, match):
    with pytest.raises(InvalidDataError, match=match):
        dataset_from_arrays(damage(dataset_arrays(_dataset())), CONFIG, generated=False)


def test_arrays_of_another_config_are_rejected():
    with pytest.raises(InvalidDataError, match=r"train/x is float32 \(4, 2, 256\); allowed: float32 \(8, 2, 256\)"):
        dataset_from_arrays(dataset_arrays(_dataset()), dataclasses.replace(CONFIG, n_train=8), generated=False)
    with pytest.raises(InvalidDataError, match=r"missing \['test/clean', 'train/clean', 'val/clean'\]"):
        dataset_from_arrays(dataset_arrays(_dataset()), dataclasses.replace(CONFIG, keep_clean=True), generated=False)


def test_invalid_data_is_a_value_error():
    assert issubclass(InvalidDataError, ValueError)  # the shared cache rebuilds an entry on ValueError


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
