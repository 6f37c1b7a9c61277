"""The windows a document-000 run trains and tests on: simulated (cached), or an MLGWSC-1 file; with
fresh data, training windows drawn anew every epoch around a cached waveform bank."""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any

import numpy as np

# Light: ripplegw and bilby load only in the generator process `generate_dataset` starts.
from jax_modules.gw_data import GWDataConfig, GWDataset, dataset_arrays, dataset_from_arrays, generate_dataset
from jax_modules.gw_data.online import FreshWindows, WaveformBank
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
class FreshTraining:
    """Training windows drawn anew every epoch: `config.n_train` of them, at the SNRs of the config's
    curriculum for that epoch, from one numpy stream (the train state's, so a resumed run draws the same)."""

    windows: FreshWindows
    config: CpcGwConfig

    def epoch(self, rng: np.random.Generator, epoch: int) -> Windows:
        """Epoch `epoch`'s windows (epochs count from 1), drawn from `rng`."""
        return Windows.of(self.windows.draw(rng, self.config.n_train, self.config.training_snr(epoch)))


#: The stream of the fresh-data run's `train` windows (what train/* is measured on), apart from the epochs'.
TRAIN_SAMPLE_STREAM = 14


@dataclass(frozen=True)
class RunData:
    """`train` is what train/* metrics are measured on: the cached training windows, or with `fresh`
    one draw of n_train windows from the last epoch's distribution (the epochs draw their own)."""

    train: Windows
    val: Windows
    test: Windows
    source: str        # for the run's params
    generated: bool    # simulated anew in this run (not from the cache)
    fresh: FreshTraining | None = None


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
    if config.uses_fresh_data:
        return _fresh_run_data(config, data_config, progress)
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


def _fresh_run_data(config: CpcGwConfig, data_config: GWDataConfig, progress: bool) -> RunData:
    """Cached validation and test windows (the very ones of the cached data set with any n_train: each
    split has its own seed), a waveform bank, and a sample of the training distribution for train/*."""
    held_out = _simulated(replace(data_config, n_train=2), config.cache_dir, progress)
    bank, built = _waveform_bank(data_config, config.waveform_bank, config.cache_dir)
    fresh = FreshTraining(FreshWindows(bank, data_config), config)
    sample = fresh.epoch(np.random.default_rng([config.seed, TRAIN_SAMPLE_STREAM]), config.n_epochs)
    low, high = config.train_snr
    curriculum = f", SNR curriculum x{config.curriculum_factor:g} -> x1 over {config.curriculum_epochs} epochs" \
        if config.curriculum_epochs > 1 else ""
    return RunData(sample, Windows.of(held_out.val), Windows.of(held_out.test),
                   source=f"simulated H1/L1, aLIGO ZDHP noise, IMRPhenomD; training windows drawn anew every epoch "
                          f"around {len(bank)} waveforms, SNR {low:g}-{high:g}{curriculum}; validation and test "
                          f"cached, SNR {config.snr_min:g}-{config.snr_max:g}",
                   generated=held_out.generated or built, fresh=fresh)


def _waveform_bank(data_config: GWDataConfig, n_waveforms: int, cache_dir: str | None) -> tuple[WaveformBank, bool]:
    """The waveform bank of fresh windows from the shared data cache (made in a generator process on a
    miss), and whether this call made it. It depends on the seed, window layout, detectors and masses."""
    from jax_modules.gw_data.storage import waveform_bank_arrays, waveform_bank_from_arrays
    from jax_modules.gw_data.subprocess_generate import generate_waveform_bank

    key = {k: v for k, v in data_config.cache_key().items()
           if k not in ("n_train", "n_val", "n_test", "snr_min", "snr_max", "keep_clean")}
    entry = cached_arrays("gw_waveforms", {**key, "n_waveforms": n_waveforms},
                          build=lambda: waveform_bank_arrays(generate_waveform_bank(data_config, n_waveforms)),
                          cache_dir=cache_dir, check=lambda arrays: waveform_bank_from_arrays(arrays, data_config))
    return waveform_bank_from_arrays(entry.arrays, data_config), entry.built
