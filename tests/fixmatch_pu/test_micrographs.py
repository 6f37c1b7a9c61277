"""Document 004's micrograph simulator: physics of its pieces and determinism of the whole."""

from __future__ import annotations

import math

import numpy as np
import pytest

from lightning_modules.fixmatch_pu.data import (
    MicrographConfig,
    ctf_2d,
    electron_wavelength,
    project_atoms,
    pseudo_atoms,
    random_rotations,
    simulate_micrograph,
)


def test_electron_wavelength_at_300_and_200_kv() -> None:
    assert electron_wavelength(300) == pytest.approx(0.01969, abs=2e-5)
    assert electron_wavelength(200) == pytest.approx(0.02508, abs=2e-5)


def test_ctf_starts_at_the_amplitude_contrast_and_its_first_zero_moves_with_defocus() -> None:
    size, pixel = 256, 1.0
    near, far = ctf_2d(size, pixel, 1.0), ctf_2d(size, pixel, 3.0)
    assert near[0, 0] == pytest.approx(-0.1, abs=1e-6)  # -sin(asin(0.1)): amplitude contrast only
    assert np.all(np.abs(near) <= 1.0)

    def first_zero(ctf: np.ndarray) -> int:  # along the first row, in frequency bins
        row = ctf[0, : size // 2]
        return int(np.argmax(np.sign(row[1:]) != np.sign(row[:-1])))

    assert first_zero(far) < first_zero(near)  # more underfocus: the first zero at lower frequency
    k = first_zero(near) / (size * pixel)
    chi = math.pi * electron_wavelength(300) * 1e4 * k ** 2  # Cs is negligible at this low frequency
    assert chi + math.asin(0.1) == pytest.approx(math.pi, rel=0.1)


def test_rotations_are_proper_orthonormal_and_projection_conserves_mass() -> None:
    rng = np.random.default_rng(0)
    rots = random_rotations(50, rng)
    assert np.allclose(rots @ rots.transpose(0, 2, 1), np.eye(3), atol=1e-10)
    assert np.allclose(np.linalg.det(rots), 1.0)
    atoms = pseudo_atoms(200, 20.0, rng)
    image = project_atoms(atoms, rots[0], size=64, pixel_a=2.0)
    assert image.sum() == pytest.approx(200, rel=0.02)  # every atom inside the box
    other = project_atoms(atoms, rots[1], size=64, pixel_a=2.0)
    assert not np.allclose(image, other)  # an asymmetric density: orientations differ


def test_micrograph_is_seeded_spaced_and_at_the_requested_snr() -> None:
    config = MicrographConfig(field=256, box=32, n_particles=12, snr=0.05, seed=3)
    image, centres, defocus = simulate_micrograph(config)
    again, centres_again, _ = simulate_micrograph(config)
    assert np.array_equal(image, again) and np.array_equal(centres, centres_again)
    assert image.shape == (256, 256) and image.dtype == np.float32 and len(centres) == 12
    assert 1.0 <= defocus <= 2.5
    d = np.sqrt(((centres[:, None, :] - centres[None, :, :]) ** 2).sum(-1)) + np.eye(len(centres)) * 1e9
    assert d.min() >= 32 and centres.min() >= 16 and centres.max() <= 256 - 16
    other, _, _ = simulate_micrograph(MicrographConfig(field=256, box=32, n_particles=12, snr=0.05, seed=4))
    assert not np.array_equal(image, other)


@pytest.mark.parametrize("field, value, match", [
    ("box", 300, "at most field / 2"), ("snr", 0.0, "snr"), ("defocus_um", (2.0, 1.0), "defocus_um"),
    ("n_particles", 0, "n_particles"), ("amplitude_contrast", 1.0, "amplitude_contrast")])
def test_config_rejects_bad_values_in_one_line(field: str, value, match: str) -> None:
    with pytest.raises(ValueError, match=match) as error:
        MicrographConfig(**{field: value})
    assert "\n" not in str(error.value)


def test_the_noise_is_set_by_the_snr_inside_the_particle_boxes() -> None:
    """Inside the boxes the variance is signal + noise = (1 + snr) noise; far from every particle it
    is noise alone (the CTF spreads a little signal beyond the boxes)."""
    image, centres, _ = simulate_micrograph(MicrographConfig(field=384, box=32, n_particles=20, snr=1.0, seed=1))
    inside = np.zeros(image.shape, dtype=bool)
    far = np.ones(image.shape, dtype=bool)
    for r, c in centres:
        inside[r - 16:r + 16, c - 16:c + 16] = True
        far[max(0, r - 40):r + 40, max(0, c - 40):c + 40] = False
    assert far.sum() > 5000
    assert image[inside].var() / image[far].var() == pytest.approx(2.0, rel=0.15)
