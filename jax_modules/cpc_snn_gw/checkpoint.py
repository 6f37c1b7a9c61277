"""Model weights as a msgpack file (no pickle): the ModelConfig and the model's pure state dict."""

from __future__ import annotations

import os
from dataclasses import asdict, fields
from pathlib import Path

import jax
import numpy as np
from flax import nnx, serialization

from .config import ModelConfig
from .models import Model, build_model

FORMAT = "fixlab.cpc_snn_gw.weights/1"


class CheckpointError(ValueError):
    """A weights file that cannot be read, or that does not fit the requested model."""


def save_weights(model: nnx.Module, path: str | os.PathLike) -> Path:
    """Write the model's config and state to `path` (written whole, then renamed into place)."""
    cfg = getattr(model, "config", None)
    if not isinstance(cfg, ModelConfig):
        raise ValueError(f"model is a {type(model).__name__} without a ModelConfig `config`; "
                         f"allowed: a model from build_model")
    state = jax.tree_util.tree_map(np.asarray, nnx.to_pure_dict(nnx.state(model)))
    config = {k: list(v) if isinstance(v, tuple) else v for k, v in asdict(cfg).items()}  # msgpack: no tuples
    payload = {"format": FORMAT, "config": config, "state": state}
    path = Path(path)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_bytes(serialization.msgpack_serialize(payload))
    os.replace(tmp, path)
    return path


def load_weights(cfg: ModelConfig, path: str | os.PathLike) -> Model:
    """The model `cfg` describes, with the weights saved at `path`.

    Raises:
        CheckpointError: the file is missing, corrupt, not a weights file, saved for another
            config, or its arrays do not match the model's (names and shapes are listed).
    """
    path = Path(path)
    try:
        payload = serialization.msgpack_restore(path.read_bytes())
    except OSError as err:
        raise CheckpointError(f"cannot read weights file {path}: {err}") from err
    except Exception as err:  # msgpack raises several unrelated types on corrupt input
        raise CheckpointError(f"{path} is not a readable weights file (corrupt or truncated): {err}") from err
    if not isinstance(payload, dict) or payload.get("format") != FORMAT:
        raise CheckpointError(f"{path} is not a {FORMAT} file")
    _check_config(cfg, payload.get("config"), path)
    model = build_model(cfg, seed=0)
    state = nnx.state(model)
    expected = _shapes(nnx.to_pure_dict(state))
    found = _shapes(payload["state"])
    if expected != found:
        missing = sorted(set(expected) - set(found))[:3]
        extra = sorted(set(found) - set(expected))[:3]
        wrong = sorted(k for k in set(expected) & set(found) if expected[k] != found[k])[:3]
        raise CheckpointError(f"{path} does not fit the model: missing {missing}, unexpected {extra}, "
                              f"wrong shape {[(k, found[k], expected[k]) for k in wrong]}")
    nnx.replace_by_pure_dict(state, payload["state"])
    nnx.update(model, state)
    return model


def _check_config(cfg: ModelConfig, saved: object, path: Path) -> None:
    if not isinstance(saved, dict):
        raise CheckpointError(f"{path} holds no model config")
    try:
        saved_cfg = ModelConfig(**saved)
    except (TypeError, ValueError) as err:
        raise CheckpointError(f"{path} holds a config this version cannot read: {err}") from err
    differ = [f.name for f in fields(ModelConfig) if getattr(saved_cfg, f.name) != getattr(cfg, f.name)]
    if differ:
        raise CheckpointError(f"{path} was saved for another config; fields that differ: "
                              + ", ".join(f"{n} (saved {getattr(saved_cfg, n)!r}, asked {getattr(cfg, n)!r})"
                                          for n in differ))


def _shapes(tree: object) -> dict[str, tuple[int, ...]]:
    """Flat {'a/b/0/kernel': shape} of a nested dict of arrays."""
    leaves = jax.tree_util.tree_flatten_with_path(tree)[0]
    return {"/".join(str(getattr(k, "key", k)) for k in keys): tuple(np.shape(v)) for keys, v in leaves}
