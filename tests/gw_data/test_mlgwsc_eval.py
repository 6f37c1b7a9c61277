"""MLGWSC-1's evaluation on cases worked out by hand: which events find which injection, the false-alarm
rate from the background, the sensitive volume and distance (uniform and chirp-distance weighting),
what counts as resolved, and files that do not belong together."""

from __future__ import annotations

import math
from pathlib import Path

import h5py
import numpy as np
import pytest

from jax_modules.gw_data.mlgwsc_eval import (SECONDS_PER_MONTH, evaluate_files, found_stat, injections_inside,
                                             sensitivity)
from jax_modules.gw_data.mlgwsc_format import MLGWSCFormatError
from jax_modules.gw_data.triggers import TriggerWriter

TC = np.array([100.0, 200.0, 300.0, 400.0])
DISTANCE = np.array([100.0, 200.0, 300.0, 400.0])
# time, stat, var
EVENTS = np.array([
    [100.1, 5.0, 0.3],   # finds injection 0
    [100.5, 9.0, 0.3],   # 0.5 s from it: a false positive, however loud
    [200.2, 3.0, 0.3],   # finds injection 1 ...
    [200.25, 7.0, 0.3],  # ... and again, louder: counted once, at 7
    [350.0, 8.0, 0.3],   # between injections 2 and 3
    [399.9, 2.0, 0.05],  # 0.1 s from injection 3, beyond its own var
]).T
BACKGROUND = np.array([6.0, 1.0, 8.0, 4.0, 6.0])


def _foreground() -> dict[str, np.ndarray]:
    return dict(zip(("time", "stat", "var"), EVENTS))


def test_each_injection_is_found_by_its_loudest_event_within_var() -> None:
    np.testing.assert_array_equal(found_stat(*EVENTS, TC), [5.0, 7.0, -np.inf, -np.inf])


def test_the_curve_counts_background_above_and_injections_found_above_each_threshold() -> None:
    curve = sensitivity(_foreground(), BACKGROUND, {"tc": TC, "distance": DISTANCE}, duration=1000.0)
    np.testing.assert_array_equal(curve.threshold, [1, 4, 6, 6, 8])
    np.testing.assert_allclose(curve.far, np.array([4, 3, 1, 1, 0]) / 1000.0)
    np.testing.assert_array_equal(curve.n_found, [2, 2, 1, 1, 0])
    v_max = 4 / 3 * math.pi * 400.0 ** 3
    np.testing.assert_allclose(curve.volume, v_max * np.array([2, 2, 1, 1, 0]) / 4)
    np.testing.assert_allclose(curve.distance, 400.0 * (np.array([2, 2, 1, 1, 0]) / 4) ** (1 / 3))
    np.testing.assert_allclose(curve.volume_error[0], v_max / 4 * math.sqrt(4 * (0.5 - 0.25)))


def test_a_rate_is_read_at_the_lowest_threshold_under_it_and_only_when_resolved() -> None:
    curve = sensitivity(_foreground(), BACKGROUND, {"tc": TC, "distance": DISTANCE}, duration=1000.0)
    per_month = SECONDS_PER_MONTH / 1000.0  # one false alarm in 1000 s
    point = curve.at_far(3 * per_month)
    assert point.resolved and point.threshold == 4 and point.found_fraction == 0.5
    assert point.distance == pytest.approx(400.0 * 0.5 ** (1 / 3))
    point = curve.at_far(1.5 * per_month)
    assert point.threshold == 6 and point.measured_far_per_month == pytest.approx(per_month)
    assert point.distance == pytest.approx(400.0 * 0.25 ** (1 / 3))
    unresolved = curve.at_far(0.5 * per_month)  # under one false alarm in the background
    assert not unresolved.resolved and math.isnan(unresolved.distance)


