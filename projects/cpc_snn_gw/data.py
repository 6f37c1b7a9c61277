"""The windows a document-000 run trains and tests on: simulated (cached), or an MLGWSC-1 file."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from projects.cpc_snn_gw.config import CpcGwConfig


@dataclass(frozen=True)
class Windows:
    """Whitened windows of one split: x (N, 2, T) float32, y (N,) int32, snr (N,) float32 (NaN: none/unknown)."""

    x: np.ndarray
    y: np.ndarray
    snr: np.ndarray

    @classmethod
    def of(cls, split: Any) -> "Windows":
        return cls(np.ascontiguousarray(split.x, np.float32), np.asarray(split.y, np.int32),
                   np.asarray(split.snr, np.float32))

    def __len__(self) -> int:
        return len(self.y)

    def take(self, index: np.ndarray) -> "Windows":
        return Windows(self.x[index], self.y[index], self.snr[index])


@dataclass(frozen=True)
class RunData:
    train: Windows
    val: Windows
    test: Windows
    source: str        # for the run's params
    generated: bool    # simulated anew in this run (not from the cache)


def load_run_data(config: CpcGwConfig, progress: bool = True) -> RunData:
    """Simulated H1/L1 windows from the cache (generated on a miss), or the user's MLGWSC-1 files
    split in time order 60/20/20 (no shuffling across time, so neighbouring windows stay together)."""
    if config.data_path:
        from jax_modules.gw_data.mlgwsc import load_mlgwsc

        windows = Windows.of(load_mlgwsc(config.data_path, config.injections_path))
        n = len(windows)
        cut = [int(0.6 * n), int(0.8 * n)]
        parts = np.split(np.arange(n), cut)
        return RunData(*(windows.take(p) for p in parts), source=f"MLGWSC-1 file {config.data_path}",
                       generated=False)
    from jax_modules.gw_data import GWDataConfig, load_or_generate

    data_config = GWDataConfig(n_train=config.n_train, n_val=config.n_val, n_test=config.n_test,
                               snr_min=config.snr_min, snr_max=config.snr_max, seed=config.seed)
    dataset = load_or_generate(data_config, config.cache_path / "gw_data", progress=progress)
    return RunData(Windows.of(dataset.train), Windows.of(dataset.val), Windows.of(dataset.test),
                   source=f"simulated H1/L1, aLIGO ZDHP noise, IMRPhenomD, SNR {config.snr_min:g}-{config.snr_max:g}",
                   generated=dataset.generated)
