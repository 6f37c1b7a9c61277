"""Gravitational-wave data for document 000: simulated H1/L1 strain, and MLGWSC-1 files."""

# Simulated data set. Import-light on purpose: ripplegw (float64 for the whole process) and
# bilby are imported only by the generator process that `generate_dataset` starts.
from .config import GWDataConfig
from .dataset import GWDataset, Split
from .snr import matched_filter_snr, network_snr, optimal_snr
from .storage import InvalidDataError, dataset_arrays, dataset_from_arrays
from .subprocess_generate import GenerationError, generate_dataset

__all__ = [
    "GWDataConfig",
    "GWDataset",
    "GenerationError",
    "InvalidDataError",
    "Split",
    "dataset_arrays",
    "dataset_from_arrays",
    "generate_dataset",
    "matched_filter_snr",
    "network_snr",
    "optimal_snr",
]
