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
