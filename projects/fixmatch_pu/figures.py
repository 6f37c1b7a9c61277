"""Figures of the document-004 runs: validation AUC against the document's expected timeline, a
micrograph with the true particles and the model's picks, and the note's patch "data quality check".

Pure functions: arrays in, a matplotlib `Figure` out, built without pyplot so they are headless and
safe in threads. No MLflow here; the runs log what these return with `mlflow.log_figure`.
"""

from __future__ import annotations

from typing import Mapping, Sequence

import numpy as np
from matplotlib.figure import Figure
from matplotlib.patches import Circle, Rectangle
from matplotlib.ticker import MaxNLocator

from lightning_modules.fixmatch_pu.picking import PickMatch

__all__ = ["DOCUMENT_TIMELINE", "auc_figure", "picks_figure", "patches_figure"]

# Document 004, "Expected Timeline": (first epoch, last epoch, AUC low, AUC high) per stage:
# warming up, initial learning, convergence.
DOCUMENT_TIMELINE: tuple[tuple[int, int, float, float], ...] = (
    (1, 10, 0.50, 0.52),
    (10, 30, 0.52, 0.58),
    (30, 50, 0.58, 0.65),
)

_TRUTH_COLOUR = "tab:green"
_PICK_COLOUR = "tab:orange"


def auc_figure(curves: Mapping[str, Sequence[float]], *, title: str,
               expected: Sequence[tuple[int, int, float, float]] = DOCUMENT_TIMELINE) -> Figure:
    """Validation ROC AUC per epoch (epoch 1..n), one line per labelled curve, over the document's
    expected range as shaded boxes and chance (0.5) as a dashed line.

    The lines come first in `ax.lines`, in the order of `curves`, then the chance line. NaN values
    (epochs without a validation) are left out of their line. Boxes after the last plotted epoch
    are drawn lighter: the run has not reached them. The y axis shows every curve and every box.

    Raises:
        ValueError: no curves, or an expected stage that is not (from <= to, low <= high).
    """
    if not curves:
        raise ValueError("curves is empty; allowed: a mapping of label to per-epoch AUC, e.g. {'val/auc': [...]}")
    for row in expected:
        if len(row) != 4 or not (row[0] <= row[1] and row[2] <= row[3]):
            raise ValueError(f"expected has the stage {tuple(row)!r}; allowed: (epoch_from, epoch_to, "
                             "auc_low, auc_high) with epoch_from <= epoch_to and auc_low <= auc_high")
    fig = Figure(figsize=(6.5, 4.0), layout="constrained")
    ax = fig.add_subplot()
    n = max(len(values) for values in curves.values())
    for label, values in curves.items():
        y = np.asarray(values, dtype=np.float64).reshape(-1)
        epochs = np.arange(1, len(y) + 1)
        finite = ~np.isnan(y)
        ax.plot(epochs[finite], y[finite], marker="o", markersize=3, label=label)
    ax.axhline(0.5, color="grey", linestyle="--", linewidth=1, label="chance")
    for i, (start, stop, low, high) in enumerate(expected):
        ax.add_patch(Rectangle((start, low), stop - start, high - low, facecolor="tab:blue", edgecolor="none",
                               alpha=0.2 if start <= n else 0.08,
                               label="document 004's expected range" if i == 0 else None))
    last = max([50, n] + [row[1] for row in expected])
    shown = [v for values in curves.values() for v in np.asarray(values, dtype=np.float64).reshape(-1)
             if np.isfinite(v)] + [row[2] for row in expected] + [row[3] for row in expected] + [0.5]
    pad = 0.02 * (max(shown) - min(shown) or 1.0)
    ax.set(xlim=(0, last), ylim=(min(shown) - pad, max(shown) + pad), xlabel="epoch", ylabel="validation ROC AUC",
           title=title)
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.grid(alpha=0.3)
    ax.legend(loc="lower right")
    return fig


def _check_points(name: str, points: np.ndarray) -> np.ndarray:
    points = np.asarray(points)
    if points.ndim != 2 or points.shape[1] != 2:
        raise ValueError(f"{name} has shape {points.shape}; allowed: (n, 2) as (row, col)")
    return points


