"""The audio domain's two feature modes (claim 003-h): STFT precomputed once, or computed per batch.

`audio_feature_data` makes the data module of either mode; `time_feature_modes` measures the
time per epoch spent getting feature batches in each, for a benchmark to compare.
"""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass
from functools import partial
from typing import Any

from lightning_modules.cvkan.data.cache import ArrayCache
from lightning_modules.cvkan.data.datamodule import CVKANDataModule
from lightning_modules.cvkan.data.splits import ArraySplits
from lightning_modules.cvkan.data.stft import StftConfig, precomputed_stft, stft_features

__all__ = ["FeatureTiming", "audio_feature_data", "time_feature_modes"]


def audio_feature_data(waveforms: ArraySplits, stft: StftConfig = StftConfig(), *, precompute: bool = True,
                       batch_size: int = 64, seed: int = 0, cache: ArrayCache | None = None,
                       source_key: dict[str, Any] | None = None) -> CVKANDataModule:
    """The data module serving STFT tokens of `waveforms` ((n, length, 1) splits).

    precompute: features computed once (cached through `cache` under `source_key` when both are
        given); otherwise each batch's features are computed in the loader, every epoch.
    """
    if precompute:
        features = precomputed_stft(waveforms, stft, cache=cache, source_key=source_key)
        return CVKANDataModule(features, batch_size=batch_size, seed=seed)
    return CVKANDataModule(waveforms, batch_size=batch_size, seed=seed,
                           batch_transform=partial(stft_features, config=stft))


@dataclass(frozen=True)
class FeatureTiming:
    """Seconds: one-time precomputation, and one training epoch of batches in each mode (mean)."""

    precompute_s: float
    precomputed_epoch_s: float
    per_batch_epoch_s: float
    epochs: int
    n_train: int

    @property
    def epoch_speedup(self) -> float:
        """Per-batch epoch time over precomputed epoch time."""
        return self.per_batch_epoch_s / max(self.precomputed_epoch_s, 1e-12)

    def to_dict(self) -> dict[str, float]:
        return {**asdict(self), "epoch_speedup": self.epoch_speedup}


def _epoch_seconds(dm: CVKANDataModule) -> float:
    start = time.perf_counter()
    for _ in dm.train_dataloader():
        pass
    return time.perf_counter() - start


def time_feature_modes(waveforms: ArraySplits, stft: StftConfig = StftConfig(), *, batch_size: int = 64,
                       epochs: int = 2, seed: int = 0) -> FeatureTiming:
    """Time both modes over `epochs` training epochs of `waveforms` (no cache: the cost itself is measured)."""
    if not (isinstance(epochs, int) and epochs >= 1):
        raise ValueError(f"epochs={epochs!r} is not allowed; allowed: an integer >= 1")
    start = time.perf_counter()
    pre = audio_feature_data(waveforms, stft, precompute=True, batch_size=batch_size, seed=seed)
    precompute_s = time.perf_counter() - start
    raw = audio_feature_data(waveforms, stft, precompute=False, batch_size=batch_size, seed=seed)
    pre_s = [_epoch_seconds(pre) for _ in range(epochs)]
    raw_s = [_epoch_seconds(raw) for _ in range(epochs)]
    return FeatureTiming(precompute_s, sum(pre_s) / epochs, sum(raw_s) / epochs, epochs, len(waveforms.x_train))
