"""Gradients of extreme but finite magnitude (torch): measured, not mistaken for NaN/Inf or zero.

A float32 sum of squares overflows for gradients of ~1e20 and flushes to 0 for ~1e-30; the
statistics must still call the first GRAD_EXPLODING (not NONFINITE) and the second
GRAD_VANISHING (not GRAD_NEVER_UPDATED), while all-zero and NaN gradients keep their findings.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from torch import nn

from _models import codes, train_plain, where
from mlflow_plugins.pytorch import grad_stats
from mlflow_plugins.pytorch.grad_stats import GradStats


@pytest.fixture(params=["cpu", "accelerator"])
def norms_path(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> str:
    """Both ways `norms()` keeps its values honest: on CPU it reads and fixes them at once; on
    an accelerator it takes max |g| on the device and leaves exact values to `snapshot` (forced
    here on CPU, so that CI without a GPU runs that path too)."""
    if request.param == "accelerator":
        monkeypatch.setattr(grad_stats, "_host_readable", lambda groups: False)
    return request.param


class _ScaleGrad(torch.autograd.Function):
    """Identity forward; the backward multiplies the gradient by `scale`."""

    @staticmethod
    def forward(ctx, x: torch.Tensor, scale: float) -> torch.Tensor:
        ctx.scale = scale
        return x.view_as(x)

    @staticmethod
    def backward(ctx, g: torch.Tensor) -> tuple[torch.Tensor, None]:
        return g * ctx.scale, None


class GradScaledFirst(nn.Module):
    """A healthy float32 MLP whose first layer's gradient is multiplied by `scale`; the forward
    is unchanged, so only that layer's gradient is extreme."""

    def __init__(self, scale: float) -> None:
        super().__init__()
        self.scale = scale
        self.first = nn.Linear(16, 16)
        self.head = nn.Linear(16, 4)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(torch.relu(_ScaleGrad.apply(self.first(x), self.scale)))


FIRST = {"first.weight", "first.bias"}


@pytest.mark.parametrize("monitor_kwargs", [{}, {"log_every": 50, "policy": "skip_step"}],
                         ids=["every step sampled", "per-step verdict between samples"])
def test_huge_gradient_is_exploding_not_nonfinite(monitor_kwargs, norms_path):
    """lr=0 keeps the parameters, so the gradient stays ~1e20 and every forward stays finite."""
    monitor = train_plain(GradScaledFirst(1e20), steps=4, lr=0.0, monitor_kwargs=monitor_kwargs)
    assert "NONFINITE" not in codes(monitor.findings), monitor.findings
    assert FIRST <= where(monitor.findings, "GRAD_EXPLODING")
    assert "head.weight" not in where(monitor.findings, "GRAD_EXPLODING")
    exploding = {f.where: f.evidence["grad_norm"] for f in monitor.findings
                 if f.code == "GRAD_EXPLODING"}
    assert 1e18 < exploding["first.weight"] < 1e23 and math.isfinite(exploding["<total>"])


def test_tiny_gradient_is_vanishing_not_never_updated(norms_path):
    monitor = train_plain(GradScaledFirst(1e-30), steps=5)
    assert "GRAD_NEVER_UPDATED" not in codes(monitor.findings), monitor.findings
    assert where(monitor.findings, "GRAD_VANISHING") == {"first"}
    [vanishing] = [f for f in monitor.findings if f.code == "GRAD_VANISHING"]
    assert 0 < vanishing.evidence["mean_abs_grad"] < 1e-28


def test_all_zero_gradient_is_still_never_updated(norms_path):
    monitor = train_plain(GradScaledFirst(0.0), steps=4)
    assert where(monitor.findings, "GRAD_NEVER_UPDATED") == FIRST


def test_nan_gradient_is_still_nonfinite(norms_path):
    monitor = train_plain(GradScaledFirst(float("nan")), steps=1)  # SGD would spread the NaN
    [nonfinite] = [f for f in monitor.findings if f.code == "NONFINITE"]
    assert nonfinite.where in FIRST and nonfinite.evidence["nan"]
    assert "GRAD_EXPLODING" not in codes(monitor.findings)


def _stats(grads: dict[str, torch.Tensor]) -> GradStats:
    params = []
    for name, g in grads.items():
        p = nn.Parameter(torch.zeros_like(g))
        p.grad = g.clone()
        params.append((name, p))
    return GradStats(params)


