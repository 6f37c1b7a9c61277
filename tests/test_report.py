"""The HTML health report and the gradient-flow figure."""

from __future__ import annotations

import base64
import html
import io
import re

import numpy as np
import pytest
from matplotlib.image import imread

from mlflow_plugins.analysis.snapshot import GradFlow
from mlflow_plugins.findings import Finding, Severity
from mlflow_plugins.recording import grad_flow_figure, render_report
from mlflow_plugins.thresholds import Thresholds


def _grad_flow(n: int = 100, steps: int = 20) -> GradFlow:
    """`n` long-named parameters, a few without gradient, one non-finite total norm."""
    rng = np.random.default_rng(0)
    received = np.ones(n, dtype=bool)
    received[[1, n // 2]] = False
    norms = 10.0 ** rng.uniform(-2, 2, steps)
    norms[-1] = np.nan
    return GradFlow(names=tuple(f"encoder.layers.{i // 4}.self_attn.out_proj.weight_{i}"
                                for i in range(n)),
                    mean_abs_sum=np.where(received, 10.0 ** rng.uniform(-10, -2, n), 0.0),
                    max_l2=np.ones(n), received=received, observations=1,
                    steps=list(range(steps)), total_norm=norms.tolist())


def _png_of(page: str) -> bytes:
    match = re.search(r"src='data:image/png;base64,([A-Za-z0-9+/=]+)'", page)
    assert match, "no embedded PNG"
    return base64.b64decode(match.group(1))


def test_report_is_self_contained_and_shows_every_part() -> None:
    findings = [Finding.of("GRAD_VANISHING", 40, "head.weight", {"mean_abs": 3.2e-9}),
                Finding.of("GRAD_NEVER_UPDATED", 3, "encoder.proj.weight", {"steps": 3})]
    page = render_report(findings, _grad_flow(), sections={"Claims <v1>": "<table id='c'></table>"})
    assert page.startswith("<!DOCTYPE html>")
    assert not re.search(r"(src|href)=['\"]?(https?:)?//", page)  # nothing fetched from elsewhere
    assert "<script" not in page and "<link" not in page
    assert ">critical</span>" in page  # the health badge
    assert _png_of(page).startswith(b"\x89PNG")
    assert "<h2>Claims &lt;v1&gt;</h2>\n<table id='c'></table>" in page
    # Critical before warning; every hint in full.
    assert page.index("encoder.proj.weight") < page.index("head.weight")
    for f in findings:
        assert f.code in page and html.escape(f.hint) in page
    assert "mean_abs=3.2e-09" in page


def test_report_escapes_finding_text() -> None:
    finding = Finding("NONFINITE", Severity.CRITICAL, 7, "blocks[0]<attn>",
                      {"dtype": "<float16>"}, hint="use <b>float32</b> & retry")
    page = render_report([finding])
    assert "blocks[0]&lt;attn&gt;" in page and "use &lt;b&gt;float32&lt;/b&gt; &amp; retry" in page
    assert "<b>float32" not in page and "<attn>" not in page


@pytest.mark.parametrize("findings, health", [
    ([], "ok"),
    ([Finding.of("NORM_ERASES_MAGNITUDE", 1, "ln")], "ok"),
    ([Finding.of("GRAD_NORM_OUT_OF_RANGE", 1, "total")], "warning"),
    ([Finding.of("GRAD_NORM_OUT_OF_RANGE", 1, "total"), Finding.of("NONFINITE", 2, "loss")],
     "critical"),
])
def test_badge_shows_overall_health(findings: list[Finding], health: str) -> None:
    assert f">{health}</span>" in render_report(findings)


def test_no_figure_without_observations() -> None:
    assert "data:image/png" not in render_report([], None)
    assert "data:image/png" not in render_report([], GradFlow())


def test_figure_is_a_readable_png_with_a_hundred_parameters() -> None:
    png = grad_flow_figure(_grad_flow(100), {"vanishing": 1e-6, "norm_band_low": 0.5})
    image = imread(io.BytesIO(png), format="png")
    height, width = image.shape[:2]
    assert width > 2 * height >= 2 * 500  # wide enough that 100 rotated labels stay legible


@pytest.mark.parametrize("thresholds", [Thresholds(vanishing=1e-5), {"vanishing": 1e-5}])
def test_figure_accepts_thresholds_as_mapping_or_dataclass(thresholds: object) -> None:
    assert grad_flow_figure(_grad_flow(5, 3), thresholds).startswith(b"\x89PNG")


def test_figure_with_no_gradient_anywhere() -> None:
    flow = GradFlow(names=("a.weight", "b.weight"), mean_abs_sum=np.zeros(2), max_l2=np.zeros(2),
                    received=np.zeros(2, dtype=bool), observations=1, steps=[0], total_norm=[0.0])
    assert grad_flow_figure(flow).startswith(b"\x89PNG")
