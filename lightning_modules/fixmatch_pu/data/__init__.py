"""Simulated cryo-EM micrographs for document 004 (pure numpy, seeded)."""

from lightning_modules.fixmatch_pu.data.files import (
    DataFileError,
    read_micrograph,
    read_picked_micrographs,
    read_star_coordinates,
    read_topaz_coordinates,
    write_micrograph,
    write_star_coordinates,
    write_topaz_coordinates,
)
from lightning_modules.fixmatch_pu.data.micrographs import (
    MicrographConfig,
    ctf_2d,
    electron_wavelength,
    project_atoms,
    pseudo_atoms,
    random_rotations,
    simulate_micrograph,
)
from lightning_modules.fixmatch_pu.data.patches import (
    ConsistentNormalizer,
    PUArrays,
    PUConfig,
    crop,
    negative_centres,
    pu_patches,
    simulate_pu,
    simulated_micrographs,
)
from lightning_modules.fixmatch_pu.data.datamodule import PUDataModule, PUSplits, split_by_micrograph

__all__ = ["MicrographConfig", "ctf_2d", "electron_wavelength", "project_atoms", "pseudo_atoms",
           "random_rotations", "simulate_micrograph", "ConsistentNormalizer", "PUArrays", "PUConfig", "crop",
           "negative_centres", "pu_patches", "simulated_micrographs", "simulate_pu", "PUDataModule", "PUSplits",
           "split_by_micrograph", "DataFileError", "read_micrograph", "read_picked_micrographs", "read_star_coordinates",
           "read_topaz_coordinates", "write_micrograph", "write_star_coordinates", "write_topaz_coordinates"]
