"""Figures and tables of the document-003 runs (`projects/cvkan/figures.py`)."""

from __future__ import annotations

import importlib
import importlib.util
import pathlib

import numpy as np
import pytest
from matplotlib.collections import PolyCollection
from matplotlib.container import BarContainer
from matplotlib.figure import Figure


def _load_figures():
    """The module by package import, or straight from its file while the package's other
    modules (imported by its `__init__`) are still being written."""
    try:
        return importlib.import_module("projects.cvkan.figures")
    except ImportError:
        path = pathlib.Path(__file__).resolve().parents[2] / "projects" / "cvkan" / "figures.py"
        spec = importlib.util.spec_from_file_location("_cvkan_figures", path)
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        return module


figures = _load_figures()


def _legend_texts(ax_or_fig) -> list[str]:
    legend = ax_or_fig.get_legend() if hasattr(ax_or_fig, "get_legend") else None
    if legend is None:  # figure-level legends
        legend = ax_or_fig.legends[0]
    return [t.get_text() for t in legend.get_texts()]


# --- polarization ----------------------------------------------------------------------------

def _history(n_blocks: int, scale: float = 1.0) -> dict[str, list[tuple[int, float]]]:
    return {f"polar/block{b}/magnitude_cv": [(e, scale * (b + 1) * 0.1 * e) for e in range(1, 4)]
            for b in range(n_blocks)}


def test_polarization_sorts_blocks_numerically_and_overlays_reference():
    histories = _history(12)
    shuffled = dict(reversed(list(histories.items())))
    fig = figures.polarization_figure(shuffled, "no norm", reference=_history(12, 0.5),
                                      reference_label="layer norm")
    (ax,) = fig.axes
    lines = ax.get_lines()
    assert len(lines) == 24
    labels = _legend_texts(ax)
    # numeric, not lexicographic (block 10 after block 9, not after block 1)
    assert labels[:12] == [f"block {b}" for b in range(12)]
    assert labels[12:] == [f"block {b} (layer norm)" for b in range(12)]
    assert [ln.get_linestyle() for ln in lines] == ["-"] * 12 + ["--"] * 12
    # same block keeps its colour across the two runs
    assert lines[3].get_color() == lines[15].get_color()
    # block 10's line carries block 10's values
    np.testing.assert_allclose(lines[10].get_ydata(), [1.1 * e for e in (1, 2, 3)])
    assert ax.get_ylabel() == "token-magnitude CV (polarization)"
    assert ax.get_title() == "no norm"


def test_polarization_label_suffix_and_points_sorted_by_epoch():
    fig = figures.polarization_figure({"polar/block0/magnitude_cv": [(3, 0.3), (1, 0.1)]}, "t",
                                      label="none")
    (line,) = fig.axes[0].get_lines()
    assert list(line.get_xdata()) == [1, 3]
    assert _legend_texts(fig.axes[0]) == ["block 0 (none)"]


@pytest.mark.parametrize("histories, reference, match", [
    ({}, None, "histories is empty"),
    ({"polar/block0/magnitude_cv": []}, None, "has no \\(epoch, value\\) points"),
    (_history(1), {}, "reference is empty"),
])
def test_polarization_rejects_empty(histories, reference, match):
    with pytest.raises(ValueError, match=match):
        figures.polarization_figure(histories, "t", reference=reference)


# --- pooling ---------------------------------------------------------------------------------

def _pooling_rows() -> list[dict]:
    rows = []
    for domain, metric in (("timeseries", "test/mse"), ("image", "test/acc"), ("audio", "test/acc")):
        for pooling in ("magnitude", "mean", "attention"):
            rows.append({"domain": domain, "pooling": pooling, "metric": metric,
                         "mean": 0.5, "std": 0.02, "n": 3})
    rows[0]["std"] = None  # a single seed
    return rows


def test_pooling_figure_one_subplot_per_domain_with_document_markers(tmp_path):
    fig = figures.pooling_table_figure(_pooling_rows(), document=figures.DOCUMENT_POOLING)
    axes = fig.axes
    assert [ax.get_title() for ax in axes] == ["image", "audio", "timeseries"]
    assert [ax.get_ylabel() for ax in axes] == ["test/acc", "test/acc", "test/mse"]
    for ax in axes:
        bars = [c for c in ax.containers if isinstance(c, BarContainer)]
        assert len(bars) == 1 and len(bars[0]) == 3
        assert [t.get_text() for t in ax.get_xticklabels()] == ["mean", "attention", "magnitude"]
        # document has mean and attention only: two hollow markers per domain
        markers = [ln for ln in ax.get_lines() if ln.get_marker() == "D"]
        assert len(markers) == 2
        assert all(ln.get_markerfacecolor() == "none" for ln in markers)
    image_doc = sorted(float(ln.get_ydata()[0]) for ln in axes[0].get_lines() if ln.get_marker() == "D")
    assert image_doc == [0.468, 0.482]
    assert _legend_texts(fig) == ["document"]  # one entry, not six
    fig.savefig(tmp_path / "pooling.png")
    assert (tmp_path / "pooling.png").stat().st_size > 1000


def test_pooling_figure_without_document_has_no_legend():
    fig = figures.pooling_table_figure(_pooling_rows()[:2])
    assert len(fig.axes) == 1 and not fig.legends


