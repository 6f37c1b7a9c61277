"""Figures of the document-004 runs (`projects/fixmatch_pu/figures.py`): what each draws, read back
from the matplotlib artists, and that each renders to PNG."""

from __future__ import annotations

import io

import numpy as np
import pytest
from matplotlib.figure import Figure
from matplotlib.patches import Circle, Rectangle

from lightning_modules.fixmatch_pu.picking import PickMatch
from projects.fixmatch_pu.figures import DOCUMENT_TIMELINE, auc_figure, patches_figure, picks_figure


def _png(fig: Figure) -> bytes:
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png")
    return buffer.getvalue()


# --- auc_figure ------------------------------------------------------------------------------


def test_auc_figure_draws_the_curves_chance_and_the_document_timeline() -> None:
    curves = {"val/auc": [0.50, 0.51, float("nan"), 0.55, 0.57], "other run": [0.49, 0.52, 0.60]}
    fig = auc_figure(curves, title="document 004")
    assert isinstance(fig, Figure) and len(fig.axes) == 1
    ax = fig.axes[0]
    assert len(ax.lines) == 3
    np.testing.assert_allclose(ax.lines[0].get_xdata(), [1, 2, 4, 5])  # the NaN epoch is skipped
    np.testing.assert_allclose(ax.lines[0].get_ydata(), [0.50, 0.51, 0.55, 0.57])
    np.testing.assert_allclose(ax.lines[1].get_xdata(), [1, 2, 3])
    np.testing.assert_allclose(ax.lines[1].get_ydata(), [0.49, 0.52, 0.60])
    np.testing.assert_allclose(ax.lines[2].get_ydata(), [0.5, 0.5])  # chance
    assert ax.lines[2].get_linestyle() == "--"
    boxes = [p for p in ax.patches if isinstance(p, Rectangle)]
    assert len(boxes) == len(DOCUMENT_TIMELINE)
    for rect, (start, stop, low, high) in zip(boxes, DOCUMENT_TIMELINE):
        assert rect.get_x() == start and rect.get_x() + rect.get_width() == stop
        assert rect.get_y() == pytest.approx(low) and rect.get_y() + rect.get_height() == pytest.approx(high)
    assert boxes[0].get_alpha() > boxes[1].get_alpha()  # the run (5 epochs) has not reached epoch 10
    assert ax.get_xlim()[1] == 50
    legend = [t.get_text() for t in ax.get_legend().get_texts()]
    assert legend[:2] == ["val/auc", "other run"] and "document 004's expected range" in legend
    assert ax.get_title() == "document 004"
    assert _png(fig).startswith(b"\x89PNG")


def test_auc_figure_extends_past_epoch_50_and_takes_other_timelines() -> None:
    fig = auc_figure({"val/auc": list(np.linspace(0.5, 0.7, 60))}, title="long",
                     expected=[(1, 5, 0.4, 0.6)])
    ax = fig.axes[0]
    assert ax.get_xlim()[1] == 60
    assert len(ax.patches) == 1
    assert len(ax.lines[0].get_ydata()) == 60


@pytest.mark.parametrize("curves,expected,match", [
    ({}, DOCUMENT_TIMELINE, r"curves is empty"),
    ({"a": [0.5]}, [(10, 1, 0.5, 0.6)], r"expected has the stage \(10, 1, 0.5, 0.6\); allowed"),
    ({"a": [0.5]}, [(1, 10, 0.7, 0.6)], r"auc_low <= auc_high"),
])
def test_auc_figure_rejects_bad_arguments(curves, expected, match) -> None:
    with pytest.raises(ValueError, match=match):
        auc_figure(curves, title="t", expected=expected)


# --- picks_figure ----------------------------------------------------------------------------


