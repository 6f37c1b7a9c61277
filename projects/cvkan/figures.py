"""Figures and tables of the document-003 (CV-KAN) runs: polarization per block, the pooling
comparison across domains, convergence to a target accuracy, and per-class phase roses.

Pure functions: numbers in, a matplotlib `Figure` (or a markdown string) out. No pyplot state and
no MLflow here; the runs log what these return with `mlflow.log_figure` / `mlflow.log_text`.
"""

from __future__ import annotations

import math
import re
from typing import Any, Mapping, Sequence

import numpy as np
from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator

__all__ = [
    "DOCUMENT_POOLING",
    "polarization_figure",
    "pooling_table_figure",
    "convergence_figure",
    "phase_concentration",
    "phase_figure",
]

# Document 003, "Attention Pooling Marginally Better for Classification" (3 epochs, full data):
# accuracy for image (CIFAR-10) and audio (Speech Commands), MSE for timeseries (ETTh1).
DOCUMENT_POOLING: dict[tuple[str, str], float] = {
    ("image", "mean"): 0.468,
    ("image", "attention"): 0.482,
    ("audio", "mean"): 0.297,
    ("audio", "attention"): 0.305,
    ("timeseries", "mean"): 0.92,
    ("timeseries", "attention"): 0.92,
}

_DOMAIN_ORDER = ("image", "audio", "timeseries")
_POOLING_ORDER = ("mean", "attention", "magnitude")
_POOLING_KEYS = ("domain", "pooling", "metric", "mean", "std", "n")
_BLOCK = re.compile(r"(block|level)(\d+)")


def _ordered(values: Sequence[str], preferred: Sequence[str]) -> list[str]:
    """Distinct `values`: those in `preferred` first in that order, then the rest as first seen."""
    distinct = list(dict.fromkeys(values))
    return [v for v in preferred if v in distinct] + [v for v in distinct if v not in preferred]


def _block_key(name: str) -> tuple[int, int | str]:
    """Sort key: numbered blocks/levels by number, anything else after them by name."""
    match = _BLOCK.search(name)
    return (0, int(match.group(2))) if match else (1, name)


def _block_label(name: str) -> str:
    match = _BLOCK.search(name)
    return f"{match.group(1)} {match.group(2)}" if match else name


def _plot_histories(ax: Any, histories: Mapping[str, Sequence[tuple[int, float]]], argument: str,
                    linestyle: str, suffix: str) -> None:
    if not histories:
        raise ValueError(f"{argument} is empty; expected keys like 'polar/block0/magnitude_cv'")
    colours = [f"C{i % 10}" for i in range(len(histories))]
    for colour, name in zip(colours, sorted(histories, key=_block_key)):
        points = sorted(histories[name])
        if not points:
            raise ValueError(f"{argument}[{name!r}] has no (epoch, value) points")
        epochs, values = zip(*points)
        ax.plot(epochs, values, marker="o", markersize=3, color=colour, linestyle=linestyle,
                label=_block_label(name) + suffix)


def polarization_figure(histories: Mapping[str, Sequence[tuple[int, float]]], title: str,
                        reference: Mapping[str, Sequence[tuple[int, float]]] | None = None,
                        label: str | None = None, reference_label: str = "reference") -> Figure:
    """Token-magnitude coefficient of variation per block over epochs, one line per block.

    Document 003 claims important tokens grow ("polarization") unless layer norm flattens the
    magnitudes; a CV rising with depth/epochs is that effect. `reference` (e.g. the layer-norm
    run) is overlaid dashed in the same block colours, labelled "block i (reference_label)".

    Args:
        histories: metric name (e.g. "polar/block0/magnitude_cv") -> [(epoch, cv), ...].
        title: axes title.
        reference: a second run's histories, drawn dashed; None for none.
        label: suffix "(label)" for the solid lines; None leaves them "block i".
        reference_label: suffix for the dashed lines.

    Raises:
        ValueError: if `histories` (or a given `reference`) is empty or has an empty series.
    """
    fig = Figure(figsize=(6.0, 4.0), layout="constrained")
    ax = fig.add_subplot()
    _plot_histories(ax, histories, "histories", "-", f" ({label})" if label else "")
    if reference is not None:
        _plot_histories(ax, reference, "reference", "--", f" ({reference_label})")
    ax.set(xlabel="epoch", ylabel="token-magnitude CV (polarization)", title=title)
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.grid(alpha=0.3)
    ax.legend(fontsize="small")
    return fig


