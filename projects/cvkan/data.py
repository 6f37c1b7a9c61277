"""The data of a document-003 run, per domain: the user's files when named, else the offline default
(scikit-learn digits, espeak-ng spoken digits, GOOG prices, the signal/noise task), cached on disk.

`check_user_data` reads the user's files before anything heavy is imported (numpy only), so that
a bad file is a parameter error.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from typing import Any

import numpy as np

from projects.common.params import ParamError
from projects.cvkan.config import CVKANRunConfig

__all__ = ["DomainData", "audio_waveforms", "domain_data", "signal_noise_data", "check_user_data"]

HORIZON = 24  # forecast steps (ETTh1's shortest setting) from 96 input steps


@dataclass(frozen=True)
class DomainData:
    """One domain's data module and what the model needs to know about it.

    Attributes:
        task: "classify" or "forecast".
        source: where the data came from, for the run's params.
        naive_mse: the persistence forecast's validation MSE (forecasting), the bar to beat.
    """

    datamodule: Any  # CVKANDataModule
    task: str
    n_features: int
    seq_len: int
    n_classes: int
    horizon: int
    n_targets: int
    source: str
    naive_mse: float | None = None

    def model_fields(self) -> dict[str, Any]:
        """The `CVKANConfig` fields the data decide."""
        return {"task": self.task, "n_features": self.n_features, "seq_len": self.seq_len,
                "n_classes": self.n_classes, "horizon": self.horizon, "n_targets": self.n_targets}


def _cache(config: CVKANRunConfig):
    from projects.common.data_cache import cached_arrays

    return functools.partial(cached_arrays, cache_dir=config.cache_dir)


def _splits(config: CVKANRunConfig, domain: str, data_seed: int) -> tuple[Any, Any, str]:
    """(splits, batch transform or None, source) of `domain`."""
    from lightning_modules.cvkan import data

    if domain == "image":
        if config.cifar_dir:
            return data.cifar10_splits(config.cifar_dir, seed=data_seed), None, f"CIFAR-10 binary {config.cifar_dir}"
        return data.digits_splits(tokens="rows", seed=data_seed), None, "sklearn digits (8 row tokens)"
    if domain == "audio":
        waves, key, source = audio_waveforms(config, data_seed)
        stft = data.StftConfig()
        if config.precompute_stft:
            return data.precomputed_stft(waves, stft, cache=_cache(config), source_key=key), None, source
        return waves, functools.partial(data.stft_features, config=stft), f"{source}, STFT per batch"
    if config.ett_csv:
        values, columns, _ = data.read_ett_csv(config.ett_csv)
        splits = data.forecast_splits(values, data.ForecastConfig(horizon=HORIZON), columns=columns, ett=True)
        return splits, None, f"ETTh1 CSV {config.ett_csv}"
    values, columns = data.goog_series()
    return data.forecast_splits(values, data.ForecastConfig(horizon=HORIZON), columns=columns), None, \
        "GOOG daily prices (matplotlib sample data)"


def audio_waveforms(config: CVKANRunConfig, data_seed: int) -> tuple[Any, dict[str, Any] | None, str]:
    """The audio domain's waveform splits, their cache key (None: the user's files, not cached)
    and where they came from."""
    from lightning_modules.cvkan import data

    if config.speech_dir:
        return (data.speech_commands_splits(config.speech_dir, seed=data_seed), None,
                f"Speech-Commands folder {config.speech_dir}")
    spoken = data.SpokenDigitsConfig(n_per_class=config.n_per_class, seed=data_seed)
    return (data.spoken_digits_splits(spoken, cache=_cache(config)), spoken.to_dict(),
            f"espeak-ng spoken digits ({config.n_per_class} per class)")


def domain_data(config: CVKANRunConfig, domain: str, *, seed: int, data_seed: int) -> DomainData:
    """The data of `domain` for a run seeded `seed` (shuffle), its data drawn with `data_seed`."""
    from lightning_modules.cvkan.data import CVKANDataModule

    splits, transform, source = _splits(config, domain, data_seed)
    dm = CVKANDataModule(splits, batch_size=config.batch_size, seed=seed, batch_transform=transform)
    x = dm.example_input(1)
    if splits.n_classes is not None:
        return DomainData(dm, "classify", x.shape[2], x.shape[1], splits.n_classes, 1, 1, source)
    naive = float(np.mean((splits.y_val - splits.x_val[:, -1:, :]) ** 2))  # the last value, held
    return DomainData(dm, "forecast", x.shape[2], x.shape[1], 2, splits.y_train.shape[1],
                      splits.y_train.shape[2], source, naive_mse=naive)


def signal_noise_data(config: CVKANRunConfig, *, seed: int, data_seed: int) -> DomainData:
    """The hierarchical experiment's balanced signal/noise sequences (length 16)."""
    from lightning_modules.cvkan.data import CVKANDataModule, SignalNoiseConfig, signal_noise_splits

    task = SignalNoiseConfig(n_samples=config.n_signal, seed=data_seed)
    splits = signal_noise_splits(task)
    dm = CVKANDataModule(splits, batch_size=config.batch_size, seed=seed)
    return DomainData(dm, "classify", task.n_features, task.seq_len, 2, 1, 1,
                      f"synthetic signal/noise ({task.n_samples} sequences of {task.seq_len})")


def check_user_data(config: CVKANRunConfig) -> None:
    """Read the files the config names (loading the readers only when one is named).

    Raises:
        ParamError: naming the parameter, what is wrong with the file and what is allowed.
    """
    named = [name for name in ("cifar_dir", "speech_dir", "ett_csv") if getattr(config, name)]
    if not named:
        return
    from lightning_modules.cvkan import data

    read = {"cifar_dir": lambda path: [data.read_cifar10_bin(f) for f in _cifar_files(path)],
            "speech_dir": lambda path: data.speech_commands_splits(path, max_per_class=1),
            "ett_csv": data.read_ett_csv}
    for name in named:
        path = getattr(config, name)
        try:
            read[name](path)
        except data.DataFileError as error:
            allowed = str(error).rpartition("; allowed: ")[2]
            raise ParamError(name, path, allowed, problem=error.problem) from None


def _cifar_files(root: str) -> list[Any]:
    from pathlib import Path

    from lightning_modules.cvkan.data import DataFileError

    files = sorted(Path(root).glob("data_batch_*.bin"))
    if not files:
        raise DataFileError(f"{root}: has no data_batch_*.bin; allowed: a folder of CIFAR-10 binary files",
                            "has no data_batch_*.bin")
    return [*files, Path(root) / "test_batch.bin"]
