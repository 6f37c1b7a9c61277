"""The optimal detector beside the network: the matched filter's statistic on the run's own test
windows, and what the network reaches of it (true-positive rate at a false-alarm rate, and the SNR
at which half the injections are found: the sensitive distance scales as its inverse).

The template bank is made once per data layout and mass range (generator process, IMRPhenomD as the
data) and kept in the data cache. Runs on the user's MLGWSC-1 files, or with `mf_bank=0`, have no
reference.
"""

from __future__ import annotations

import math

import numpy as np

from jax_modules.gw_data.config import GWDataConfig
from projects.common.data_cache import cached_arrays
from projects.cpc_snn_gw import detection
from projects.cpc_snn_gw.config import CpcGwConfig
from projects.cpc_snn_gw.data import Windows, simulated_config

__all__ = ["ARRIVAL_MARGIN_S", "cached_bank", "matched_filter_scores", "reference_metrics"]

#: Earth's light-crossing time and then some: how far a detector's arrival can lie outside the
#: geocentre merger range [s].
ARRIVAL_MARGIN_S = 0.025


def cached_bank(data_config: GWDataConfig, n_masses: int, cache_dir: str | None):
    """The `n_masses` x `n_masses` template bank for `data_config`'s windows, from the data cache
    (made in the generator process on a miss)."""
    from jax_modules.gw_data.storage import bank_arrays, bank_from_arrays
    from jax_modules.gw_data.subprocess_generate import generate_bank

    # The bank depends on the window layout, whitening and mass range, not on the draws.
    full = data_config.cache_key()
    key = {k: full[k] for k in ("format_version", "sample_rate", "duration", "detectors", "mass_min", "mass_max",
                                "f_lower", "whiten_taper")}
    entry = cached_arrays("gw_bank", {**key, "n_masses": n_masses},
                          build=lambda: bank_arrays(generate_bank(data_config, n_masses)), cache_dir=cache_dir,
                          check=lambda arrays: bank_from_arrays(arrays, data_config))
    return bank_from_arrays(entry.arrays, data_config)


def matched_filter_scores(config: CpcGwConfig, test: Windows) -> np.ndarray | None:
    """The matched filter's statistic of every test window; None without a reference (see above)."""
    if config.data_path or config.mf_bank == 0:
        return None
    from jax_modules.gw_data.matched_filter import network_statistic

    data_config = simulated_config(config)
    bank = cached_bank(data_config, config.mf_bank, config.cache_dir)
    arrival = (max(data_config.merger_min * data_config.duration - ARRIVAL_MARGIN_S, 0.0),
               min(data_config.merger_max * data_config.duration + ARRIVAL_MARGIN_S, data_config.duration * 0.999))
    return network_statistic(test.x, bank, arrival=arrival)


def reference_metrics(network: np.ndarray, reference: np.ndarray, test: Windows, fars: tuple[float, ...],
                      label) -> dict[str, float]:
    """For each false-alarm rate: the true-positive rate and the SNR at 50 % efficiency of the matched
    filter (`mf/`) and of the network (`test/`), and the network's share of the filter's (`vs_mf/`):
    TPR ratio, and sensitive-distance ratio (filter's SNR at 50 % over the network's)."""
    metrics: dict[str, float] = {}
    snr = np.nan_to_num(test.snr, nan=0.0)
    for far in fars:
        key = label(far)
        row = {}
        for prefix, scores in (("mf", reference), ("test", network)):
            tpr, resolved = detection.tpr_at_far(scores, test.y, far)
            threshold = detection.threshold_at_far(scores[test.y == 0], far)
            row[prefix] = (tpr if resolved else math.nan,
                           detection.snr_at_efficiency(scores, test.y, snr, threshold) if resolved else math.nan)
        metrics[f"mf/tpr_at_far_{key}"], metrics[f"mf/snr50_far_{key}"] = row["mf"]
        metrics[f"test/snr50_far_{key}"] = row["test"][1]
        with np.errstate(divide="ignore", invalid="ignore"):
            metrics[f"vs_mf/tpr_ratio_far_{key}"] = float(np.divide(row["test"][0], row["mf"][0]))
            metrics[f"vs_mf/distance_ratio_far_{key}"] = float(np.divide(row["mf"][1], row["test"][1]))
    return metrics
