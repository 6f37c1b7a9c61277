"""A JAX project's train state on disk (`projects.common.jax_checkpoint`): a round trip into the
template's structure, and one-line errors for files that do not fit or do not read."""

from __future__ import annotations

from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
from flax import serialization

from projects.common.jax_checkpoint import TrainStateError, load_train_state, save_train_state


def _trees(scale: float = 1.0) -> dict:
    params = {"dense": {"kernel": jnp.full((3, 2), scale), "bias": jnp.zeros(2)}, "scale": jnp.asarray(scale)}
    tx = optax.adam(1e-3)
    state = tx.init(params)
    grads = jax.tree.map(jnp.ones_like, params)
    _, state = tx.update(grads, state, params)
    return {"params": params, "opt_state": state}


def test_round_trip_restores_structure_values_and_record(tmp_path: Path) -> None:
    saved = _trees(2.0)
    save_train_state(tmp_path / "s.msgpack", saved, {"epoch": 3, "shuffle": {"state": 2**100}, "best": -float("inf")})
    trees, record = load_train_state(tmp_path / "s.msgpack", _trees(0.0))
    assert jax.tree.structure(trees["opt_state"]) == jax.tree.structure(saved["opt_state"])
    for a, b in zip(jax.tree.leaves(trees), jax.tree.leaves(saved)):
        assert isinstance(a, jax.Array) and a.dtype == b.dtype and np.array_equal(a, b)
    assert record == {"epoch": 3, "shuffle": {"state": 2**100}, "best": -float("inf")}
    assert [p.name for p in tmp_path.iterdir()] == ["s.msgpack"]  # no temporary left


def test_a_state_of_another_model_is_refused_naming_the_array(tmp_path: Path) -> None:
    save_train_state(tmp_path / "s.msgpack", _trees(), {})
    other = _trees()
    other["params"]["dense"]["kernel"] = jnp.zeros((4, 2))
    with pytest.raises(TrainStateError, match=r"params array \d+ is float32 \(3, 2\), expected float32 \(4, 2\)"):
        load_train_state(tmp_path / "s.msgpack", other)
    with pytest.raises(TrainStateError, match="params has 3 arrays, the model's has 4"):
        load_train_state(tmp_path / "s.msgpack", {"params": {**other["params"], "extra": jnp.ones(1)}})
    with pytest.raises(TrainStateError, match="best_params has none arrays"):
        load_train_state(tmp_path / "s.msgpack", {"best_params": other["params"]})


@pytest.mark.parametrize("content", [b"", b"garbage", None])
def test_unreadable_files_are_one_line_errors(tmp_path: Path, content: bytes | None) -> None:
    path = tmp_path / "s.msgpack"
    if content is None:
        save_train_state(path, _trees(), {})
        path.write_bytes(path.read_bytes()[:100])  # truncated
    else:
        path.write_bytes(content)
    with pytest.raises(TrainStateError, match="not a readable train state") as error:
        load_train_state(path, _trees())
    assert "\n" not in str(error.value)


def test_another_format_and_a_missing_file_are_refused(tmp_path: Path) -> None:
    path = tmp_path / "w.msgpack"
    path.write_bytes(serialization.msgpack_serialize({"format": "something/else", "record": "{}", "trees": {}}))
    with pytest.raises(TrainStateError, match="is not a fixlab.train_state/1 file"):
        load_train_state(path, _trees())
    with pytest.raises(TrainStateError, match="cannot read train state"):
        load_train_state(tmp_path / "missing.msgpack", _trees())
