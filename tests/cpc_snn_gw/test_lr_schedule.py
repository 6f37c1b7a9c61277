"""The learning rate over a document-000 run: constant by default, or cosine decay over the run."""

from __future__ import annotations

import pytest

from projects.common.params import ParamError
from projects.cpc_snn_gw.config import CpcGwConfig
from projects.cpc_snn_gw.schedule import FINAL_FRACTION, learning_rate


def test_the_rate_is_constant_by_default():
    assert learning_rate(CpcGwConfig(variant="cpc_fixed", epochs=3), 5e-5, 10) == 5e-5
    assert learning_rate(CpcGwConfig(variant="gw_best", epochs=3), 1e-3, 10) == 1e-3


def test_cosine_falls_from_the_peak_to_its_floor_over_the_run():
    rate = learning_rate(CpcGwConfig(variant="gw_best", epochs=4, lr_schedule="cosine"), 1e-3, 25)  # 100 updates
    assert float(rate(0)) == pytest.approx(1e-3)
    assert float(rate(50)) == pytest.approx(1e-3 * (1 + FINAL_FRACTION) / 2)
    assert float(rate(100)) == pytest.approx(1e-3 * FINAL_FRACTION) and float(rate(500)) == float(rate(100))


def test_an_unknown_schedule_is_a_parameter_error():
    with pytest.raises(ParamError, match="invalid parameter lr_schedule='step'; allowed: one of constant, cosine"):
        CpcGwConfig(lr_schedule="step")
