"""Train/val/test arrays of one domain, and the seeded index splits that make them."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Mapping

import numpy as np

from lightning_modules.splits import check_fractions, stratified_split

__all__ = ["SPLITS", "ArraySplits", "stratified_split", "check_fractions"]

SPLITS = ("train", "val", "test")


@dataclass(frozen=True)
class ArraySplits:
    """One domain's data: inputs `x_*` (float32 or complex64, (n, tokens, features)) and targets `y_*`.

    Targets are int64 labels (n,) when `n_classes` is set, else float32 regression targets.
    `from_cache` says whether the arrays were read from a disk cache; `meta` holds small facts about
    them (feature names, normalization statistics, class names).
    """

    x_train: np.ndarray
    y_train: np.ndarray
    x_val: np.ndarray
    y_val: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray
    n_classes: int | None = None
    from_cache: bool = False
    meta: Mapping[str, Any] = field(default_factory=dict)

    def split(self, name: str) -> tuple[np.ndarray, np.ndarray]:
        """(x, y) of split `name` (`train`, `val` or `test`)."""
        if name not in SPLITS:
            raise ValueError(f"split={name!r} is not allowed; allowed: {', '.join(SPLITS)}")
        return getattr(self, f"x_{name}"), getattr(self, f"y_{name}")

    def arrays(self) -> dict[str, np.ndarray]:
        """The six arrays by name (`x_train`, `y_train`, ...), e.g. to store in a cache."""
        return {f"{xy}_{s}": getattr(self, f"{xy}_{s}") for s in SPLITS for xy in ("x", "y")}

    @classmethod
    def from_arrays(cls, arrays: Mapping[str, np.ndarray], **kwargs: Any) -> "ArraySplits":
        """The splits from `arrays()`-style names; `kwargs` set the other fields."""
        return cls(**{f"{xy}_{s}": arrays[f"{xy}_{s}"] for s in SPLITS for xy in ("x", "y")}, **kwargs)

    @property
    def token_shape(self) -> tuple[int, ...]:
        """The shape of one input: (tokens, features)."""
        return tuple(self.x_train.shape[1:])
