"""`PUDataModule`: PU patches split by micrograph, normalized once, served as FixMatch batches.

Micrographs, not patches, are split into train, validation and test, so no particle is seen in two
splits. One `ConsistentNormalizer` is fitted on the training patches and applied to all three (the
document's fix). A training batch is a dict of two batches drawn side by side (Lightning's
`CombinedLoader`, the unlabeled loader setting the epoch's length and the labeled one cycling):
`{"positive": (x,), "unlabeled": (x, y)}`; the unlabeled patches' true class `y` is never trained
on, only used to report how right the pseudo-labels were. Validation and test batches are `(x, y)`
with every patch's true class.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np
import torch
from lightning.pytorch.utilities import CombinedLoader
from torch.utils.data import DataLoader, Dataset, TensorDataset, default_collate

from lightning_modules.fixmatch_pu.data.patches import ConsistentNormalizer, PUArrays
from lightning_modules.seeded_data import SeededDataModule

__all__ = ["PUSplits", "split_by_micrograph", "PUDataModule"]


@dataclass(frozen=True, eq=False)
class PUSplits:
    """Train, validation and test patches (normalized) and the normalizer fitted on train."""

    train: PUArrays
    val: PUArrays
    test: PUArrays
    normalizer: ConsistentNormalizer

    @property
    def prior(self) -> float:
        """The share of particles among the unlabeled training patches: the prior the data imply."""
        return self.train.prior


def _subset(arrays: PUArrays, keep: np.ndarray) -> PUArrays:
    return replace(arrays, x=arrays.x[keep], y=arrays.y[keep], labeled=arrays.labeled[keep],
                   micrograph=arrays.micrograph[keep])


def split_by_micrograph(arrays: PUArrays, *, n_val: int, n_test: int) -> PUSplits:
    """The last `n_test` micrographs as test, the `n_val` before them as validation, the rest train;
    patches normalized with statistics of the training patches only.

    Raises:
        ValueError: fewer than n_val + n_test + 1 micrographs, or a split without both classes.
    """
    ids = np.unique(arrays.micrograph)
    if n_val < 1 or n_test < 1 or len(ids) < n_val + n_test + 1:
        raise ValueError(f"{len(ids)} micrographs cannot be split into {n_val} validation and {n_test} test "
                         "micrographs and at least one for training; allowed: n_val, n_test >= 1 and "
                         "n_val + n_test < the number of micrographs")
    test_ids, val_ids = ids[len(ids) - n_test:], ids[len(ids) - n_test - n_val:len(ids) - n_test]
    parts = {"train": ~np.isin(arrays.micrograph, np.concatenate([val_ids, test_ids])),
             "val": np.isin(arrays.micrograph, val_ids), "test": np.isin(arrays.micrograph, test_ids)}
    subsets = {name: _subset(arrays, keep) for name, keep in parts.items()}
    for name, part in subsets.items():
        if len(np.unique(part.y)) < 2:
            raise ValueError(f"the {name} micrographs hold patches of one class only; allowed: particles and "
                             "background in every split")
    if not subsets["train"].labeled.any():
        raise ValueError("no labeled particle in the training micrographs; allowed: labeled_fraction > 0 with "
                         "particles on the training micrographs")
    normalizer = ConsistentNormalizer().fit(subsets["train"].x)
    normalized = {name: replace(part, x=normalizer(part.x)) for name, part in subsets.items()}
    return PUSplits(normalized["train"], normalized["val"], normalized["test"], normalizer)


def _tensor(x: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(np.ascontiguousarray(x[:, None], dtype=np.float32))


class PUDataModule(SeededDataModule):
    """FixMatch batches of labeled positives and unlabeled patches; evaluation on every patch's truth.

    Args:
        splits: the normalized splits.
        batch_size: unlabeled patches per training batch, and the evaluation batch size.
        positive_batch_size: labeled positives per training batch.
        seed: seeds the training shuffle (both loaders draw from one checkpointed generator).
    """

    def __init__(self, splits: PUSplits, *, batch_size: int = 64, positive_batch_size: int = 16,
                 seed: int = 0) -> None:
        super().__init__(batch_size=batch_size, seed=seed)
        if not (isinstance(positive_batch_size, int) and positive_batch_size >= 1):
            raise ValueError(f"positive_batch_size={positive_batch_size!r} is not allowed; allowed: an integer >= 1")
        self.splits = splits
        self.positive_batch_size = positive_batch_size

    def dataset(self, split: str) -> Dataset:
        part: PUArrays = getattr(self.splits, split)
        return TensorDataset(_tensor(part.x), torch.from_numpy(part.y.astype(np.float32)))

    def collate(self, batch: list) -> list[torch.Tensor]:
        return default_collate(batch)

    def train_dataloader(self) -> CombinedLoader:
        train = self.splits.train
        positive = TensorDataset(_tensor(train.x[train.labeled]))
        unlabeled = TensorDataset(_tensor(train.x[~train.labeled]),
                                  torch.from_numpy(train.y[~train.labeled].astype(np.float32)))
        loaders = {"positive": DataLoader(positive, batch_size=self.positive_batch_size, shuffle=True,
                                          generator=self._shuffle, drop_last=len(positive) > self.positive_batch_size),
                   "unlabeled": DataLoader(unlabeled, batch_size=self.batch_size, shuffle=True,
                                           generator=self._shuffle, drop_last=len(unlabeled) > self.batch_size)}
        return CombinedLoader(loaders, mode="max_size_cycle")

    def example_input(self, n: int = 2) -> np.ndarray:
        """`n` validation patches (n, 1, H, W), the registered model's input example."""
        return self.splits.val.x[:n, None].astype(np.float32)
