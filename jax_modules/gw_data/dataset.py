"""The simulated data set: three splits of whitened detector windows with labels and source metadata."""

from __future__ import annotations

from dataclasses import dataclass, fields
from pathlib import Path

import numpy as np

from .config import SPLITS, GWDataConfig

#: dtype of each per-example array of a `Split` (`clean` shares `x`'s).
SPLIT_DTYPES = {"x": np.float32, "y": np.int32, "snr": np.float32, "mass1": np.float32, "mass2": np.float32}


@dataclass(frozen=True, eq=False)
class Split:
    """One split. Noise-only examples have `y == 0` and NaN `snr`, `mass1`, `mass2`.

    Args:
        x: (N, n_detectors, n_samples) float32 whitened strain, roughly unit variance.
        y: (N,) int32, 1 where a signal is injected.
        snr: (N,) float32 optimal network SNR the injection was scaled to.
        mass1, mass2: (N,) float32 component masses [M_sun], mass1 >= mass2.
        clean: (N, n_detectors, n_samples) float32 whitened noise-free signal (zeros for noise),
            present only when the config asked for it (`keep_clean`).

    Raises:
        ValueError: an array has the wrong dtype, rank or length.
    """

    x: np.ndarray
    y: np.ndarray
    snr: np.ndarray
    mass1: np.ndarray
    mass2: np.ndarray
    clean: np.ndarray | None = None

    def __post_init__(self) -> None:
        n = len(self.x)
        for name, dtype in SPLIT_DTYPES.items():
            array = getattr(self, name)
            ndim = 3 if name == "x" else 1
            if not isinstance(array, np.ndarray) or array.dtype != dtype or array.ndim != ndim or len(array) != n:
                got = f"{array.dtype} {array.shape}" if isinstance(array, np.ndarray) else type(array).__name__
                raise ValueError(f"Split.{name} is {got}; allowed: {np.dtype(dtype)} with {ndim} axes and {n} rows")
        if self.clean is not None and (self.clean.dtype != np.float32 or self.clean.shape != self.x.shape):
            raise ValueError(f"Split.clean is {self.clean.dtype} {self.clean.shape}; allowed: float32 {self.x.shape}")

    def __len__(self) -> int:
        return len(self.x)

    def arrays(self) -> dict[str, np.ndarray]:
        """The per-example arrays by field name (`clean` only when present)."""
        return {f.name: getattr(self, f.name) for f in fields(self) if getattr(self, f.name) is not None}


@dataclass(frozen=True, eq=False)
class GWDataset:
    """Train/val/test splits, the config they were simulated from and the PSD used for whitening.

    Args:
        train, val, test: the splits, disjoint and deterministic for `config.seed`.
        config: what was simulated.
        psd: (n_samples // 2 + 1,) float64 one-sided PSD [1/Hz] on the window's rfft grid.
        generated: True if simulated by this call, False if read from the cache.
        path: the cache entry it lives in, if any.
    """

    train: Split
    val: Split
    test: Split
    config: GWDataConfig
    psd: np.ndarray
    generated: bool
    path: Path | None = None

    def splits(self) -> dict[str, Split]:
        """The splits by name, in `SPLITS` order."""
        return {name: getattr(self, name) for name in SPLITS}
