"""Names of pytree leaves: JAX key paths joined with "." (e.g. `encoder.convs.0.kernel`).

The optax wrapper (inside `jit`) and the host-side monitor both flatten the parameter tree;
naming and ordering its leaves here, in one place, keeps their per-leaf arrays aligned.
"""

from __future__ import annotations

from typing import Any

import jax
from jax.tree_util import DictKey, FlattenedIndexKey, GetAttrKey, SequenceKey

# Attribute names of the gradient taps that `probe_norms` adds to normalization modules.
TAP_IN, TAP_OUT = "norm_probe_grad_in", "norm_probe_grad_out"
TAP_NAMES = (TAP_IN, TAP_OUT)


def key_name(key: Any) -> str:
    """One path entry as text: a dict key, a sequence index or an attribute name."""
    if isinstance(key, DictKey):
        return str(key.key)
    if isinstance(key, SequenceKey):
        return str(key.idx)
    if isinstance(key, GetAttrKey):
        return key.name
    if isinstance(key, FlattenedIndexKey):
        return str(key.key)
    return str(key)


def path_name(path: tuple[Any, ...]) -> str:
    """A leaf's path joined with ".", without the `value` attribute of an NNX Variable."""
    parts = [key_name(k) for k in path]
    if path and isinstance(path[-1], GetAttrKey) and path[-1].name == "value":
        parts = parts[:-1]
    return ".".join(parts)


def leaf_names(tree: Any) -> list[str]:
    """The names of `tree`'s leaves, in `jax.tree.leaves` order."""
    return [path_name(p) for p, _ in jax.tree_util.tree_flatten_with_path(tree)[0]]


def is_tap(name: str) -> bool:
    """Whether a leaf is a normalization probe's gradient tap rather than a model parameter."""
    return name.rsplit(".", 1)[-1] in TAP_NAMES


def module_of(name: str) -> str:
    """The module path of a leaf: its name without the last part."""
    return name.rsplit(".", 1)[0] if "." in name else ""
