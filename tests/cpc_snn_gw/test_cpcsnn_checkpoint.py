"""Weights files: round trip, and clear errors for corrupt, foreign or mismatched files."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import jax
import numpy as np
import pytest
from flax import nnx, serialization

from jax_modules.cpc_snn_gw import (CheckpointError, ModelConfig, build_model, load_weights, make_predict,
                                    save_weights, split_model)

CFG = ModelConfig(kind="cpc_snn", encoder_widths=(8, 16), encoder_strides=(4, 8), latent_dim=16, context_dim=16,
                  snn_hidden=(16,), l2_normalize=True, infonce_weight=1.0, prediction_steps=2)
X = jax.random.normal(jax.random.key(0), (4, 2, 512))


@pytest.fixture(scope="module")
def saved(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, np.ndarray]:
    model = build_model(CFG, seed=5)
    graphdef, params, rest = split_model(model)
    path = save_weights(model, tmp_path_factory.mktemp("weights") / "model.msgpack")
    return path, np.asarray(make_predict(graphdef)(params, rest, X))


def test_round_trip_gives_identical_predictions(saved: tuple[Path, np.ndarray]) -> None:
    path, expected = saved
    graphdef, params, rest = split_model(load_weights(CFG, path))
    predict = make_predict(graphdef)
    np.testing.assert_array_equal(np.asarray(predict(params, rest, X)), expected)
    _, fresh, _ = split_model(build_model(CFG, seed=0))  # what load_weights fills in
    assert not np.array_equal(np.asarray(predict(fresh, rest, X)), expected)


def test_file_is_msgpack_not_pickle(saved: tuple[Path, np.ndarray]) -> None:
    payload = serialization.msgpack_restore(saved[0].read_bytes())
    assert payload["format"] == "fixlab.cpc_snn_gw.weights/1" and payload["config"]["latent_dim"] == 16


def test_truncated_file_is_reported(saved: tuple[Path, np.ndarray], tmp_path: Path) -> None:
    bad = tmp_path / "bad.msgpack"
    bad.write_bytes(saved[0].read_bytes()[:200])
    with pytest.raises(CheckpointError, match="is not a readable weights file"):
        load_weights(CFG, bad)
    with pytest.raises(CheckpointError, match="cannot read weights file"):
        load_weights(CFG, tmp_path / "missing.msgpack")


def test_foreign_msgpack_is_reported(tmp_path: Path) -> None:
    other = tmp_path / "other.msgpack"
    other.write_bytes(serialization.msgpack_serialize({"params": np.zeros(3)}))
    with pytest.raises(CheckpointError, match="is not a fixlab.cpc_snn_gw.weights/1 file"):
        load_weights(CFG, other)


def test_other_config_names_the_differing_fields(saved: tuple[Path, np.ndarray]) -> None:
    with pytest.raises(CheckpointError, match=r"fields that differ: latent_dim \(saved 16, asked 32\)"):
        load_weights(dataclasses.replace(CFG, latent_dim=32), saved[0])


def test_arrays_that_do_not_fit_are_listed(saved: tuple[Path, np.ndarray], tmp_path: Path) -> None:
    payload = serialization.msgpack_restore(saved[0].read_bytes())
    payload["state"]["classifier"]["readout"]["kernel"] = np.zeros((3, 1), np.float32)
    del payload["state"]["predictor"]
    bad = tmp_path / "reshaped.msgpack"
    bad.write_bytes(serialization.msgpack_serialize(payload))
    with pytest.raises(CheckpointError, match=r"missing \['predictor/linear/kernel'\].*classifier/readout/kernel"):
        load_weights(CFG, bad)


def test_save_needs_a_built_model(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="without a ModelConfig `config`"):
        save_weights(nnx.Linear(2, 2, rngs=nnx.Rngs(0)), tmp_path / "x.msgpack")