def pooling_table_figure(rows: Sequence[Mapping[str, Any]],
                         document: Mapping[tuple[str, str], float] | None = None) -> Figure:
    """Test metric per pooling mode (mean +- std over seeds), one subplot per domain.

    Domains report different metrics (accuracy vs MSE), so each gets its own y axis. Document
    values, when given, are drawn as hollow diamonds beside the matching bars.

    Args:
        rows: mappings with keys domain, pooling, metric, mean, std (None for one seed), n.
        document: (domain, pooling) -> the document's value; e.g. `DOCUMENT_POOLING`.

    Raises:
        ValueError: no rows, a row missing a key, a domain with two metrics, or a repeated
            (domain, pooling).
    """
    if not rows:
        raise ValueError("rows is empty; expected one mapping per (domain, pooling)")
    cells: dict[tuple[str, str], Mapping[str, Any]] = {}
    metrics: dict[str, str] = {}
    for i, row in enumerate(rows):
        missing = [k for k in _POOLING_KEYS if k not in row]
        if missing:
            raise ValueError(f"rows[{i}] lacks keys {missing}; has {sorted(row)}")
        domain, pooling = str(row["domain"]), str(row["pooling"])
        if (domain, pooling) in cells:
            raise ValueError(f"rows[{i}] repeats (domain, pooling)=({domain!r}, {pooling!r})")
        if metrics.setdefault(domain, str(row["metric"])) != str(row["metric"]):
            raise ValueError(f"rows[{i}]: domain {domain!r} has metrics {metrics[domain]!r} and "
                             f"{row['metric']!r}; expected one per domain")
        cells[(domain, pooling)] = row
    domains = _ordered([d for d, _ in cells], _DOMAIN_ORDER)
    fig = Figure(figsize=(3.2 * len(domains) + 0.8, 3.8), layout="constrained")
    axes = fig.subplots(1, len(domains), squeeze=False)[0]
    document_labelled = False
    for ax, domain in zip(axes, domains):
        poolings = _ordered([p for d, p in cells if d == domain], _POOLING_ORDER)
        xs = np.arange(len(poolings), dtype=float)
        means = [float(cells[(domain, p)]["mean"]) for p in poolings]
        stds = [float(cells[(domain, p)]["std"] or 0.0) for p in poolings]
        colours = [f"C{_POOLING_ORDER.index(p) if p in _POOLING_ORDER else 3 + i}"
                   for i, p in enumerate(poolings)]
        bars = ax.bar(xs, means, width=0.6, yerr=stds, capsize=4, color=colours, alpha=0.8)
        ax.bar_label(bars, labels=[f"n={cells[(domain, p)]['n']}" for p in poolings],
                     label_type="center", fontsize="small")
        if document:
            for x, p in zip(xs, poolings):
                if (domain, p) in document:
                    ax.plot(x + 0.38, document[(domain, p)], marker="D", markersize=7,
                            markerfacecolor="none", markeredgecolor="black", linestyle="none",
                            label=None if document_labelled else "document")
                    document_labelled = True
        ax.set_xticks(xs, poolings)
        ax.set(xlim=(-0.6, len(poolings) - 0.2), ylabel=metrics[domain], title=domain)
        ax.grid(alpha=0.3, axis="y")
    if document_labelled:
        fig.legend(loc="outside lower center", fontsize="small")
    return fig


def convergence_figure(curves: Mapping[str, Sequence[Sequence[float]]],
                       target: float = 0.99) -> Figure:
    """Validation accuracy per epoch: mean over seeds with a min..max band, per model variant.

    Seeds may stop at different epochs (early stopping at the target); each epoch is summarised
    over the seeds that reached it.

    Args:
        curves: variant name -> one per-epoch val/acc sequence per seed.
        target: accuracy drawn as a dashed horizontal line, labelled in percent.

    Raises:
        ValueError: no variants, or a variant with no seeds / only empty curves.
    """
    if not curves:
        raise ValueError("curves is empty; expected variant name -> per-seed val/acc sequences")
    fig = Figure(figsize=(6.0, 4.0), layout="constrained")
    ax = fig.add_subplot()
    for i, (name, seeds) in enumerate(curves.items()):
        length = max((len(s) for s in seeds), default=0)
        if length == 0:
            raise ValueError(f"curves[{name!r}] has no epochs (got {len(seeds)} seed curves)")
        table = np.full((len(seeds), length), np.nan)
        for j, seed in enumerate(seeds):
            table[j, :len(seed)] = np.asarray(seed, dtype=float)
        epochs = np.arange(1, length + 1)
        colour = f"C{i % 10}"
        ax.plot(epochs, np.nanmean(table, axis=0), color=colour, marker="o", markersize=3,
                label=f"{name} (n={len(seeds)})")
        ax.fill_between(epochs, np.nanmin(table, axis=0), np.nanmax(table, axis=0),
                        color=colour, alpha=0.2, linewidth=0)
    ax.axhline(target, color="grey", linestyle="--", label=f"{100 * target:g} %")
    ax.set(xlabel="epoch", ylabel="val/acc")
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.grid(alpha=0.3)
    ax.legend(loc="lower right", fontsize="small")
    return fig