def picks_figure(image: np.ndarray, truth: np.ndarray, picks: np.ndarray, *, box: int, title: str,
                 match: PickMatch | None = None) -> Figure:
    """The micrograph in grey (contrast clipped to its 1st-99th percentile), each true particle as a
    green circle of radius box/2 and each pick as an orange box-sized square; precision and recall
    in the title when `match` is given.

    Coordinates are (row, col) as the simulator and the picker give them: x = col, y = row, with
    row 0 at the top. One patch per particle and per pick lands in `ax.patches` (truths first).

    Raises:
        ValueError: a non-2-D image, points not of shape (n, 2), or a box below 1.
    """
    image = np.asarray(image, dtype=np.float64)
    if image.ndim != 2:
        raise ValueError(f"image has shape {image.shape}; allowed: a 2-D micrograph (height, width)")
    truth, picks = _check_points("truth", truth), _check_points("picks", picks)
    if not (isinstance(box, (int, np.integer)) and box >= 1):
        raise ValueError(f"box={box!r} is not allowed; allowed: an integer >= 1")
    finite = image[np.isfinite(image)]
    low, high = np.percentile(finite, [1, 99]) if finite.size else (0.0, 1.0)
    fig = Figure(figsize=(6.5, 6.5), layout="constrained")
    ax = fig.add_subplot()
    ax.imshow(image, cmap="gray", vmin=low, vmax=high if high > low else low + 1, interpolation="nearest")
    half = box / 2
    for row, col in truth:
        ax.add_patch(Circle((col, row), half, fill=False, edgecolor=_TRUTH_COLOUR, linewidth=1.5))
    for row, col in picks:
        ax.add_patch(Rectangle((col - half, row - half), box, box, fill=False, edgecolor=_PICK_COLOUR,
                               linewidth=1.2, linestyle="--"))
    handles = [Circle((0, 0), 1, fill=False, edgecolor=_TRUTH_COLOUR, label=f"true particles ({len(truth)})"),
               Rectangle((0, 0), 1, 1, fill=False, edgecolor=_PICK_COLOUR, linestyle="--",
                         label=f"picks ({len(picks)})")]
    ax.legend(handles=handles, loc="upper right", framealpha=0.8)
    if match is not None:
        title = (f"{title}\nprecision {match.precision:.2f}, recall {match.recall:.2f} "
                 f"(tp {match.tp}, fp {match.fp}, fn {match.fn})")
    ax.set(title=title, xlim=(-0.5, image.shape[1] - 0.5), ylim=(image.shape[0] - 0.5, -0.5))
    ax.set_axis_off()
    return fig


def patches_figure(positives: np.ndarray, unlabeled: np.ndarray, *, n: int = 10,
                   title: str = "Data quality check: labeled positives and unlabeled patches") -> Figure:
    """The note's "data quality check": up to `n` labeled positive patches in the first row and up to
    `n` unlabeled ones in the second, each in grey on its own contrast, axes off.

    The figure has 2 x columns axes, columns = the longer row (at least 1, at most `n`); slots with
    no patch stay blank.

    Raises:
        ValueError: `n` below 1, or patches not of shape (count, height, width).
    """
    if not (isinstance(n, (int, np.integer)) and n >= 1):
        raise ValueError(f"n={n!r} is not allowed; allowed: an integer >= 1")
    rows = []
    for name, patches in (("positives", positives), ("unlabeled", unlabeled)):
        patches = np.asarray(patches)
        if patches.ndim != 3:
            raise ValueError(f"{name} has shape {patches.shape}; allowed: (count, height, width)")
        rows.append(patches[:n])
    columns = max(1, *(len(r) for r in rows))
    fig = Figure(figsize=(2.0 * columns, 4.4), layout="constrained")
    axes = fig.subplots(2, columns, squeeze=False)
    for axes_row, patches, label in zip(axes, rows, ("Positive", "Unlabeled")):
        for i, ax in enumerate(axes_row):
            if i < len(patches):
                ax.imshow(patches[i], cmap="gray", interpolation="nearest")
                ax.set_title(label)
            ax.set_axis_off()
    fig.suptitle(title)
    return fig
