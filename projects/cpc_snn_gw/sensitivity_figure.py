"""The figure MLGWSC-1 judges searches by: sensitive distance against false-alarm rate per month."""

from __future__ import annotations

from typing import Mapping

import numpy as np
from matplotlib.figure import Figure

from jax_modules.gw_data.mlgwsc_eval import Sensitivity


def sensitivity_figure(curves: Mapping[str, Sensitivity], title: str) -> Figure:
    """One line per search: its sensitive distance at each false-alarm rate, a step at each background
    trigger's rate (a rate between two of them gets the distance of the higher threshold; log axis,
    rates below one false alarm in the background left out: they are not measured), with the
    Monte-Carlo error as a band."""
    fig = Figure(figsize=(6.5, 4.2), layout="constrained")
    ax = fig.add_subplot()
    for label, curve in curves.items():
        shown = curve.far > 0
        far = curve.far_per_month[shown]
        distance = curve.distance[shown]
        volume = curve.volume[shown]
        error = curve.volume_error[shown]
        low = (3.0 * np.maximum(volume - error, 0.0) / (4.0 * np.pi)) ** (1.0 / 3.0)
        high = (3.0 * (volume + error) / (4.0 * np.pi)) ** (1.0 / 3.0)
        (line,) = ax.step(far, distance, where="pre", label=f"{label} ({curve.n_injections} injections)")
        ax.fill_between(far, low, high, step="pre", alpha=0.2, color=line.get_color())
    ax.set(xscale="log", xlabel="false-alarm rate [per month]", ylabel="sensitive distance [Mpc]", title=title)
    ax.grid(alpha=0.3, which="both")
    ax.legend(loc="lower right")
    return fig