def _reference(g: torch.Tensor) -> tuple[float, float]:
    """L2 norm and mean |g| in float64 numpy, scaled by max |g| so that neither can overflow."""
    a = np.abs(g.detach().numpy().astype(np.complex128 if g.is_complex() else np.float64))
    top = a.max() if a.size else 0.0
    if top == 0:
        return 0.0, 0.0
    return float(top * np.linalg.norm(a / top)), float(top * np.mean(a / top))


# 2e38: near float32's largest value; 1e-42: a float32 subnormal
SCALES = [1e20, 1e-30, 0.0, 1.0, 2e38, 1e-42]
CASES = ([(s, d) for s in SCALES for d in (torch.float32, torch.float64)]
         + [(s, torch.float16) for s in (0.0, 1.0, 100.0)])


@pytest.mark.parametrize("scale,dtype", CASES, ids=[f"{s:g}-{d}" for s, d in CASES])
def test_norms_match_float64_numpy(scale, dtype, norms_path):
    g = (torch.rand(300, generator=torch.Generator().manual_seed(1)) + 0.5) * scale
    stats = _stats({"g": g.to(dtype), "other": torch.randn(7)})
    l2_ref, mean_ref = _reference(g.to(dtype))
    l2 = stats.norms()
    snap = stats.snapshot(0, l2)
    again = stats.snapshot(0)  # without norms()'s result: the same numbers
    rtol = 1e-3 if dtype == torch.float16 else 1e-5
    np.testing.assert_allclose([snap.l2[0], again.l2[0]], l2_ref, rtol=rtol)
    np.testing.assert_allclose([snap.mean_abs[0], again.mean_abs[0]], mean_ref, rtol=rtol)
    assert (snap.l2[0] == 0) == (scale == 0) and np.isfinite(snap.l2[0])
    # on the device, before the host copy: finite, 0 only when all zero, at most the norm
    assert torch.isfinite(l2).all() and bool(l2[0] == 0) == (scale == 0)
    assert float(l2[0]) <= l2_ref * (1 + rtol)
    assert bool(stats.total_norm_ok(l2, float("inf")))


def test_float16_gradient_norm_beyond_float16_range(norms_path):
    """300 everywhere: each value fits float16, the norm (30,000 x sqrt(10)) does not."""
    stats = _stats({"g": torch.full((100_000,), 300.0, dtype=torch.float16)})
    snap = stats.snapshot(0, stats.norms())
    np.testing.assert_allclose(snap.l2, [300.0 * math.sqrt(100_000)], rtol=1e-4)


def test_total_norm_ok_separates_huge_from_nonfinite(norms_path):
    huge = _stats({"a": torch.full((10,), 1e20), "b": torch.ones(3)})
    assert bool(huge.total_norm_ok(huge.norms(), float("inf")))  # finite: not a skipped step
    assert not bool(huge.total_norm_ok(huge.norms(), 100.0))  # but far above the limit
    tiny = _stats({"a": torch.full((10,), 1e-30)})
    assert bool(tiny.total_norm_ok(tiny.norms(), 100.0))
    for bad in (float("nan"), float("inf")):
        stats = _stats({"a": torch.tensor([1.0, bad]), "b": torch.ones(3)})
        assert not bool(stats.total_norm_ok(stats.norms(), float("inf")))


def test_nonfinite_norms_say_which(norms_path):
    stats = _stats({"nan": torch.tensor([1.0, float("nan"), float("inf")]),
                    "inf": torch.tensor([1e20, float("inf")]), "ok": torch.full((4,), 1e20)})
    snap = stats.snapshot(0, stats.norms())
    assert np.isnan(snap.l2[0]) and np.isposinf(snap.l2[1]) and np.isfinite(snap.l2[2])


def test_missing_and_empty_gradients(norms_path):
    present = nn.Parameter(torch.zeros(3))
    present.grad = torch.full((3,), 1e20)
    empty = nn.Parameter(torch.zeros(0))
    empty.grad = torch.zeros(0)
    stats = GradStats([("present", present), ("missing", nn.Parameter(torch.zeros(2))),
                       ("empty", empty)])
    snap = stats.snapshot(0, stats.norms())
    np.testing.assert_allclose(snap.l2, [1e20 * math.sqrt(3), 0.0, 0.0], rtol=1e-6)
    assert snap.missing.tolist() == [False, True, False]
