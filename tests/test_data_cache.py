"""The shared data cache (`projects.common.data_cache`): built once, checked on every load, never
trusted when damaged, never half-written."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest

from projects.common.data_cache import cache_path, cached_arrays, default_cache_dir

KEY = {"n": 6, "seed": 3}


def _arrays(seed: int = 3) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    return {"X": rng.normal(size=(6, 4)).astype(np.float32), "y": np.arange(6), "psd": np.linspace(0, 1, 5)}


def _counting(calls: list[int], seed: int = 3):
    def build() -> dict[str, np.ndarray]:
        calls.append(1)
        return _arrays(seed)
    return build


def _equal(a: dict[str, np.ndarray], b: dict[str, np.ndarray]) -> bool:
    return sorted(a) == sorted(b) and all(np.array_equal(a[k], b[k]) and a[k].dtype == b[k].dtype for k in a)


def test_builds_once_then_reads_the_same_arrays(tmp_path: Path) -> None:
    calls: list[int] = []
    first = cached_arrays("t", KEY, _counting(calls), cache_dir=tmp_path)
    second = cached_arrays("t", KEY, _counting(calls), cache_dir=tmp_path)
    assert calls == [1]
    assert first.built and not second.built
    assert _equal(first.arrays, _arrays()) and _equal(second.arrays, _arrays())
    assert first.path == second.path == cache_path("t", KEY, tmp_path) and first.path.is_file()
    assert [p.name for p in first.path.parent.iterdir()] == [first.path.name]  # no temporary left


def test_another_key_or_name_is_another_entry(tmp_path: Path) -> None:
    assert cache_path("t", {**KEY, "seed": 4}, tmp_path) != cache_path("t", KEY, tmp_path)
    assert cache_path("u", KEY, tmp_path) != cache_path("t", KEY, tmp_path)
    assert cache_path("t", dict(reversed(list(KEY.items()))), tmp_path) == cache_path("t", KEY, tmp_path)


def _garbage(path: Path) -> None:
    path.write_bytes(b"not an npz at all")


def _truncated(path: Path) -> None:
    path.write_bytes(path.read_bytes()[:200])


def _tampered(path: Path) -> None:
    with np.load(path) as f:
        arrays = {k: f[k].copy() for k in f.files}
    arrays["X"][0, 0] += 1.0  # a valid archive whose data no longer matches its digest
    np.savez(path, **arrays)


def _dropped_array(path: Path) -> None:
    with np.load(path) as f:
        arrays = {k: f[k] for k in f.files if k != "y"}
    np.savez(path, **arrays)


def _no_metadata(path: Path) -> None:
    np.savez(path, **_arrays())


def _other_key(path: Path) -> None:
    other = cached_arrays("t", {**KEY, "seed": 99}, lambda: _arrays(99), cache_dir=path.parent.parent)
    path.write_bytes(other.path.read_bytes())  # a valid entry, but written for another config


@pytest.mark.parametrize("damage", [_garbage, _truncated, _tampered, _dropped_array, _no_metadata, _other_key])
def test_a_damaged_entry_is_rebuilt_with_a_warning(tmp_path: Path, damage) -> None:
    path = cached_arrays("t", KEY, _arrays, cache_dir=tmp_path).path
    damage(path)
    calls: list[int] = []
    with pytest.warns(RuntimeWarning, match="is invalid .*regenerating"):
        entry = cached_arrays("t", KEY, _counting(calls), cache_dir=tmp_path)
    assert calls == [1] and entry.built and _equal(entry.arrays, _arrays())
    again = cached_arrays("t", KEY, _counting(calls), cache_dir=tmp_path)  # rewritten and trusted again
    assert calls == [1] and not again.built


def test_check_rejects_a_loaded_entry_that_does_not_fit(tmp_path: Path) -> None:
    cached_arrays("t", KEY, _arrays, cache_dir=tmp_path)

    def check(arrays: dict[str, np.ndarray]) -> None:
        if arrays["X"].shape != (6, 4) or "mask" not in arrays:
            raise ValueError("no mask")

    with pytest.warns(RuntimeWarning, match="no mask"):
        entry = cached_arrays("t", KEY, lambda: {**_arrays(), "mask": np.ones(6, bool)}, cache_dir=tmp_path,
                              check=check)
    assert entry.built and "mask" in entry.arrays


def test_a_builder_whose_arrays_fail_the_check_raises_and_writes_nothing(tmp_path: Path) -> None:
    def check(arrays: dict[str, np.ndarray]) -> None:
        raise ValueError("X has the wrong shape")

    with pytest.raises(ValueError, match="wrong shape"):
        cached_arrays("t", KEY, _arrays, cache_dir=tmp_path, check=check)
    assert not cache_path("t", KEY, tmp_path).exists()


def test_an_unwritable_cache_is_skipped_with_a_warning(tmp_path: Path) -> None:
    blocked = tmp_path / "file"
    blocked.write_text("a file where the cache folder should be")
    with pytest.warns(RuntimeWarning, match="could not write cache entry"):
        entry = cached_arrays("t", KEY, _arrays, cache_dir=blocked)
    assert entry.built and _equal(entry.arrays, _arrays())


def test_a_crash_while_writing_leaves_no_entry_and_no_temporary(tmp_path: Path, monkeypatch) -> None:
    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(os, "replace", interrupted)
    with pytest.raises(KeyboardInterrupt):
        cached_arrays("t", KEY, _arrays, cache_dir=tmp_path)
    assert list((tmp_path / "t").iterdir()) == []


def test_entries_hold_no_pickles(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="allow_pickle"):
        cached_arrays("t", KEY, lambda: {"X": np.array([{"a": 1}], dtype=object)}, cache_dir=tmp_path)


def test_cache_dir_from_environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("FIXLAB_CACHE", str(tmp_path / "c"))
    assert default_cache_dir() == tmp_path / "c"
    assert cached_arrays("t", KEY, _arrays).path.parent.parent == tmp_path / "c"
    monkeypatch.delenv("FIXLAB_CACHE")
    assert default_cache_dir() == Path.home() / ".cache" / "fixlab"