def _check_phases(phases: np.ndarray, labels: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(n, d) float phases (a 1-d array is read as d=1) and (n,) int labels, or ValueError."""
    phases = np.asarray(phases, dtype=float)
    labels = np.asarray(labels)
    if phases.ndim == 1:
        phases = phases[:, None]
    if phases.ndim != 2 or labels.ndim != 1:
        raise ValueError(f"phases must be (n_samples, d) and labels (n_samples,); got shapes "
                         f"{phases.shape} and {labels.shape}")
    if phases.shape[0] != labels.shape[0]:
        raise ValueError(f"phases has {phases.shape[0]} samples but labels has {labels.shape[0]}")
    if phases.size == 0:
        raise ValueError(f"phases is empty (shape {phases.shape})")
    if not np.isfinite(phases).all():
        raise ValueError(f"phases has {int((~np.isfinite(phases)).sum())} non-finite values")
    if not np.issubdtype(labels.dtype, np.integer):
        raise ValueError(f"labels must be integers; got dtype {labels.dtype}")
    return phases, labels


def phase_concentration(phases: np.ndarray, labels: np.ndarray) -> dict[int, float]:
    """Per class, the mean resultant length R = |mean(exp(i*phase))| over its samples and features.

    R is 1 when all phases of a class coincide and near 0 when they are spread uniformly; the
    document reads class information from pooled phases, which requires R to differ by class
    (or the mean angles to differ).

    Raises:
        ValueError: mismatched lengths, wrong shapes, non-finite phases or non-integer labels.
    """
    phases, labels = _check_phases(phases, labels)
    return {int(c): float(np.abs(np.exp(1j * phases[labels == c]).mean()))
            for c in np.unique(labels)}


def phase_figure(phases: np.ndarray, labels: np.ndarray, class_names: Sequence[str] | None = None,
                 max_classes: int = 10, bins: int = 24) -> Figure:
    """Rose histogram of the pooled vector's phases per class, titled with the class's R.

    One polar subplot per class (the `max_classes` smallest labels), so a reader sees whether
    the phases cluster by class, as a phase-reading classifier needs.

    Args:
        phases: (n_samples, d) angles in radians of the pooled complex vector.
        labels: (n_samples,) integer classes.
        class_names: name per label index; None uses "class <label>".
        max_classes: most classes drawn.
        bins: histogram bins over [-pi, pi).

    Raises:
        ValueError: as `phase_concentration`, or `max_classes`/`bins` < 1, or a label with no
            entry in `class_names`.
    """
    if max_classes < 1:
        raise ValueError(f"max_classes={max_classes} must be >= 1")
    if bins < 1:
        raise ValueError(f"bins={bins} must be >= 1")
    concentration = phase_concentration(phases, labels)
    phases, labels = _check_phases(phases, labels)
    classes = sorted(concentration)[:max_classes]
    if class_names is not None and classes[-1] >= len(class_names):
        raise ValueError(f"label {classes[-1]} has no name; class_names has {len(class_names)}")
    ncols = min(5, len(classes))
    nrows = math.ceil(len(classes) / ncols)
    fig = Figure(figsize=(2.4 * ncols, 2.6 * nrows + 0.4), layout="constrained")
    edges = np.linspace(-np.pi, np.pi, bins + 1)
    for k, c in enumerate(classes):
        ax = fig.add_subplot(nrows, ncols, k + 1, projection="polar")
        wrapped = np.angle(np.exp(1j * phases[labels == c].ravel()))  # into [-pi, pi]
        counts, _ = np.histogram(wrapped, bins=edges)
        ax.bar(edges[:-1], counts / counts.sum(), width=np.diff(edges), align="edge",
               color=f"C{k % 10}", alpha=0.7, edgecolor="white", linewidth=0.5)
        ax.set_yticklabels([])
        ax.tick_params(labelsize="x-small")
        name = class_names[c] if class_names is not None else f"class {c}"
        ax.set_title(f"{name}\nR = {concentration[c]:.2f}", fontsize="small", pad=10)
    shown = "" if len(classes) == len(concentration) else f" (first {len(classes)} of {len(concentration)} classes)"
    fig.suptitle(f"pooled-vector phase per class{shown}", fontsize="medium")
    return fig
