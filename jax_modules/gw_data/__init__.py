"""Gravitational-wave data for document 000: simulated H1/L1 strain, and MLGWSC-1 files."""

# Simulated data set. Import-light on purpose: ripplegw (float64 for the whole process) and
# bilby are imported only by the generator process that `load_or_generate` starts.
from .cache import GenerationError, cache_path, load_or_generate
from .config import GWDataConfig
from .dataset import GWDataset, Split
from .snr import matched_filter_snr, network_snr, optimal_snr

__all__ = [
    "GWDataConfig",
    "GWDataset",
    "GenerationError",
    "Split",
    "cache_path",
    "load_or_generate",
    "matched_filter_snr",
    "network_snr",
    "optimal_snr",
]
