"""The windows a document-000 run trains and tests on: simulated (cached), or an MLGWSC-1 file."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

# Light: ripplegw and bilby load only in the generator process `generate_dataset` starts.
from jax_modules.gw_data import GWDataConfig, GWDataset, dataset_arrays, dataset_from_arrays, generate_dataset
from projects.common.data_cache import cached_arrays
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
    data_config = simulated_config(config)
    dataset = _simulated(data_config, config.cache_dir, progress)
    return RunData(Windows.of(dataset.train), Windows.of(dataset.val), Windows.of(dataset.test),
                   source=f"simulated H1/L1, aLIGO ZDHP noise, IMRPhenomD, SNR {config.snr_min:g}-{config.snr_max:g}",
                   generated=dataset.generated)


def simulated_config(config: CpcGwConfig) -> GWDataConfig:
    """The simulated data set a run trains on (when it names no MLGWSC-1 file)."""
    return GWDataConfig(n_train=config.n_train, n_val=config.n_val, n_test=config.n_test,
                        snr_min=config.snr_min, snr_max=config.snr_max, seed=config.seed)


def _simulated(data_config: GWDataConfig, cache_dir: str | None, progress: bool) -> GWDataset:
    """The `GWDataset` for `data_config` from the shared data cache, simulated on a miss; an entry
    whose arrays do not fit the config is rebuilt (with a warning) like any invalid entry."""
    entry = cached_arrays(
        "gw_data",
        data_config.cache_key(),
        build=lambda: dataset_arrays(generate_dataset(data_config, progress=progress)),
        cache_dir=cache_dir,
        check=lambda arrays: dataset_from_arrays(arrays, data_config, generated=False),
    )
    return dataset_from_arrays(entry.arrays, data_config, generated=entry.built, path=entry.path)