@pytest.mark.parametrize("mutate, match", [
    (lambda rows: rows.clear(), "rows is empty"),
    (lambda rows: rows[1].pop("std"), "lacks keys \\['std'\\]"),
    (lambda rows: rows[1].update(metric="test/acc"), "has metrics 'test/mse' and 'test/acc'"),
    (lambda rows: rows.append(dict(rows[0])), "repeats \\(domain, pooling\\)"),
])
def test_pooling_figure_rejects_bad_rows(mutate, match):
    rows = _pooling_rows()
    mutate(rows)
    with pytest.raises(ValueError, match=match):
        figures.pooling_table_figure(rows)


# --- convergence -----------------------------------------------------------------------------

def test_convergence_mean_band_and_target():
    curves = {"cvkan": [[0.5, 0.9, 0.99], [0.7, 0.95]],  # second seed stopped early
              "real": [[0.4, 0.6, 0.8]]}
    fig = figures.convergence_figure(curves, target=0.99)
    (ax,) = fig.axes
    lines = ax.get_lines()
    assert len(lines) == 3  # two means + the target
    np.testing.assert_allclose(lines[0].get_xdata(), [1, 2, 3])
    np.testing.assert_allclose(lines[0].get_ydata(), [0.6, 0.925, 0.99])
    assert len([c for c in ax.collections if isinstance(c, PolyCollection)]) == 2
    band = ax.collections[0].get_paths()[0].vertices[:, 1]
    assert band.min() == pytest.approx(0.5) and band.max() == pytest.approx(0.99)
    assert _legend_texts(ax) == ["cvkan (n=2)", "real (n=1)", "99 %"]
    assert lines[2].get_linestyle() == "--"
    assert (ax.get_xlabel(), ax.get_ylabel()) == ("epoch", "val/acc")


@pytest.mark.parametrize("curves, match", [
    ({}, "curves is empty"),
    ({"a": []}, "curves\\['a'\\] has no epochs"),
    ({"a": [[], []]}, "curves\\['a'\\] has no epochs \\(got 2 seed curves\\)"),
])
def test_convergence_rejects_empty(curves, match):
    with pytest.raises(ValueError, match=match):
        figures.convergence_figure(curves)


# --- phases ----------------------------------------------------------------------------------

def test_phase_concentration_identical_vs_uniform():
    rng = np.random.default_rng(0)
    n, d = 400, 8
    labels = np.repeat([0, 1, 2], n)
    phases = np.concatenate([
        np.full((n, d), 1.3),  # identical
        rng.uniform(-np.pi, np.pi, (n, d)),  # spread uniformly
        np.full((n, d), 1.3 + 2 * np.pi),  # identical modulo 2 pi
    ])
    r = figures.phase_concentration(phases, labels)
    assert set(r) == {0, 1, 2}
    assert r[0] == pytest.approx(1.0) and r[2] == pytest.approx(1.0)
    assert r[1] < 0.05
    # independent reference: R from the circular-mean formula with cos/sin sums
    c, s = np.cos(phases[labels == 1]).mean(), np.sin(phases[labels == 1]).mean()
    assert r[1] == pytest.approx(np.hypot(c, s))
    # two opposite phases cancel exactly
    assert figures.phase_concentration(np.array([[0.0, np.pi]]), np.array([5]))[5] == pytest.approx(0.0, abs=1e-12)


def test_phase_figure_polar_grid_titles_carry_r(tmp_path):
    rng = np.random.default_rng(1)
    labels = np.repeat(np.arange(12), 20)
    phases = np.where(labels[:, None] % 2 == 0, 0.5, rng.uniform(-np.pi, np.pi, (240, 4)))
    names = [f"c{i}" for i in range(12)]
    fig = figures.phase_figure(phases, labels, class_names=names, max_classes=10)
    assert isinstance(fig, Figure)
    axes = [ax for ax in fig.axes if ax.name == "polar"]
    assert len(axes) == len(fig.axes) == 10
    assert len(axes[0].patches) == 24  # default bins
    titles = [ax.get_title() for ax in axes]
    assert titles[0] == "c0\nR = 1.00"
    assert titles[1].startswith("c1\nR = 0.")
    assert "first 10 of 12 classes" in fig.get_suptitle()
    heights = [p.get_height() for p in axes[0].patches]
    assert sum(heights) == pytest.approx(1.0) and max(heights) == pytest.approx(1.0)
    fig.savefig(tmp_path / "phase.png")
    assert (tmp_path / "phase.png").stat().st_size > 1000


@pytest.mark.parametrize("phases, labels, kwargs, match", [
    (np.zeros((5, 3)), np.zeros(4, dtype=int), {}, "phases has 5 samples but labels has 4"),
    (np.zeros((5, 3, 2)), np.zeros(5, dtype=int), {}, "must be \\(n_samples, d\\)"),
    (np.zeros((0, 3)), np.zeros(0, dtype=int), {}, "phases is empty"),
    (np.full((2, 3), np.nan), np.zeros(2, dtype=int), {}, "2 non-finite|6 non-finite"),
    (np.zeros((2, 3)), np.zeros(2), {}, "labels must be integers"),
    (np.zeros((2, 3)), np.array([0, 3]), {"class_names": ["a", "b"]}, "label 3 has no name"),
    (np.zeros((2, 3)), np.array([0, 1]), {"max_classes": 0}, "max_classes=0"),
])
def test_phase_figure_rejects_bad_inputs(phases, labels, kwargs, match):
    with pytest.raises(ValueError, match=match):
        figures.phase_figure(phases, labels, **kwargs)