def test_chirp_distance_injections_are_weighted_by_chirp_mass_to_the_5_2() -> None:
    # Equal masses: M_c = m 2^(-1/5). Found: the 20 + 20 binary only (stat 5 > threshold 1).
    m = np.array([20.0, 40.0])
    injections = {"tc": np.array([100.0, 200.0]), "distance": np.array([500.0, 800.0]),
                  "chirp_distance": np.array([150.0, 150.0]), "mass1": m, "mass2": m}
    events = {"time": np.array([100.0]), "stat": np.array([5.0]), "var": np.array([0.3])}
    curve = sensitivity(events, np.array([1.0]), injections, duration=100.0)
    weights = (m * 2 ** -0.2) ** 2.5
    assert curve.volume[0] == pytest.approx(4 / 3 * math.pi * 800.0 ** 3 / (weights.max() * 2) * weights[0])


def test_injections_near_a_segment_end_do_not_count() -> None:
    inside = injections_inside(np.array([29.0, 31.0, 969.0, 971.0, 1500.0]), [(0.0, 1000.0)])
    np.testing.assert_array_equal(inside, [False, True, True, False, False])


def _strain(path: Path, start: float, seconds: int) -> Path:
    with h5py.File(path, "w") as f:
        for det in ("H1", "L1"):
            ds = f.create_group(det).create_dataset(str(int(start)), data=np.zeros(seconds * 16))
            ds.attrs["start_time"], ds.attrs["delta_t"] = start, 1 / 16
    return path


def _injections(path: Path, tc: np.ndarray, distance: bool = True) -> Path:
    with h5py.File(path, "w") as f:
        f["tc"], f["mass1"], f["mass2"] = tc, np.full(len(tc), 30.0), np.full(len(tc), 20.0)
        if distance:
            f["distance"] = np.full(len(tc), 1000.0)
    return path


def _triggers(path: Path, times: list[float], stat: float = 1.0) -> Path:
    with TriggerWriter(path) as out:
        out.append(np.array(times), np.full(len(times), stat), var=0.3)
    return path


def test_files_that_belong_together_evaluate(tmp_path) -> None:
    fg, bg = _strain(tmp_path / "fg.hdf", 1000.0, 200), _strain(tmp_path / "bg.hdf", 1000.0, 200)
    curve = evaluate_files(_injections(tmp_path / "inj.hdf", np.array([1020.0, 1050.0, 1100.0])), fg,
                           _triggers(tmp_path / "t_fg.hdf", [1050.1], stat=2.0),
                           _triggers(tmp_path / "t_bg.hdf", [1010.0, 1090.0]), bg)
    assert curve.n_injections == 2 and curve.duration == 200.0  # 1020 lies within 30 s of the start
    np.testing.assert_array_equal(curve.n_found, [1, 1])  # 1050 is found above both background stats (1)
    np.testing.assert_allclose(curve.far, [0.0, 0.0])


@pytest.mark.parametrize("case, message", [
    ("another span", r"inj.hdf: none of its 2 merger times lies 30 s inside a segment of .*fg.hdf"),
    ("no distance", r"inj.hdf: dataset 'distance' is missing"),
    ("foreign triggers", r"t_fg.hdf: 1 triggers lie outside the segments of .*fg.hdf \(the first at GPS 5000.000\)"),
])
def test_files_that_do_not_belong_together_are_one_line_naming_the_file(tmp_path, case, message) -> None:
    fg = _strain(tmp_path / "fg.hdf", 1000.0, 200)
    tc = np.array([9000.0, 9100.0]) if case == "another span" else np.array([1050.0, 1100.0])
    injections = _injections(tmp_path / "inj.hdf", tc, distance=case != "no distance")
    fg_triggers = _triggers(tmp_path / "t_fg.hdf", [5000.0] if case == "foreign triggers" else [1050.0])
    with pytest.raises(MLGWSCFormatError, match=message) as caught:
        evaluate_files(injections, fg, fg_triggers, _triggers(tmp_path / "t_bg.hdf", [1010.0]))
    assert "\n" not in str(caught.value)
