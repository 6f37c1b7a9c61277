"""Fresh training windows in document 000's runs: the parameters, the SNR curriculum, and epochs that
are new every time yet the same for a seed and after a resume (the train state's numpy stream)."""

from __future__ import annotations

import numpy as np
import pytest

from _entry import assert_rejected, run_main
from _waveform_bank import CONFIG, synthetic_bank
from jax_modules.gw_data.online import FreshWindows
from projects.common.params import ParamError
from projects.cpc_snn_gw.config import FRESH_BY_DEFAULT, CpcGwConfig
from projects.cpc_snn_gw.data import FreshTraining
from projects.cpc_snn_gw.train import main


@pytest.mark.parametrize("fields, name, allowed", [
    (dict(fresh_data=True, data_path="s.hdf", injections_path="i.hdf"), "fresh_data", "false with data_path"),
    (dict(variant="cpc_fixed", train_snr_min=4.0), "train_snr_min", "empty unless fresh_data is true"),
    (dict(variant="gw_best", fresh_data=False, train_snr_max=20.0), "train_snr_max", "empty unless fresh_data"),
    (dict(variant="cpc_fixed", curriculum_epochs=5), "curriculum_epochs", "0 unless fresh_data is true"),
    (dict(fresh_data=True, train_snr_min=16.0), "train_snr_max", "a number > train_snr_min = 16.0"),
    (dict(fresh_data=True, curriculum_factor=0.5), "curriculum_factor", "a number >= 1"),
])
def test_fresh_data_fields_are_checked(fields, name, allowed):
    with pytest.raises(ParamError, match=rf"invalid parameter {name}=.*; allowed: {allowed}"):
        CpcGwConfig(**fields)


@pytest.mark.parametrize("args, name, allowed", [
    (["--fresh_data", "sometimes"], "fresh_data", "true or false"),
    (["--waveform_bank", "0"], "waveform_bank", "an integer from 1"),
    (["--train_snr_min", "-3"], "train_snr_min", "a finite number > 0"),
    (["--curriculum_epochs", "1.5"], "curriculum_epochs", "an integer"),
    (["--curriculum_factor", "0.9"], "curriculum_factor", "a finite number >= 1"),
])
def test_bad_fresh_data_parameters_are_one_line_and_no_run(args, name, allowed, tmp_path, monkeypatch, capsys):
    store = tmp_path / "untouched.db"
    assert_rejected(run_main(main, args, store, monkeypatch, capsys), name, allowed, store)


def test_fresh_data_defaults_to_the_variant_and_only_on_simulated_data():
    assert "gw_best" in FRESH_BY_DEFAULT and "cpc_fixed" not in FRESH_BY_DEFAULT
    assert CpcGwConfig(variant="gw_best").uses_fresh_data
    assert not CpcGwConfig(variant="cpc_fixed").uses_fresh_data
    assert CpcGwConfig(variant="cpc_fixed", fresh_data=True).uses_fresh_data
    assert not CpcGwConfig(variant="gw_best", fresh_data=False).uses_fresh_data
    assert not CpcGwConfig(variant="gw_best", data_path="s.hdf", injections_path="i.hdf").uses_fresh_data


def test_curriculum_lowers_the_snrs_linearly_to_the_training_range():
    config = CpcGwConfig(variant="gw_best", train_snr_min=4.0, train_snr_max=16.0, curriculum_epochs=5,
                         curriculum_factor=3.0)
    assert [config.training_snr(e) for e in (1, 2, 5, 6, 50)] == [(12.0, 48.0), (10.0, 40.0), (4.0, 16.0),
                                                                 (4.0, 16.0), (4.0, 16.0)]
    assert CpcGwConfig(variant="gw_best").training_snr(1) == (5.0, 15.0)  # no curriculum: snr_min..snr_max


def test_epochs_are_new_the_same_for_a_seed_and_the_same_after_a_resume():
    config = CpcGwConfig(variant="gw_best", n_train=64, batch_size=16, curriculum_epochs=3)
    fresh = FreshTraining(FreshWindows(synthetic_bank(), CONFIG), config)
    rng = np.random.default_rng(config.seed)
    first = fresh.epoch(rng, 1)
    checkpoint = rng.bit_generator.state            # what TrainState.shuffle holds after epoch 1
    second = fresh.epoch(rng, 2)
    assert len(first) == 64 and first.y.sum() == 32 and np.abs(first.x - second.x).mean() > 0.5
    for windows, (low, high) in ((first, (10.0, 30.0)), (second, (7.5, 22.5))):   # curriculum x2, then x1.5
        assert low <= np.nanmin(windows.snr) and np.nanmax(windows.snr) <= high
    again = np.random.default_rng(config.seed)
    assert fresh.epoch(again, 1).x.tobytes() == first.x.tobytes()
    resumed = np.random.Generator(np.random.PCG64())
    resumed.bit_generator.state = checkpoint
    assert fresh.epoch(resumed, 2).x.tobytes() == second.x.tobytes()
