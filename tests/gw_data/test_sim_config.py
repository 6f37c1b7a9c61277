"""GWDataConfig: validation names the field and its range; the cache key is stable and complete."""

from __future__ import annotations

import dataclasses

import pytest

from jax_modules.gw_data import config as config_module
from jax_modules.gw_data.chirp import chirp_time
from jax_modules.gw_data.config import GWDataConfig

TINY = dict(n_train=8, n_val=8, n_test=8)


def test_defaults_are_the_quick_run():
    config = GWDataConfig()
    assert (config.n_train, config.n_val, config.n_test) == (2000, 500, 1000)
    assert (config.sample_rate, config.n_samples, config.detectors) == (2048, 2048, ("H1", "L1"))
    assert (config.mass_min, config.mass_max, config.f_lower) == (10.0, 50.0, 20.0)


@pytest.mark.parametrize(
    ("fields", "match"),
    [
        ({"n_train": 7}, r"n_train=7 .*even integer >= 2"),
        ({"n_val": 0}, r"n_val=0 .*even integer >= 2"),
        ({"n_test": 2.0}, r"n_test=2.0 must be an integer"),
        ({"sample_rate": 100}, r"sample_rate=100 .*256 <= sample_rate <= 16384"),
        ({"sample_rate": True}, r"sample_rate=True must be an integer"),
        ({"duration": 0.3}, r"duration=0.3 .*whole number"),
        ({"detectors": ("H1", "X1")}, r"detectors=\('H1', 'X1'\) .*names from"),
        ({"detectors": ("H1", "H1")}, r"detectors=.*no repeated detector"),
        ({"detectors": ()}, r"detectors=\(\) .*non-empty"),
        ({"detectors": "H1"}, r"detectors='H1' must be a sequence"),
        ({"snr_min": 0.0}, r"snr_min=0.0 .*0 < snr_min"),
        ({"snr_min": 10.0, "snr_max": 5.0}, r"snr_max=5.0 .*snr_min <= snr_max"),
        ({"mass_min": 1.0}, r"mass_min=1.0 .*5 <= mass_min <= 100"),
        ({"mass_max": 200.0}, r"mass_max=200.0 .*mass_min <= mass_max <= 100"),
        ({"f_lower": 5.0}, r"f_lower=5.0 .*10 <= f_lower <= 512 Hz"),
        ({"f_lower": float("nan")}, r"f_lower=nan must be a finite number"),
        ({"merger_min": 0.0}, r"merger_min=0.0 .*0.05 <= merger_min"),
        ({"merger_max": 0.99}, r"merger_max=0.99 .*merger_min <= merger_max <= 0.95"),
        ({"whiten_taper": 0.7}, r"whiten_taper=0.7 .*0 <= whiten_taper <= 0.5"),
        ({"keep_clean": "yes"}, r"keep_clean='yes' must be a bool"),
        ({"seed": -1}, r"seed=-1 .*0 <= seed"),
        ({"mass_min": 5.0, "f_lower": 10.0}, r"mass_min=5.0 with f_lower=10.0 needs a 256 s .*at most 64 s"),
    ],
)
def test_invalid_fields_raise_naming_the_field(fields, match):
    with pytest.raises(ValueError, match=match):
        GWDataConfig(**{**TINY, **fields})


def test_segment_holds_the_longest_inspiral_before_the_window():
    for mass_min, f_lower in [(10.0, 20.0), (5.0, 20.0), (30.0, 15.0)]:
        config = GWDataConfig(**TINY, mass_min=mass_min, f_lower=f_lower, mass_max=50.0)
        seconds = config.segment_samples / config.sample_rate
        needed = chirp_time(mass_min, mass_min, f_lower) + config.duration * (1 - config.merger_min)
        assert seconds >= needed
        assert config.segment_samples & (config.segment_samples - 1) == 0  # a power of two


def test_cache_key_is_stable_and_ignores_spelling():
    a = GWDataConfig(**TINY, f_lower=20, detectors=["H1", "L1"])
    b = GWDataConfig(**TINY, f_lower=20.0, detectors=("H1", "L1"))
    assert a == b and a.cache_key() == b.cache_key()
    assert b.f_lower == 20.0 and isinstance(b.f_lower, float) and isinstance(a.detectors, tuple)


@pytest.mark.parametrize(
    "change",
    [
        {"seed": 1},
        {"snr_max": 21.0},
        {"detectors": ("L1", "H1")},
        {"keep_clean": True},
        {"n_test": 10},
        {"gps_time": 1e9},
    ],
)
def test_cache_key_changes_with_every_field(change):
    base = GWDataConfig(**TINY)
    assert dataclasses.replace(base, **change).cache_key() != base.cache_key()


def test_cache_key_changes_with_the_format_version(monkeypatch):
    config = GWDataConfig(**TINY)
    before = config.cache_key()
    monkeypatch.setattr(config_module, "FORMAT_VERSION", config_module.FORMAT_VERSION + 1)
    assert config.cache_key() != before


def test_json_round_trip_and_errors():
    config = GWDataConfig(**TINY, snr_min=5.0, detectors=("H1", "L1", "V1"), keep_clean=True)
    assert GWDataConfig.from_json(config.to_json()) == config
    with pytest.raises(ValueError, match=r"unknown fields \['n_trian'\]; allowed: .*'n_train'"):
        GWDataConfig.from_json('{"n_trian": 8}')
    with pytest.raises(ValueError, match="config is not valid JSON"):
        GWDataConfig.from_json("{n_train: 8")
    with pytest.raises(ValueError, match="config is a JSON list"):
        GWDataConfig.from_json("[8]")


def test_config_is_frozen():
    with pytest.raises(dataclasses.FrozenInstanceError):
        GWDataConfig(**TINY).seed = 3
