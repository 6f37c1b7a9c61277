"""Seeded train/val/test index splits shared by the model packages' data modules."""

from __future__ import annotations

import numpy as np

__all__ = ["check_fractions", "stratified_split"]


def check_fractions(val_fraction: float, test_fraction: float) -> None:
    """Raise ValueError unless both fractions lie in (0, 1) with a sum below 1."""
    if not (0 < val_fraction < 1 and 0 < test_fraction < 1 and val_fraction + test_fraction < 1):
        raise ValueError(f"val_fraction={val_fraction!r}, test_fraction={test_fraction!r} are out of range; "
                         "allowed: both in (0, 1) with a sum below 1")


def stratified_split(y: np.ndarray, *, seed: int, val_fraction: float = 0.15,
                     test_fraction: float = 0.15) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Indices (train, val, test): exact overall fractions, every class spread evenly.

    Samples are ordered by their class-relative rank (rank within a seeded shuffle of the class,
    divided by the class size), so each cut takes about the same share of every class.

    Raises:
        ValueError: if a fraction is out of range or any split would be empty.
    """
    check_fractions(val_fraction, test_fraction)
    y = np.asarray(y)
    rng = np.random.default_rng(seed)
    quantile = np.empty(len(y))
    for c in np.unique(y):
        idx = np.flatnonzero(y == c)
        quantile[rng.permutation(idx)] = np.arange(len(idx)) / len(idx)
    order = np.lexsort((rng.random(len(y)), quantile))
    n_test, n_val = round(len(y) * test_fraction), round(len(y) * val_fraction)
    test, val, train = order[:n_test], order[n_test:n_test + n_val], order[n_test + n_val:]
    if min(len(train), len(val), len(test)) == 0:
        raise ValueError(f"{len(y)} samples are too few to split into train/val/test with "
                         f"val_fraction={val_fraction} and test_fraction={test_fraction}")
    return np.sort(train), np.sort(val), np.sort(test)
