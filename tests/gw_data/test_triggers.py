"""Triggers: clustering by hand-checked cases and the same answer however they arrive, and trigger
files written whole or not at all, read back checked."""

from __future__ import annotations

import h5py
import numpy as np
import pytest

from jax_modules.gw_data.mlgwsc_format import MLGWSCFormatError
from jax_modules.gw_data.triggers import Clusterer, TriggerWriter, cluster_triggers, read_triggers


def test_the_loudest_within_the_window_is_kept_and_ties_go_to_the_earliest() -> None:
    times = np.array([0.0, 0.5, 1.2, 3.0, 3.9, 5.0])
    stats = np.array([1.0, 3.0, 2.0, 5.0, 5.0, 1.0])
    kept_times, kept_stats = cluster_triggers(times, stats, window=1.0)
    # 0.0 and 1.2 lie within 1 s of 0.5 (louder); 3.9 ties 3.0 (earlier wins); 5.0 is 1.1 s from 3.9.
    np.testing.assert_array_equal(kept_times, [0.5, 3.0, 5.0])
    np.testing.assert_array_equal(kept_stats, [3.0, 5.0, 1.0])


def test_clustering_in_batches_gives_the_answer_of_clustering_all_at_once() -> None:
    rng = np.random.default_rng(0)
    times = np.sort(rng.uniform(0, 200, 600))
    stats = rng.exponential(size=600)
    expected = cluster_triggers(times, stats, window=1.0)
    clusterer, kept = Clusterer(1.0), []
    cuts = np.sort(rng.choice(np.arange(1, 600), 40, replace=False))
    for lo, hi in zip(np.r_[0, cuts], np.r_[cuts, 600]):
        horizon = times[hi] if hi < 600 else 200.0  # no later trigger comes before the next one
        kept.append(clusterer.push(times[lo:hi], stats[lo:hi], horizon))
    kept.append(clusterer.flush())
    np.testing.assert_array_equal(np.concatenate([k[0] for k in kept]), expected[0])
    np.testing.assert_array_equal(np.concatenate([k[1] for k in kept]), expected[1])
    assert len(expected[0]) > 50


def test_the_clusterer_refuses_triggers_out_of_order_and_a_bad_window() -> None:
    clusterer = Clusterer(1.0)
    clusterer.push(np.array([5.0]), np.array([1.0]), 6.0)
    with pytest.raises(ValueError, match="out of order"):
        clusterer.push(np.array([4.0]), np.array([1.0]), 7.0)
    with pytest.raises(ValueError, match="window=0"):
        Clusterer(0)


def test_a_trigger_file_is_written_whole_and_read_back(tmp_path) -> None:
    path = tmp_path / "triggers.hdf"
    with TriggerWriter(path, {"detector": "test"}) as out:
        out.append(np.array([1.0, 2.0]), np.array([0.5, 0.7]), var=0.3)
        out.append(np.array([]), np.array([]), var=0.3)
        out.append(np.array([3.0]), np.array([0.9]), var=0.3)
    got = read_triggers(path)
    np.testing.assert_array_equal(got["time"], [1.0, 2.0, 3.0])
    np.testing.assert_array_equal(got["var"], [0.3, 0.3, 0.3])
    with h5py.File(path) as f:
        assert f.attrs["detector"] == "test"


def test_a_search_that_fails_leaves_no_trigger_file(tmp_path) -> None:
    path = tmp_path / "triggers.hdf"
    with pytest.raises(RuntimeError, match="boom"):
        with TriggerWriter(path) as out:
            out.append(np.array([1.0]), np.array([0.5]), var=0.3)
            raise RuntimeError("boom")
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("datasets, message", [
    ({"time": [1.0], "stat": [1.0]}, "dataset 'var' is missing"),
    ({"time": [1.0, 2.0], "stat": [1.0], "var": [0.1]}, "lengths"),
    ({"time": [1.0], "stat": [np.nan], "var": [0.1]}, "'stat': entry 0 is nan"),
    ({"time": [1.0], "stat": [1.0], "var": [-0.1]}, "'var': entry 0 is -0.1; expected finite values >= 0"),
])
def test_a_malformed_trigger_file_is_one_line_naming_the_dataset(tmp_path, datasets, message) -> None:
    path = tmp_path / "bad.hdf"
    with h5py.File(path, "w") as f:
        for name, values in datasets.items():
            f[name] = np.asarray(values)
    with pytest.raises(MLGWSCFormatError, match=message) as caught:
        read_triggers(path)
    assert str(caught.value).startswith(str(path)) and "\n" not in str(caught.value)
