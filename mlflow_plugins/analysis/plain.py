"""Rule states as plain Python values and back: what a checkpoint can hold without pickle.

`to_plain` turns numpy arrays, tuples and sets into tagged dicts and lists of numbers and
strings (JSON-able, and loadable by `torch.load(weights_only=True)`); `from_plain` undoes it.
"""

from __future__ import annotations

from typing import Any

import numpy as np

_TAG = "__fixlab__"


def to_plain(value: Any) -> Any:
    """`value` with numpy arrays and scalars, tuples and sets as tagged plain values."""
    if isinstance(value, np.ndarray):
        return {_TAG: "ndarray", "dtype": value.dtype.str, "shape": list(value.shape),
                "data": value.ravel().tolist()}
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, dict):
        return {str(k): to_plain(v) for k, v in value.items()}
    if isinstance(value, tuple):
        return {_TAG: "tuple", "items": [to_plain(v) for v in value]}
    if isinstance(value, (set, frozenset)):
        return {_TAG: "frozenset", "items": [to_plain(v) for v in sorted(value, key=repr)]}
    if isinstance(value, list):
        return [to_plain(v) for v in value]
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    raise TypeError(f"a rule state holds a {type(value).__name__}; allowed: numbers, strings, "
                    "None, lists, tuples, dicts, sets and numpy arrays")


def from_plain(value: Any) -> Any:
    """The value `to_plain` was given."""
    if isinstance(value, list):
        return [from_plain(v) for v in value]
    if not isinstance(value, dict):
        return value
    kind = value.get(_TAG)
    if kind == "ndarray":
        return np.asarray(value["data"], dtype=np.dtype(value["dtype"])).reshape(value["shape"])
    if kind == "tuple":
        return tuple(from_plain(v) for v in value["items"])
    if kind == "frozenset":
        return frozenset(from_plain(v) for v in value["items"])
    return {k: from_plain(v) for k, v in value.items()}
