"""Figures and texts of the document-002 runs: the latents coloured by sequence length, the
comparisons' bars and curves, and reconstructed poems beside their originals.

Pure functions: numbers in, a matplotlib `Figure` (or text) out; no MLflow here.
"""

from __future__ import annotations

from typing import Mapping, Sequence

import numpy as np
from matplotlib.figure import Figure

__all__ = ["latents_figure", "bars_figure", "curves_figure", "reconstruction_text"]


def _pca_2d(z: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The latents projected on their first two principal axes, and the axes' variance ratios."""
    centered = z - z.mean(axis=0, keepdims=True)
    _, s, vt = np.linalg.svd(centered, full_matrices=False)
    ratios = s ** 2 / max(float((s ** 2).sum()), 1e-30)
    axes = vt[:2].T if vt.shape[0] >= 2 else np.pad(vt.T, ((0, 0), (0, 2 - vt.shape[0])))
    return centered @ axes, np.pad(ratios[:2], (0, max(0, 2 - len(ratios))))


def latents_figure(z: np.ndarray, lengths: np.ndarray, title: str) -> Figure:
    """The bottleneck vectors (n, k) on their two principal axes, coloured by sequence length: the
    note's check of what the 16 dimensions encode.

    Raises:
        ValueError: `z` is not (n >= 2, k) or `lengths` does not have n entries.
    """
    z, lengths = np.asarray(z, dtype=np.float64), np.asarray(lengths)
    if z.ndim != 2 or len(z) < 2 or lengths.shape != (len(z),):
        raise ValueError(f"z has shape {z.shape} and lengths {lengths.shape}; allowed: z (n >= 2, k), lengths (n,)")
    xy, ratios = _pca_2d(z)
    fig = Figure(figsize=(6, 5))
    ax = fig.subplots()
    points = ax.scatter(xy[:, 0], xy[:, 1], c=lengths, cmap="viridis", s=10)
    fig.colorbar(points, ax=ax, label="sequence length (tokens)")
    ax.set_xlabel(f"PC 1 ({100 * ratios[0]:.1f} % of variance)")
    ax.set_ylabel(f"PC 2 ({100 * ratios[1]:.1f} % of variance)")
    ax.set_title(title, fontsize="medium")
    return fig


def bars_figure(values: Mapping[str, Sequence[float]], ylabel: str, title: str,
                document: Mapping[str, float] | None = None) -> Figure:
    """One bar per configuration (mean over seeds, min..max as the error bar), and the document's
    value for it as a hollow marker where it gave one.

    Raises:
        ValueError: no configurations, or one without values.
    """
    if not values or any(len(v) == 0 for v in values.values()):
        raise ValueError("values is empty or has a configuration without values; allowed: name -> values")
    names = list(values)
    means = np.array([np.mean(values[n]) for n in names])
    low = means - np.array([np.min(values[n]) for n in names])
    high = np.array([np.max(values[n]) for n in names]) - means
    fig = Figure(figsize=(1.6 * len(names) + 2, 4))
    ax = fig.subplots()
    ax.bar(range(len(names)), means, yerr=[low, high], capsize=4, color="tab:blue", alpha=0.8, label="measured")
    for i, name in enumerate(names):
        ax.annotate(f"{means[i]:.3f}", (i, means[i]), ha="center", va="bottom", fontsize="small",
                    xytext=(0, 3), textcoords="offset points")
        if document and name in document:
            ax.plot([i + 0.3], [document[name]], marker="D", mfc="none", mec="black", ls="none",
                    label="document" if i == min(j for j, n in enumerate(names) if n in document) else None)
    ax.set_xticks(range(len(names)), names, rotation=15, fontsize="small")
    ax.set_ylabel(ylabel)
    ax.set_title(title, fontsize="medium")
    ax.legend(fontsize="small")
    fig.tight_layout()
    return fig


def curves_figure(curves: Mapping[str, Sequence[Sequence[float]]], ylabel: str, title: str) -> Figure:
    """Per configuration, the per-epoch curves of its seeds (mean line, min..max band).

    Raises:
        ValueError: no configurations, or one without a curve.
    """
    if not curves or any(not c or not any(len(s) for s in c) for c in curves.values()):
        raise ValueError("curves is empty or has a configuration without a curve; allowed: name -> curves")
    fig = Figure(figsize=(7, 4))
    ax = fig.subplots()
    for name, seeds in curves.items():
        n = max(len(s) for s in seeds)
        table = np.full((len(seeds), n), np.nan)
        for i, s in enumerate(seeds):
            table[i, :len(s)] = s
        epochs = np.arange(1, n + 1)
        line, = ax.plot(epochs, np.nanmean(table, axis=0), label=f"{name} (n={len(seeds)})")
        ax.fill_between(epochs, np.nanmin(table, axis=0), np.nanmax(table, axis=0), color=line.get_color(),
                        alpha=0.2)
    ax.set_xlabel("epoch")
    ax.set_ylabel(ylabel)
    ax.set_title(title, fontsize="medium")
    ax.legend(fontsize="small")
    return fig


def reconstruction_text(originals: Sequence[Sequence[str]], reconstructed: Sequence[Sequence[str]],
                        cosines: Sequence[float], title: str) -> str:
    """Each sequence's words and the nearest vocabulary word of each reconstructed vector, line by
    line, with the sequence's token cosine: what a cosine of 0.6 or 0.86 reads like.

    Raises:
        ValueError: the three sequences differ in length.
    """
    if not len(originals) == len(reconstructed) == len(cosines):
        raise ValueError(f"{len(originals)} originals, {len(reconstructed)} reconstructions and {len(cosines)} "
                         "cosines; allowed: the same number of each")
    lines = [title, "=" * len(title), ""]
    for i, (words, guess, cos) in enumerate(zip(originals, reconstructed, cosines)):
        lines += [f"[{i}] token cosine {cos:.3f}", f"  original:      {' '.join(words)}",
                  f"  reconstructed: {' '.join(guess)}", ""]
    return "\n".join(lines)