def test_picks_figure_draws_one_marker_per_particle_and_per_pick() -> None:
    rng = np.random.default_rng(0)
    image = rng.normal(size=(128, 160)).astype(np.float32)
    image[0, 0] = 1e6  # an outlier the percentile clip ignores
    truth = np.array([[20, 30], [64, 100], [100, 40]])
    picks = np.array([[21, 29], [64, 102], [10, 150], [90, 90], [50, 50]])
    match = PickMatch(tp=2, fp=3, fn=1)
    fig = picks_figure(image, truth, picks, box=24, title="micrograph 0", match=match)
    assert isinstance(fig, Figure) and len(fig.axes) == 1
    ax = fig.axes[0]
    circles = [p for p in ax.patches if isinstance(p, Circle)]
    squares = [p for p in ax.patches if isinstance(p, Rectangle)]
    assert len(circles) == len(truth) and len(squares) == len(picks)
    for circle, (row, col) in zip(circles, truth):
        assert circle.center == (col, row) and circle.radius == 12
    for square, (row, col) in zip(squares, picks):
        assert (square.get_x(), square.get_y()) == (col - 12, row - 12)
        assert square.get_width() == square.get_height() == 24
    low, high = ax.images[0].get_clim()
    assert (low, high) == pytest.approx(tuple(np.percentile(image, [1, 99])))
    assert high < 10
    assert "precision 0.40" in ax.get_title() and "recall 0.67" in ax.get_title()
    assert [t.get_text() for t in ax.get_legend().get_texts()] == ["true particles (3)", "picks (5)"]
    assert _png(fig).startswith(b"\x89PNG")


def test_picks_figure_without_match_or_picks() -> None:
    fig = picks_figure(np.zeros((64, 64)), np.array([[32, 32]]), np.zeros((0, 2)), box=16, title="none")
    ax = fig.axes[0]
    assert ax.get_title() == "none" and len(ax.patches) == 1
    assert _png(fig).startswith(b"\x89PNG")


@pytest.mark.parametrize("image,truth,picks,box,match", [
    (np.zeros((2, 8, 8)), np.zeros((0, 2)), np.zeros((0, 2)), 4, r"image has shape \(2, 8, 8\)"),
    (np.zeros((8, 8)), np.zeros((1, 3)), np.zeros((0, 2)), 4, r"truth has shape \(1, 3\)"),
    (np.zeros((8, 8)), np.zeros((0, 2)), np.zeros(2), 4, r"picks has shape \(2,\)"),
    (np.zeros((8, 8)), np.zeros((0, 2)), np.zeros((0, 2)), 0, r"box=0 is not allowed"),
])
def test_picks_figure_rejects_bad_arguments(image, truth, picks, box, match) -> None:
    with pytest.raises(ValueError, match=match):
        picks_figure(image, truth, picks, box=box, title="t")


# --- patches_figure --------------------------------------------------------------------------


def test_patches_figure_is_the_notes_data_quality_check() -> None:
    rng = np.random.default_rng(0)
    positives, unlabeled = rng.normal(size=(12, 16, 16)), rng.normal(size=(4, 16, 16))
    fig = patches_figure(positives, unlabeled, n=10)
    assert isinstance(fig, Figure) and len(fig.axes) == 20
    top, bottom = fig.axes[:10], fig.axes[10:]
    assert [ax.get_title() for ax in top] == ["Positive"] * 10
    assert [ax.get_title() for ax in bottom] == ["Unlabeled"] * 4 + [""] * 6
    assert sum(len(ax.images) for ax in fig.axes) == 14
    np.testing.assert_array_equal(top[3].images[0].get_array(), positives[3])
    np.testing.assert_array_equal(bottom[2].images[0].get_array(), unlabeled[2])
    assert not any(ax.axison for ax in fig.axes)
    assert _png(fig).startswith(b"\x89PNG")


def test_patches_figure_with_few_or_no_patches() -> None:
    fig = patches_figure(np.zeros((2, 8, 8)), np.zeros((0, 8, 8)), n=10, title="few")
    assert len(fig.axes) == 4 and fig.get_suptitle() == "few"
    assert len(patches_figure(np.zeros((0, 8, 8)), np.zeros((0, 8, 8))).axes) == 2


@pytest.mark.parametrize("positives,unlabeled,n,match", [
    (np.zeros((2, 8, 8)), np.zeros((2, 8, 8)), 0, r"n=0 is not allowed; allowed: an integer >= 1"),
    (np.zeros((8, 8)), np.zeros((2, 8, 8)), 10, r"positives has shape \(8, 8\); allowed: \(count, height, width\)"),
    (np.zeros((2, 8, 8)), np.zeros(3), 10, r"unlabeled has shape \(3,\)"),
])
def test_patches_figure_rejects_bad_arguments(positives, unlabeled, n, match) -> None:
    with pytest.raises(ValueError, match=match):
        patches_figure(positives, unlabeled, n=n)
