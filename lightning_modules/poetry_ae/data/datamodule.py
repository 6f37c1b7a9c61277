"""The poetry autoencoders' LightningDataModule: `PoemArrays` split by seed and served as (x, mask, lengths)."""

from __future__ import annotations


import numpy as np
import torch
from torch.utils.data import Dataset

from lightning_modules.poetry_ae.data.dataset import PoemArrays
from lightning_modules.seeded_data import SeededDataModule
from lightning_modules.splits import check_fractions

__all__ = ["SPLITS", "PoetryDataModule", "random_split"]

SPLITS = ("train", "val", "test")


def random_split(n: int, *, seed: int, val_fraction: float = 0.1,
                 test_fraction: float = 0.1) -> dict[str, np.ndarray]:
    """Sorted indices of a seeded random train/val/test split of `n` items (val and test rounded, >= 1 each).

    Raises:
        ValueError: fractions out of range, or too few items for three non-empty splits.
    """
    check_fractions(val_fraction, test_fraction)
    n_val, n_test = max(1, round(n * val_fraction)), max(1, round(n * test_fraction))
    if n - n_val - n_test < 1:
        raise ValueError(f"{n} sequences are too few to split into train/val/test with val_fraction={val_fraction} "
                         f"and test_fraction={test_fraction}; allowed: at least 3 sequences")
    order = np.random.default_rng(seed).permutation(n)
    return {"train": np.sort(order[n_val + n_test:]), "val": np.sort(order[:n_val]),
            "test": np.sort(order[n_val:n_val + n_test])}


class _Sequences(Dataset):
    """Index access to (x, mask, lengths) rows; a batch is gathered at once."""

    def __init__(self, arrays: PoemArrays, indices: np.ndarray) -> None:
        self.x = torch.from_numpy(np.ascontiguousarray(arrays.x[indices]))
        self.mask = torch.from_numpy(np.ascontiguousarray(arrays.mask[indices]))
        self.lengths = torch.from_numpy(np.ascontiguousarray(arrays.lengths[indices]))

    def __len__(self) -> int:
        return len(self.x)

    def __getitems__(self, indices: list[int]) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        idx = torch.as_tensor(indices, dtype=torch.long)
        return self.x[idx], self.mask[idx], self.lengths[idx]

    def __getitem__(self, index: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        return self.x[index], self.mask[index], self.lengths[index]


class PoetryDataModule(SeededDataModule):
    """Train/val/test loaders of poem sequences: batches (x (B, T, D) float32, mask (B, T) bool, lengths (B,) int64).

    The split is a seeded random permutation of the sequences (`split_indices`); the training
    shuffle is seeded too, and its generator is checkpointed (`state_dict`), so a resumed run sees
    the batches an uninterrupted one would have. Chunks of one poem can land in different splits
    (the note split its sequences, not its poems).

    Args:
        arrays: the sequences (`build_poem_arrays`).
        batch_size: training and evaluation batch size (the note's: 16).
        seed: seeds the split and the training shuffle.
        val_fraction / test_fraction: held-out shares, each in (0, 1) with a sum below 1.

    Raises:
        ValueError: a batch size or fraction out of range, or fewer than 3 sequences.

    Example:
        >>> dm = PoetryDataModule(build_poem_arrays(load_poems(None), load_vectors("minilm")), batch_size=16)
        >>> x, mask, lengths = next(iter(dm.train_dataloader()))
    """

    def __init__(self, arrays: PoemArrays, *, batch_size: int = 16, seed: int = 0, val_fraction: float = 0.1,
                 test_fraction: float = 0.1) -> None:
        super().__init__(batch_size=batch_size, seed=seed)
        self.arrays = arrays
        self._splits = random_split(len(arrays), seed=seed, val_fraction=val_fraction, test_fraction=test_fraction)
        self._datasets = {name: _Sequences(arrays, idx) for name, idx in self._splits.items()}

    @property
    def split_indices(self) -> dict[str, np.ndarray]:
        """Sorted row indices into `arrays` of each split (`train`, `val`, `test`)."""
        return {name: idx.copy() for name, idx in self._splits.items()}

    @property
    def input_dim(self) -> int:
        """D, the word vectors' dimension."""
        return self.arrays.dim

    @property
    def max_len(self) -> int:
        """T, the padded sequence length."""
        return self.arrays.max_len

    def dataset(self, split: str) -> Dataset:
        return self._datasets[split]

    def example_input(self, n: int = 1) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """The first `n` training sequences (x, mask, lengths) as numpy, for a logged model's input example."""
        idx = self._splits["train"][:n]
        return self.arrays.x[idx], self.arrays.mask[idx], self.arrays.lengths[idx]

    def tokens(self, split: str) -> tuple[tuple[str, ...], ...]:
        """The words of each sequence of `split`, in loader order (val/test) or index order (train)."""
        if split not in SPLITS:
            raise ValueError(f"split={split!r} is not allowed; allowed: {', '.join(SPLITS)}")
        return tuple(self.arrays.tokens[i] for i in self._splits[split])
