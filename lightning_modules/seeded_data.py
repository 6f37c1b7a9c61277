"""`SeededDataModule`: train/val/test loaders whose training shuffle is one seeded generator, carried
in checkpoints, so a resumed run sees the batches an uninterrupted one would have."""

from __future__ import annotations

from typing import Any

import lightning as L
import torch
from torch.utils.data import DataLoader, Dataset

__all__ = ["SeededDataModule"]


class SeededDataModule(L.LightningDataModule):
    """The loaders of a data module whose subclass says what each split holds (`dataset`) and how a
    batch becomes tensors (`collate`, default: as the dataset gives it).

    Args:
        batch_size: training and evaluation batch size.
        seed: seeds the training shuffle.

    Raises:
        ValueError: `batch_size` is not an integer >= 1.
    """

    def __init__(self, *, batch_size: int, seed: int) -> None:
        super().__init__()
        if not (isinstance(batch_size, int) and not isinstance(batch_size, bool) and batch_size >= 1):
            raise ValueError(f"batch_size={batch_size!r} is not allowed; allowed: an integer >= 1")
        self.batch_size = batch_size
        self.seed = seed
        self._shuffle = torch.Generator().manual_seed(seed)

    def dataset(self, split: str) -> Dataset:
        """The dataset of `split` ("train", "val" or "test")."""
        raise NotImplementedError

    def collate(self, batch: Any) -> Any:
        return batch

    def state_dict(self) -> dict[str, Any]:
        return {"shuffle": self._shuffle.get_state()}

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        self._shuffle.set_state(state_dict["shuffle"])

    def _loader(self, split: str, shuffle: bool) -> DataLoader:
        return DataLoader(self.dataset(split), batch_size=self.batch_size, shuffle=shuffle, collate_fn=self.collate,
                          generator=self._shuffle if shuffle else None, num_workers=0)

    def train_dataloader(self) -> DataLoader:
        return self._loader("train", shuffle=True)

    def val_dataloader(self) -> DataLoader:
        return self._loader("val", shuffle=False)

    def test_dataloader(self) -> DataLoader:
        return self._loader("test", shuffle=False)
