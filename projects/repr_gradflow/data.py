"""The data of a document-001 run: the user's `.npz`, or the generated motif task from the shared cache."""

from __future__ import annotations

import numpy as np

from lightning_modules.repr_gradflow import MotifTaskConfig, ReprGradflowDataModule, generate_motif_task, load_npz
from projects.common.data_cache import cached_arrays
from projects.repr_gradflow.config import ReprGradflowConfig

__all__ = ["CACHE_NAME", "motif_task", "motif_task_arrays", "datamodule"]

CACHE_NAME = "repr_gradflow_motifs"


def motif_task(config: ReprGradflowConfig) -> MotifTaskConfig:
    """The generated task of `config`."""
    return MotifTaskConfig(n_samples=config.n_samples, n_classes=config.n_classes, seq_len=config.seq_len,
                           n_channels=config.n_channels, seed=config.seed)


def motif_task_arrays(task: MotifTaskConfig, cache_dir: str | None = None) -> tuple[np.ndarray, np.ndarray]:
    """`generate_motif_task(task)` through the disk cache keyed by `task`."""
    shape = (task.n_samples, task.seq_len, task.n_channels)

    def check(arrays: dict[str, np.ndarray]) -> None:
        x, y = arrays.get("X"), arrays.get("y")
        if x is None or y is None or x.shape != shape or x.dtype != np.float32 or y.shape != shape[:1] \
                or y.dtype != np.int64:
            raise ValueError(f"arrays {sorted(arrays)} do not fit the task: expected X float32 {shape}, "
                             f"y int64 {shape[:1]}")

    def build() -> dict[str, np.ndarray]:
        x, y = generate_motif_task(task)
        return {"X": x, "y": y}

    entry = cached_arrays(CACHE_NAME, task.to_dict(), build, cache_dir=cache_dir, check=check)
    return entry.arrays["X"], entry.arrays["y"]


def datamodule(config: ReprGradflowConfig) -> ReprGradflowDataModule:
    """The run's data module: `config.data_path` if given, else the (cached) generated task."""
    if config.data_path:
        x, y = load_npz(config.data_path, n_classes=config.n_classes)
    else:
        x, y = motif_task_arrays(motif_task(config), config.cache_dir)
    return ReprGradflowDataModule(x, y, batch_size=config.batch_size, seed=config.seed)
