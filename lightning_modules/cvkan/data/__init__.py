"""Document 003 (complex-valued KAN): the data of its experiments, as numpy arrays and one data module.

Domains (each an `ArraySplits` of train/val/test arrays, seeded):
- images: scikit-learn's digits (offline default), CIFAR-10 binary files (`images`);
- audio: spoken digits synthesised with espeak-ng (offline default), Speech-Commands folders
  (`spoken_digits`, `wav`), STFT tokens precomputed or per batch (`stft`, `audio_features`);
- time series: Google's daily prices shipped in matplotlib (offline default), ETTh1 CSVs (`timeseries`);
- the hierarchical experiment's signal/noise sequences (`signal_noise`).
Builders that are worth caching take a `cache` (`projects.common.data_cache.cached_arrays` with its
cache_dir bound); this package imports nothing from `projects`.
"""

from lightning_modules.cvkan.data.audio_features import FeatureTiming, audio_feature_data, time_feature_modes
from lightning_modules.cvkan.data.cache import ArrayCache
from lightning_modules.cvkan.data.datamodule import CVKANDataModule
from lightning_modules.cvkan.data.errors import DataFileError
from lightning_modules.cvkan.data.images import cifar10_splits, digits_splits, image_tokens, read_cifar10_bin
from lightning_modules.cvkan.data.signal_noise import SignalNoiseConfig, generate_signal_noise, signal_noise_splits
from lightning_modules.cvkan.data.splits import ArraySplits, stratified_split
from lightning_modules.cvkan.data.spoken_digits import SpokenDigitsConfig, spoken_digits_splits
from lightning_modules.cvkan.data.stft import StftConfig, precomputed_stft, stft_features
from lightning_modules.cvkan.data.timeseries import (
    ETT_COLUMNS,
    ForecastConfig,
    forecast_splits,
    goog_series,
    make_windows,
    read_ett_csv,
)
from lightning_modules.cvkan.data.wav import read_wav, speech_commands_splits

__all__ = [
    "ArrayCache",
    "ArraySplits",
    "CVKANDataModule",
    "DataFileError",
    "ETT_COLUMNS",
    "FeatureTiming",
    "ForecastConfig",
    "SignalNoiseConfig",
    "SpokenDigitsConfig",
    "StftConfig",
    "audio_feature_data",
    "cifar10_splits",
    "digits_splits",
    "forecast_splits",
    "generate_signal_noise",
    "goog_series",
    "image_tokens",
    "make_windows",
    "precomputed_stft",
    "read_cifar10_bin",
    "read_ett_csv",
    "read_wav",
    "signal_noise_splits",
    "speech_commands_splits",
    "spoken_digits_splits",
    "stft_features",
    "stratified_split",
    "time_feature_modes",
]
