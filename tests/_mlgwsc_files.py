"""Small MLGWSC-1-format files the tests write (the real ones are gigabytes)."""

from __future__ import annotations

from pathlib import Path

import h5py
import numpy as np


def strain_file(path: Path, seconds: int = 8, rate: int = 2048) -> Path:
    """A strain file of white noise: one segment per detector (H1, L1)."""
    rng = np.random.default_rng(0)
    with h5py.File(path, "w") as f:
        for det in ("H1", "L1"):
            ds = f.create_group(det).create_dataset("1238166018", data=rng.normal(size=seconds * rate) * 1e-21)
            ds.attrs["start_time"], ds.attrs["delta_t"] = 1238166018.0, 1.0 / rate
    return path
