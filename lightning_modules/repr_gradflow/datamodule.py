"""Train/val/test loaders for document 001's data (the generated motif task or the user's `.npz`)."""

from __future__ import annotations

from typing import Any

import lightning as L
import numpy as np
import torch
from torch.utils.data import DataLoader, TensorDataset

__all__ = ["stratified_split", "ReprGradflowDataModule"]


def stratified_split(y: np.ndarray, *, seed: int, val_fraction: float = 0.15,
                     test_fraction: float = 0.15) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Indices (train, val, test): exact overall fractions, every class spread evenly.

    Samples are ordered by their class-relative rank (rank within a seeded shuffle of the class,
    divided by the class size), so each cut takes about the same share of every class.

    Raises:
        ValueError: if a fraction is out of range or any split would be empty.
    """
    if not (0 < val_fraction < 1 and 0 < test_fraction < 1 and val_fraction + test_fraction < 1):
        raise ValueError(f"val_fraction={val_fraction!r}, test_fraction={test_fraction!r} are out of "
                         "range; allowed: both in (0, 1) with a sum below 1")
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


class ReprGradflowDataModule(L.LightningDataModule):
    """Seeded stratified train/val/test split of `(X, y)`, served as deterministic loaders.

    Args:
        x: float inputs (N, T, C).
        y: int labels (N,).
        batch_size: training and evaluation batch size.
        seed: seeds the split and the training shuffle.
        val_fraction / test_fraction: shares of the samples held out.

    The training shuffle draws from one seeded generator whose state is checkpointed
    (`state_dict`), so a run continued from a checkpoint sees the batches an uninterrupted run sees.

    Example:
        >>> dm = ReprGradflowDataModule(*generate_motif_task(MotifTaskConfig(n_samples=120)), batch_size=16)
    """

    def __init__(self, x: np.ndarray, y: np.ndarray, *, batch_size: int = 32, seed: int = 0,
                 val_fraction: float = 0.15, test_fraction: float = 0.15) -> None:
        super().__init__()
        self.x = torch.from_numpy(np.ascontiguousarray(x, dtype=np.float32))
        self.y = torch.from_numpy(np.ascontiguousarray(y, dtype=np.int64))
        self.batch_size = batch_size
        self.seed = seed
        self._shuffle = torch.Generator().manual_seed(seed)
        self.train_idx, self.val_idx, self.test_idx = stratified_split(
            y, seed=seed, val_fraction=val_fraction, test_fraction=test_fraction)

    @property
    def seq_len(self) -> int:
        return int(self.x.shape[1])

    @property
    def n_channels(self) -> int:
        return int(self.x.shape[2])

    def state_dict(self) -> dict[str, Any]:
        return {"shuffle": self._shuffle.get_state()}

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        self._shuffle.set_state(state_dict["shuffle"])

    def _loader(self, idx: np.ndarray, shuffle: bool) -> DataLoader:
        data = TensorDataset(self.x[idx], self.y[idx])
        return DataLoader(data, batch_size=self.batch_size, shuffle=shuffle,
                          generator=self._shuffle if shuffle else None, num_workers=0)

    def train_dataloader(self) -> DataLoader:
        return self._loader(self.train_idx, shuffle=True)

    def val_dataloader(self) -> DataLoader:
        return self._loader(self.val_idx, shuffle=False)

    def test_dataloader(self) -> DataLoader:
        return self._loader(self.test_idx, shuffle=False)

    def example_input(self, n: int = 1) -> np.ndarray:
        """The first `n` training inputs, for a logged model's input example."""
        return self.x[self.train_idx[:n]].numpy()
