"""One LightningDataModule for every cvkan domain: `ArraySplits` served as seeded loaders.

With `batch_transform` (e.g. STFT features of waveform batches: the note's "compute per batch"
mode) the inputs are transformed batch by batch in the loader; without it they are served as stored
(the "precomputed" mode).
"""

from __future__ import annotations

from typing import Callable

import numpy as np
import torch
from torch.utils.data import Dataset

from lightning_modules.cvkan.data.splits import ArraySplits
from lightning_modules.seeded_data import SeededDataModule

__all__ = ["CVKANDataModule"]

BatchTransform = Callable[[np.ndarray], np.ndarray]


class _Arrays(Dataset):
    """Index access to (x, y); a batch is collated as numpy, then transformed and made tensors."""

    def __init__(self, x: np.ndarray, y: np.ndarray) -> None:
        self.x, self.y = x, y

    def __len__(self) -> int:
        return len(self.x)

    def __getitems__(self, indices: list[int]) -> tuple[np.ndarray, np.ndarray]:
        idx = np.asarray(indices)
        return self.x[idx], self.y[idx]

    def __getitem__(self, index: int) -> tuple[np.ndarray, np.ndarray]:
        return self.x[index], self.y[index]


class CVKANDataModule(SeededDataModule):
    """Train/val/test loaders of `splits`; the training shuffle is seeded and checkpointed.

    Args:
        splits: the domain's arrays (see `ArraySplits`).
        batch_size: training and evaluation batch size.
        seed: seeds the training shuffle.
        batch_transform: applied to each batch's inputs (numpy in, numpy out), or None.

    Example:
        >>> dm = CVKANDataModule(digits_splits(tokens="patches"), batch_size=64)
    """

    def __init__(self, splits: ArraySplits, *, batch_size: int = 64, seed: int = 0,
                 batch_transform: BatchTransform | None = None) -> None:
        super().__init__(batch_size=batch_size, seed=seed)
        self.splits = splits
        self.batch_transform = batch_transform

    @property
    def n_classes(self) -> int | None:
        """Classes of a classification task; None for regression (forecasting)."""
        return self.splits.n_classes

    def collate(self, batch: tuple[np.ndarray, np.ndarray]) -> tuple[torch.Tensor, torch.Tensor]:
        x, y = batch
        if self.batch_transform is not None:
            x = self.batch_transform(x)
        return torch.from_numpy(np.ascontiguousarray(x)), torch.from_numpy(np.ascontiguousarray(y))

    def dataset(self, split: str) -> Dataset:
        return _Arrays(*self.splits.split(split))

    def example_input(self, n: int = 1) -> np.ndarray:
        """The first `n` training inputs as the model sees them, for a logged model's input example."""
        x = self.splits.x_train[:n]
        return self.batch_transform(x) if self.batch_transform is not None else x
