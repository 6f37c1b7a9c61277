"""Simulated cryo-EM micrographs: a pseudo-atomic 3-D density projected at uniformly random
orientations, filtered by the contrast transfer function of a 300 kV microscope, placed in a larger
field and buried in noise at the low signal-to-noise ratio of real micrographs.

Pure numpy and seeded: the same config gives the same micrograph and particle positions.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

__all__ = ["MicrographConfig", "electron_wavelength", "ctf_2d", "pseudo_atoms", "random_rotations",
           "project_atoms", "simulate_micrograph"]


def electron_wavelength(voltage_kv: float) -> float:
    """Relativistic electron wavelength in Angstrom at `voltage_kv` (0.0197 A at 300 kV)."""
    volts = voltage_kv * 1e3
    return 12.2643 / math.sqrt(volts * (1.0 + 0.978466e-6 * volts))


def ctf_2d(size: int, pixel_a: float, defocus_um: float, *, voltage_kv: float = 300.0, cs_mm: float = 2.7,
           amplitude_contrast: float = 0.1) -> np.ndarray:
    """The phase-contrast transfer function on the `size` x `size` FFT grid (numpy's frequency order):
    -sin(chi) with chi = pi lambda df k^2 - pi/2 Cs lambda^3 k^4 plus the amplitude-contrast phase;
    `defocus_um` > 0 is underfocus, as in RELION."""
    lam = electron_wavelength(voltage_kv)
    k = np.fft.fftfreq(size, d=pixel_a)
    k2 = k[:, None] ** 2 + k[None, :] ** 2
    chi = math.pi * lam * (defocus_um * 1e4) * k2 - 0.5 * math.pi * (cs_mm * 1e7) * lam ** 3 * k2 ** 2
    phase = math.atan(amplitude_contrast / math.sqrt(1.0 - amplitude_contrast ** 2))
    return -np.sin(chi + phase)


def pseudo_atoms(n_atoms: int, radius_a: float, rng: np.random.Generator) -> np.ndarray:
    """(n_atoms, 3) coordinates in Angstrom: a compact, asymmetric blob (three lobes) so that its
    projections differ with orientation."""
    lobes = rng.normal(scale=radius_a / 3, size=(3, 3))
    which = rng.integers(0, 3, size=n_atoms)
    atoms = lobes[which] + rng.normal(scale=radius_a / 4, size=(n_atoms, 3))
    return atoms - atoms.mean(axis=0)


def random_rotations(n: int, rng: np.random.Generator) -> np.ndarray:
    """(n, 3, 3) rotation matrices uniform over SO(3) (normalized Gaussian quaternions)."""
    q = rng.normal(size=(n, 4))
    q /= np.linalg.norm(q, axis=1, keepdims=True)
    w, x, y, z = q.T
    return np.stack([
        np.stack([1 - 2 * (y * y + z * z), 2 * (x * y - z * w), 2 * (x * z + y * w)], axis=-1),
        np.stack([2 * (x * y + z * w), 1 - 2 * (x * x + z * z), 2 * (y * z - x * w)], axis=-1),
        np.stack([2 * (x * z - y * w), 2 * (y * z + x * w), 1 - 2 * (x * x + y * y)], axis=-1)], axis=1)


def project_atoms(atoms: np.ndarray, rotation: np.ndarray, size: int, pixel_a: float, sigma_a: float = 1.5
                  ) -> np.ndarray:
    """The projection along z of the rotated atoms, each a Gaussian of `sigma_a`, on a `size` x `size`
    grid centred on the density (total mass = number of atoms falling in the box)."""
    xy = (atoms @ rotation.T)[:, :2] / pixel_a + (size - 1) / 2
    grid = np.arange(size)
    s = sigma_a / pixel_a
    gx = np.exp(-0.5 * ((grid[None, :] - xy[:, :1]) / s) ** 2)
    gy = np.exp(-0.5 * ((grid[None, :] - xy[:, 1:]) / s) ** 2)
    image = gy.T @ gx / (2 * math.pi * s * s)
    return image


@dataclass(frozen=True)
class MicrographConfig:
    """One simulated micrograph: field and particle sizes, optics and noise.

    snr is the variance of the CTF-filtered particle signal over the noise variance, measured inside
    the particle boxes (real micrographs: about 0.01 to 0.1).
    """

    field: int = 512
    box: int = 48
    n_particles: int = 30
    pixel_a: float = 2.0
    n_atoms: int = 400
    radius_a: float = 30.0
    defocus_um: tuple[float, float] = (1.0, 2.5)
    voltage_kv: float = 300.0
    cs_mm: float = 2.7
    amplitude_contrast: float = 0.1
    snr: float = 0.05
    seed: int = 0

    def __post_init__(self) -> None:
        for name in ("field", "box", "n_particles", "n_atoms"):
            value = getattr(self, name)
            if not (isinstance(value, int) and value >= 1):
                raise ValueError(f"{name}={value!r} is not allowed; allowed: an integer >= 1")
        if self.box * 2 > self.field:
            raise ValueError(f"box={self.box} is not allowed with field={self.field}; allowed: at most field / 2")
        for name in ("pixel_a", "radius_a", "voltage_kv", "snr"):
            if not getattr(self, name) > 0:
                raise ValueError(f"{name}={getattr(self, name)!r} is not allowed; allowed: a number > 0")
        low, high = self.defocus_um
        if not 0 < low <= high:
            raise ValueError(f"defocus_um={self.defocus_um!r} is not allowed; allowed: (low, high) with 0 < low <= high")
        if not 0 <= self.amplitude_contrast < 1:
            raise ValueError(f"amplitude_contrast={self.amplitude_contrast!r} is not allowed; allowed: [0, 1)")

    def to_dict(self) -> dict[str, Any]:
        return {k: list(v) if isinstance(v, tuple) else v for k, v in asdict(self).items()}


def _place(n: int, field: int, box: int, rng: np.random.Generator, tries: int = 10_000) -> np.ndarray:
    """Up to `n` particle centres (row, col) at least one box apart and a half box from the edges."""
    centres: list[tuple[int, int]] = []
    for _ in range(tries):
        if len(centres) == n:
            break
        c = tuple(rng.integers(box // 2, field - box // 2, size=2))
        if all((c[0] - r) ** 2 + (c[1] - q) ** 2 >= box * box for r, q in centres):
            centres.append(c)
    return np.array(centres, dtype=np.int64).reshape(-1, 2)


def simulate_micrograph(config: MicrographConfig) -> tuple[np.ndarray, np.ndarray, float]:
    """A micrograph (field, field) float32, the particle centres (n, 2) as (row, col), and its defocus
    in micrometres. Particles are one density at random orientations; the whole field goes through
    one CTF; Gaussian noise sets the signal-to-noise ratio inside the particle boxes."""
    rng = np.random.default_rng(config.seed)
    atoms = pseudo_atoms(config.n_atoms, config.radius_a, rng)
    centres = _place(config.n_particles, config.field, config.box, rng)
    clean = np.zeros((config.field, config.field))
    half = config.box // 2
    for (r, c), rot in zip(centres, random_rotations(len(centres), rng)):
        clean[r - half:r - half + config.box, c - half:c - half + config.box] += project_atoms(
            atoms, rot, config.box, config.pixel_a)
    defocus = float(rng.uniform(*config.defocus_um))
    ctf = ctf_2d(config.field, config.pixel_a, defocus, voltage_kv=config.voltage_kv, cs_mm=config.cs_mm,
                 amplitude_contrast=config.amplitude_contrast)
    signal = np.real(np.fft.ifft2(np.fft.fft2(clean) * ctf))
    inside = np.zeros_like(clean, dtype=bool)
    for r, c in centres:
        inside[r - half:r - half + config.box, c - half:c - half + config.box] = True
    signal_var = float(signal[inside].var()) if inside.any() else float(signal.var())
    noise = rng.normal(scale=math.sqrt(signal_var / config.snr), size=clean.shape)
    return (signal + noise).astype(np.float32), centres, defocus
