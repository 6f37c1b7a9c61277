"""Train/val/test loaders for document 001's data (the generated motif task or the user's `.npz`)."""

from __future__ import annotations

from typing import Any

import lightning as L
import numpy as np
import torch
from torch.utils.data import DataLoader, TensorDataset

from lightning_modules.splits import stratified_split

__all__ = ["stratified_split", "ReprGradflowDataModule"]


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
