"""Latent-space statistics of document 002 (numpy only): used dimensions, PCA spectrum, and the
participation ratio that reconciles them.

The document reports both "16/16 dimensions used" and "PC1: 99.6%, PC2: 0.4%". Both can hold:
every coordinate can vary a lot while all vary along one direction. `effective_dims` counts
coordinates; `participation_ratio` counts directions (99.6% / 0.4% gives ~1.01).
"""

from __future__ import annotations

import numpy as np

__all__ = ["effective_dims", "pca_variance", "participation_ratio"]


def _latents(z: np.ndarray) -> np.ndarray:
    z = np.asarray(z, dtype=np.float64)
    if z.ndim != 2 or z.shape[0] < 2:
        raise ValueError(f"z of shape {z.shape} is not allowed; allowed: (n >= 2, dims)")
    return z


def effective_dims(z: np.ndarray, threshold: float = 0.01) -> int:
    """Latent coordinates whose variance exceeds `threshold` times the largest coordinate variance."""
    var = _latents(z).var(axis=0)
    top = var.max()
    return 0 if top <= 0 else int((var > threshold * top).sum())


def _eigenvalues(z: np.ndarray) -> np.ndarray:
    z = _latents(z)
    cov = np.cov(z, rowvar=False).reshape(z.shape[1], z.shape[1])
    return np.clip(np.sort(np.linalg.eigvalsh(cov))[::-1], 0.0, None)


def pca_variance(z: np.ndarray) -> np.ndarray:
    """Explained-variance ratio of each principal component of the latents, largest first."""
    eig = _eigenvalues(z)
    total = eig.sum()
    return eig / total if total > 0 else np.zeros_like(eig)


def participation_ratio(z: np.ndarray) -> float:
    """(sum of covariance eigenvalues)^2 / sum of their squares: 1 for one direction, dims for
    isotropic latents."""
    eig = _eigenvalues(z)
    denom = float((eig ** 2).sum())
    return float(eig.sum() ** 2 / denom) if denom > 0 else 0.0
