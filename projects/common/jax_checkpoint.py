"""A JAX project's train state on disk: array pytrees and a JSON record, one msgpack file, no pickle.

Pytrees (parameters, optimizer state, ...) are stored leaf by leaf in their flattening order and
read back into the structure of a template of the same model and optimizer, so nothing but arrays,
numbers and strings is ever deserialized. The file is written whole and then renamed into place: a
crash mid-write leaves the previous checkpoint.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any, Mapping

import jax
import jax.numpy as jnp
import numpy as np
from flax import serialization

__all__ = ["FORMAT", "TrainStateError", "save_train_state", "load_train_state"]

FORMAT = "fixlab.train_state/1"


class TrainStateError(ValueError):
    """A train-state file that cannot be read or does not fit the model and optimizer."""


def save_train_state(path: str | os.PathLike, trees: Mapping[str, Any], record: Mapping[str, Any]) -> Path:
    """Write `trees` (name -> pytree of arrays) and `record` (JSON-serializable) to `path`."""
    payload = {
        "format": FORMAT,
        "record": json.dumps(record),
        "trees": {name: {str(i): np.asarray(leaf) for i, leaf in enumerate(jax.tree_util.tree_leaves(tree))}
                  for name, tree in trees.items()},
    }
    path = Path(path)
    tmp = path.with_name(path.name + ".tmp")
    with open(tmp, "wb") as file:
        file.write(serialization.msgpack_serialize(payload))
        file.flush()
        os.fsync(file.fileno())
    os.replace(tmp, path)
    return path


def load_train_state(path: str | os.PathLike, templates: Mapping[str, Any]) -> tuple[dict[str, Any], Any]:
    """The trees saved at `path`, each in the structure of its template, and the record.

    Raises:
        TrainStateError: unreadable, another format, or a tree whose leaves differ from the
            template's in number, shape or dtype (the first difference is named).
    """
    path = Path(path)
    try:
        payload = serialization.msgpack_restore(path.read_bytes())
        record = json.loads(payload["record"])
    except OSError as err:
        raise TrainStateError(f"cannot read train state {path}: {err}") from None
    except Exception as err:  # msgpack and JSON raise several unrelated types on corrupt input
        raise TrainStateError(f"{path} is not a readable train state (corrupt or truncated): {err}") from None
    if payload.get("format") != FORMAT:
        raise TrainStateError(f"{path} is not a {FORMAT} file")
    trees = {name: _restore(name, template, payload["trees"].get(name), path) for name, template in templates.items()}
    return trees, record


def _restore(name: str, template: Any, saved: Mapping[str, np.ndarray] | None, path: Path) -> Any:
    leaves, treedef = jax.tree_util.tree_flatten(template)
    if saved is None or len(saved) != len(leaves):
        found = "none" if saved is None else len(saved)
        raise TrainStateError(f"{path}: {name} has {found} arrays, the model's has {len(leaves)}")
    restored = []
    for i, leaf in enumerate(leaves):
        value = np.asarray(saved[str(i)])
        if value.shape != np.shape(leaf) or value.dtype != np.asarray(leaf).dtype:
            raise TrainStateError(f"{path}: {name} array {i} is {value.dtype} {value.shape}, "
                                  f"expected {np.asarray(leaf).dtype} {np.shape(leaf)}")
        restored.append(jnp.asarray(value) if isinstance(leaf, jax.Array) else value)
    return jax.tree_util.tree_unflatten(treedef, restored)
