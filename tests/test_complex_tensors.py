"""Complex-valued models (torch): gradient norms and normalization probes measure |z|."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

from _models import data, train_plain, where
from mlflow_plugins.pytorch import grad_stats
from mlflow_plugins.pytorch.grad_stats import GradStats
from mlflow_plugins.pytorch.norm_probes import NormProbes, find_norm_modules, magnitude_cv

TOKENS, WIDTH = 4, 8


class MyComplexNorm(nn.Module):
    """A complex "layer norm": each token divided by its RMS magnitude, erasing its size."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x / torch.sqrt(x.abs().square().mean(-1, keepdim=True) + 1e-6)


class MyComplexScale(nn.Module):
    """Divides every token by the RMS magnitude of the whole batch: their spread is kept."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x / torch.sqrt(x.abs().square().mean() + 1e-6)


class ComplexTokens(nn.Module):
    """Real input -> complex64 tokens (B, 4, 8) -> optional norm -> real head on (re, im)."""

    def __init__(self, norm: nn.Module | None = None) -> None:
        super().__init__()
        self.embed = nn.Linear(16, TOKENS * WIDTH, dtype=torch.complex64)
        self.norm = norm if norm is not None else nn.Identity()
        self.head = nn.Linear(2 * TOKENS * WIDTH, 4)

    def tokens(self, x: torch.Tensor) -> torch.Tensor:
        return self.embed(x.to(torch.complex64)).view(x.shape[0], TOKENS, WIDTH)

    def readout(self, z: torch.Tensor) -> torch.Tensor:
        return self.head(torch.view_as_real(z).flatten(1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.readout(self.norm(self.tokens(x)))


def test_user_named_complex_norm_erases_magnitudes():
    monitor = train_plain(ComplexTokens(MyComplexNorm()), steps=3,
                          monitor_kwargs={"norm_modules": ["MyComplexNorm"]})
    assert where(monitor.findings, "NORM_ERASES_MAGNITUDE") == {"norm"}
    [erased] = [f for f in monitor.findings if f.code == "NORM_ERASES_MAGNITUDE"]
    assert erased.evidence["magnitude_cv_in"] > 0.2 and erased.evidence["magnitude_cv_out"] < 0.01


@pytest.mark.parametrize("norm", [None, MyComplexScale()], ids=["no norm", "magnitude-keeping"])
def test_healthy_complex_model_has_no_finding(norm):
    kwargs = {"norm_modules": ["MyComplexScale"]} if norm is not None else {}
    monitor = train_plain(ComplexTokens(norm), steps=6, monitor_kwargs=kwargs)
    assert monitor.findings == []


def test_probe_measures_complex_tokens_and_cotangents():
    """Reference: |z| magnitudes per token in numpy, and the cotangents at the norm's output
    and (through the norm alone) at its input, from autograd on the unprobed model."""
    torch.manual_seed(0)
    model = ComplexTokens(MyComplexNorm())
    x, y = data()
    probes = NormProbes(find_norm_modules(model, ["MyComplexNorm"]))
    probes.arm()
    nn.functional.cross_entropy(model(x), y).backward()
    [probe] = probes.collect(0)

    h = model.tokens(x).detach().requires_grad_()
    out = model.norm(h)
    z = out.detach().requires_grad_()
    [g_out] = torch.autograd.grad(nn.functional.cross_entropy(model.readout(z), y), z)
    [g_in] = torch.autograd.grad(out, h, g_out)
    expected = np.linalg.norm(g_in.numpy()) / np.linalg.norm(g_out.numpy())
    np.testing.assert_allclose(probe.grad_ratio, expected, rtol=1e-4)

    def cv(a: np.ndarray) -> float:
        mags = np.linalg.norm(a, axis=-1).ravel()
        return float(np.std(mags, ddof=1) / np.mean(mags))

    np.testing.assert_allclose([probe.cv_in, probe.cv_out],
                               [cv(h.detach().numpy()), cv(out.detach().numpy())],
                               rtol=1e-4, atol=1e-6)


def test_magnitude_cv_of_complex_tokens_uses_the_imaginary_part():
    x = torch.tensor([[3.0 + 4.0j, 0.0], [0.0, 6.0 + 8.0j], [0.0 + 20.0j, 0.0]])  # 5, 10, 20
    expected = np.std([5.0, 10.0, 20.0], ddof=1) / np.mean([5.0, 10.0, 20.0])
    np.testing.assert_allclose(float(magnitude_cv(x, (1,))), expected, rtol=1e-6)


@pytest.mark.parametrize("path", ["cpu", "accelerator"])
@pytest.mark.parametrize("dtype", [torch.complex64, torch.complex128])
@pytest.mark.parametrize("scale", [1.0, 1e20, 1e-30])
def test_complex_gradient_norms_match_numpy(dtype, scale, path, monkeypatch):
    if path == "accelerator":  # max |g| on the device, exact values in snapshot: forced on CPU
        monkeypatch.setattr(grad_stats, "_host_readable", lambda groups: False)
    g = torch.randn(40, 3, dtype=dtype, generator=torch.Generator().manual_seed(2)) * scale
    p = nn.Parameter(torch.zeros_like(g))
    p.grad = g
    stats = GradStats([("z", p)])
    snap = stats.snapshot(0, stats.norms())
    ref = g.numpy().astype(np.complex128) / scale
    np.testing.assert_allclose(snap.l2, [np.linalg.norm(ref) * scale], rtol=1e-5)
    np.testing.assert_allclose(snap.mean_abs, [np.mean(np.abs(ref)) * scale], rtol=1e-5)


def test_complex_model_gradients_through_watch_statistics():
    """The statistics `watch` reads, on a real complex model's gradients, against numpy."""
    model = ComplexTokens(MyComplexNorm())
    x, y = data()
    nn.functional.cross_entropy(model(x), y).backward()
    named = list(model.named_parameters())
    stats = GradStats(named)
    snap = stats.snapshot(0, stats.norms())
    grads = [p.grad.numpy().astype(np.complex128 if p.is_complex() else np.float64)
             for _, p in named]
    np.testing.assert_allclose(snap.l2, [np.linalg.norm(g) for g in grads], rtol=1e-5)
    np.testing.assert_allclose(snap.mean_abs, [np.mean(np.abs(g)) for g in grads], rtol=1e-5)
    assert named[0][1].is_complex() and np.abs(grads[0].imag).max() > 0
