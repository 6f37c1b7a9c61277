"""The data of a document-004 run: PU patches of simulated micrographs (cached, keyed by their
config) or of the user's MRC micrographs with STAR/Topaz coordinates, split by micrograph,
normalized once on the training patches, served as FixMatch batches.

`check_user_data` reads the user's files before a run starts, so a bad one is a parameter error.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from projects.common.params import ParamError
from projects.fixmatch_pu.config import FixMatchPURunConfig

__all__ = ["PUData", "load_data", "check_user_data", "N_VAL", "N_TEST"]

N_VAL, N_TEST = 3, 3  # micrographs held out for validation and for test


@dataclass(frozen=True)
class PUData:
    """The run's splits, data module, one test micrograph for the picking figure, and provenance."""

    splits: Any        # PUSplits
    datamodule: Any    # PUDataModule
    test_micrograph: tuple[np.ndarray, np.ndarray]  # image, true particle centres
    source: str

    @property
    def prior(self) -> float:
        """The prior the data imply: the share of particles among the unlabeled training patches."""
        return self.splits.prior


def _micrograph_config(config: FixMatchPURunConfig) -> Any:
    from lightning_modules.fixmatch_pu.data import MicrographConfig

    return MicrographConfig(box=config.box, n_particles=config.particles_per_micrograph, snr=config.snr,
                            field=max(512, 4 * config.box))


def _pu_config(config: FixMatchPURunConfig) -> Any:
    from lightning_modules.fixmatch_pu.data import PUConfig

    return PUConfig(micrograph=_micrograph_config(config), n_micrographs=config.n_micrographs,
                    negatives_per_micrograph=config.negatives_per_micrograph,
                    labeled_fraction=config.labeled_fraction, seed=config.seed)


def _simulated(config: FixMatchPURunConfig) -> tuple[Any, tuple[np.ndarray, np.ndarray], str]:
    from dataclasses import replace

    from lightning_modules.fixmatch_pu.data import PUArrays, simulate_micrograph, simulate_pu
    from projects.common.data_cache import cached_arrays

    pu = _pu_config(config)
    entry = cached_arrays("cryoem_pu", pu.to_dict(), lambda: vars(simulate_pu(pu)), cache_dir=config.cache_dir)
    arrays = PUArrays(**{k: entry.arrays[k] for k in ("x", "y", "labeled", "micrograph")})
    last = pu.n_micrographs - 1  # a test micrograph (the split holds the last ones out)
    image, centres, _ = simulate_micrograph(replace(pu.micrograph, seed=pu.seed * 1000 + last))
    source = (f"simulated: {pu.n_micrographs} micrographs {pu.micrograph.field}^2 px, {config.particles_per_micrograph} "
              f"particles each, SNR {config.snr:g}, 300 kV CTF")
    return arrays, (image, centres), source


def _users(config: FixMatchPURunConfig) -> tuple[Any, tuple[np.ndarray, np.ndarray], str]:
    from lightning_modules.fixmatch_pu.data import pu_patches, read_picked_micrographs

    picked = read_picked_micrographs(config.micrographs, config.coordinates)
    arrays = pu_patches(((image, centres) for _, image, centres in picked), box=config.box,
                        negatives_per_micrograph=config.negatives_per_micrograph,
                        labeled_fraction=config.labeled_fraction, seed=config.seed)
    _, image, centres = picked[-1]
    return arrays, (image, centres), f"{len(picked)} micrographs from {config.micrographs} ({config.coordinates})"


def load_data(config: FixMatchPURunConfig) -> PUData:
    """The run's data: the user's micrographs when named, else the simulator's (cached)."""
    from lightning_modules.fixmatch_pu.data import PUDataModule, split_by_micrograph

    arrays, test_micrograph, source = (_users if config.micrographs else _simulated)(config)
    splits = split_by_micrograph(arrays, n_val=N_VAL, n_test=N_TEST)
    datamodule = PUDataModule(splits, batch_size=config.batch_size, positive_batch_size=config.positive_batch_size,
                              seed=config.seed)
    return PUData(splits, datamodule, test_micrograph, source)


def check_user_data(config: FixMatchPURunConfig) -> None:
    """Read the user's micrographs and coordinates, and check they can be split and cropped.

    Raises:
        ParamError: naming the parameter, what is wrong and what is allowed.
    """
    if not config.micrographs:
        return  # the simulated field is sized to the box (`_micrograph_config`)
    from lightning_modules.fixmatch_pu.data import DataFileError, read_picked_micrographs

    try:
        picked = read_picked_micrographs(config.micrographs, config.coordinates)
    except DataFileError as error:
        name = "micrographs" if str(error).startswith(str(config.micrographs)) else "coordinates"
        allowed = str(error).rpartition("; allowed: ")[2]
        raise ParamError(name, getattr(config, name), allowed, problem=error.problem) from None
    if len(picked) < N_VAL + N_TEST + 1:
        raise ParamError("micrographs", config.micrographs,
                         f"a folder of at least {N_VAL + N_TEST + 1} MRC micrographs ({N_VAL} validation, "
                         f"{N_TEST} test, the rest training)", problem=f"it holds {len(picked)}")
    small = min(min(image.shape) for _, image, _ in picked)
    if config.box * 2 > small:
        raise ParamError("box", config.box, f"at most half the smallest micrograph's side ({small // 2} px)")
