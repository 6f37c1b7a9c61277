"""Simulated cryo-EM micrographs for document 004 (pure numpy, seeded)."""

from lightning_modules.fixmatch_pu.data.files import (
    DataFileError,
    read_micrograph,
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
    simulate_pu,
)

__all__ = ["MicrographConfig", "ctf_2d", "electron_wavelength", "project_atoms", "pseudo_atoms",
           "random_rotations", "simulate_micrograph", "ConsistentNormalizer", "PUArrays", "PUConfig", "crop",
           "negative_centres", "simulate_pu", "DataFileError", "read_micrograph", "read_star_coordinates",
           "read_topaz_coordinates", "write_micrograph", "write_star_coordinates", "write_topaz_coordinates"]
