"""Figures of a document-000 run: detection efficiency versus SNR, and the ROC curve."""

from __future__ import annotations

from typing import Sequence

import numpy as np
from matplotlib.figure import Figure

from projects.cpc_snn_gw.detection import EfficiencyCurve


def efficiency_figure(curves: Sequence[EfficiencyCurve], title: str) -> Figure:
    """Detected fraction of injections per optimal-SNR bin, one line per threshold."""
    fig = Figure(figsize=(6.0, 4.0), layout="constrained")
    ax = fig.add_subplot()
    for curve in curves:
        centres = 0.5 * (curve.bin_edges[1:] + curve.bin_edges[:-1])
        ax.errorbar(centres, curve.efficiency, yerr=curve.stderr(), marker="o", capsize=3,
                    label=curve.label)
    ax.set(xlabel="optimal network SNR", ylabel="detection efficiency", ylim=(-0.02, 1.02), title=title)
    ax.grid(alpha=0.3)
    ax.legend(loc="lower right")
    return fig


def roc_figure(far: np.ndarray, tpr: np.ndarray, auc: float, title: str) -> Figure:
    """ROC curve on log false-alarm axis, where detection pipelines are judged."""
    fig = Figure(figsize=(6.0, 4.0), layout="constrained")
    ax = fig.add_subplot()
    positive = far > 0
    ax.plot(far[positive], tpr[positive], label=f"AUC {auc:.3f}")
    ax.plot([1e-3, 1], [1e-3, 1], color="grey", linestyle=":", label="chance")
    ax.set(xscale="log", xlim=(1e-3, 1), ylim=(0, 1.02), xlabel="false-alarm rate (per window)",
           ylabel="true-positive rate", title=title)
    ax.grid(alpha=0.3, which="both")
    ax.legend(loc="lower right")
    return fig


def comparison_figure(names: Sequence[str], values: dict[str, dict[str, Sequence[float]]],
                      panels: Sequence[tuple[str, str]], title: str) -> Figure:
    """One panel per metric: each configuration's mean over seeds as a bar with the sample standard
    deviation, and every seed as a dot, so the spread is seen, not only summarised.

    Args:
        names: the configurations, in table order.
        values: configuration -> metric key -> one value per seed (NaN: not measured).
        panels: (metric key, axis label) per panel.
    """
    fig = Figure(figsize=(max(6.0, 1.1 * len(names) * len(panels)), 4.0), layout="constrained")
    axes = fig.subplots(1, len(panels), squeeze=False)[0]
    xs = np.arange(len(names), dtype=float)
    for ax, (key, label) in zip(axes, panels):
        per_seed = [np.asarray(values[n].get(key, []), dtype=float) for n in names]
        means = [float(np.nanmean(v)) if np.isfinite(v).any() else np.nan for v in per_seed]
        stds = [float(np.nanstd(v, ddof=1)) if np.isfinite(v).sum() > 1 else 0.0 for v in per_seed]
        ax.bar(xs, means, width=0.6, yerr=stds, capsize=4, color="C0", alpha=0.6)
        for x, v in zip(xs, per_seed):
            ax.plot(np.full(len(v), x), v, "o", color="black", markersize=3)
        ax.set_xticks(xs, names, rotation=30, ha="right")
        ax.set(ylabel=label)
        ax.grid(alpha=0.3, axis="y")
    fig.suptitle(title)
    return fig
