"""Patches of simulated micrographs as a positive-unlabeled (PU) data set, with its true class prior.

Positives are boxes centred on true particles; negatives are boxes whose centre is at least a box
away from every particle. A seeded share of the positives is labeled; the rest of the positives and
all negatives form the unlabeled set, so the prior of the unlabeled set (the share of positives in
it, what nnPU needs) is known exactly, and a configured prior can be compared with it (the note's
0.3 against 0.197). `ConsistentNormalizer` is fitted on training patches only and applied to every
split (the note's fix for inconsistent normalization).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, replace
from typing import Any, Iterable, Iterator

import numpy as np

from lightning_modules.fixmatch_pu.data.micrographs import MicrographConfig, simulate_micrograph

__all__ = ["PUConfig", "PUArrays", "ConsistentNormalizer", "crop", "negative_centres", "pu_patches",
           "simulated_micrographs", "simulate_pu"]


def crop(image: np.ndarray, centres: np.ndarray, box: int) -> np.ndarray:
    """(n, box, box) patches of `image` centred on `centres` (row, col); every box must fit."""
    half = box // 2
    return np.stack([image[r - half:r - half + box, c - half:c - half + box] for r, c in centres]) \
        if len(centres) else np.zeros((0, box, box), dtype=image.dtype)


def negative_centres(n: int, field: int | tuple[int, int], box: int, particles: np.ndarray,
                     rng: np.random.Generator, tries: int = 20_000) -> np.ndarray:
    """Up to `n` box centres at least one box from every particle centre, every box inside the field
    (its side, or its (rows, cols))."""
    high = np.broadcast_to(np.asarray(field), (2,)) - box // 2
    out: list[tuple[int, int]] = []
    for _ in range(tries):
        if len(out) == n:
            break
        c = rng.integers(box // 2, high)
        if len(particles) == 0 or np.min(np.sum((particles - c) ** 2, axis=1)) >= box * box:
            out.append((int(c[0]), int(c[1])))
    return np.array(out, dtype=np.int64).reshape(-1, 2)


@dataclass(frozen=True)
class PUConfig:
    """Micrographs and the PU split of their patches.

    negatives_per_micrograph: background patches per micrograph; with `micrograph.n_particles`
    positives it sets the true share of positives among all patches.
    labeled_fraction: share of the positives whose label is known (the rest are unlabeled).
    """

    micrograph: MicrographConfig = MicrographConfig()
    n_micrographs: int = 8
    negatives_per_micrograph: int = 90
    labeled_fraction: float = 0.3
    seed: int = 0

    def __post_init__(self) -> None:
        if not (isinstance(self.n_micrographs, int) and self.n_micrographs >= 1):
            raise ValueError(f"n_micrographs={self.n_micrographs!r} is not allowed; allowed: an integer >= 1")
        if not (isinstance(self.negatives_per_micrograph, int) and self.negatives_per_micrograph >= 0):
            raise ValueError(f"negatives_per_micrograph={self.negatives_per_micrograph!r} is not allowed; "
                             "allowed: an integer >= 0")
        if not 0 < self.labeled_fraction < 1:
            raise ValueError(f"labeled_fraction={self.labeled_fraction!r} is not allowed; allowed: a number in (0, 1)")

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "micrograph": self.micrograph.to_dict()}


@dataclass(frozen=True, eq=False)
class PUArrays:
    """Patches (n, box, box) float32, their true class (1 particle, 0 background), whether the label
    is known (labeled positives), and the micrograph each came from.

    `prior` is the true share of positives among the unlabeled patches.
    """

    x: np.ndarray
    y: np.ndarray
    labeled: np.ndarray
    micrograph: np.ndarray

    @property
    def prior(self) -> float:
        unlabeled = ~self.labeled
        return float(self.y[unlabeled].mean()) if unlabeled.any() else float("nan")


class ConsistentNormalizer:
    """One mean and standard deviation, fitted on training patches and applied to every split."""

    def __init__(self) -> None:
        self.mean: float | None = None
        self.std: float | None = None

    def fit(self, x: np.ndarray) -> "ConsistentNormalizer":
        self.mean, self.std = float(x.mean()), float(x.std()) or 1.0
        return self

    def __call__(self, x: np.ndarray) -> np.ndarray:
        if self.mean is None or self.std is None:
            raise ValueError("ConsistentNormalizer is not fitted; allowed: call fit(training patches) first")
        return ((x - self.mean) / self.std).astype(np.float32)


def pu_patches(micrographs: Iterable[tuple[np.ndarray, np.ndarray]], *, box: int, negatives_per_micrograph: int,
               labeled_fraction: float, seed: int) -> PUArrays:
    """The PU patches of micrographs given as (image, particle centres): a box around every particle
    whose box fits in the image, `negatives_per_micrograph` background boxes, and a seeded
    `labeled_fraction` of the positives labeled. Simulated and the user's micrographs alike."""
    rng = np.random.default_rng(seed)
    xs, ys, sources = [], [], []
    for i, (image, particles) in enumerate(micrographs):
        half = box // 2
        fits = ((particles >= half) & (particles + (box - half) <= np.array(image.shape))).all(axis=1)
        negatives = negative_centres(negatives_per_micrograph, image.shape, box, particles, rng)
        for centres, label in ((particles[fits], 1), (negatives, 0)):
            xs.append(crop(image, centres, box))
            ys.append(np.full(len(centres), label, dtype=np.int64))
            sources.append(np.full(len(centres), i, dtype=np.int64))
    y = np.concatenate(ys)
    positives = np.flatnonzero(y == 1)
    labeled = np.zeros(len(y), dtype=bool)
    labeled[rng.choice(positives, size=round(len(positives) * labeled_fraction), replace=False)] = True
    return PUArrays(np.concatenate(xs).astype(np.float32), y, labeled, np.concatenate(sources))


def simulated_micrographs(config: PUConfig) -> Iterator[tuple[np.ndarray, np.ndarray]]:
    """(image, particle centres) of each simulated micrograph; micrograph i is seeded seed*1000+i."""
    for i in range(config.n_micrographs):
        image, particles, _ = simulate_micrograph(replace(config.micrograph, seed=config.seed * 1000 + i))
        yield image, particles


def simulate_pu(config: PUConfig = PUConfig()) -> PUArrays:
    """The PU patches of `config.n_micrographs` simulated micrographs."""
    return pu_patches(simulated_micrographs(config), box=config.micrograph.box,
                      negatives_per_micrograph=config.negatives_per_micrograph,
                      labeled_fraction=config.labeled_fraction, seed=config.seed)
