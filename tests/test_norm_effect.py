"""NORM_GRAD_ATTENUATION / NORM_ERASES_MAGNITUDE for every normalization kind, and silence."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from _models import HEALTHY, NormAfterLargeInput, Wrapped, codes, train_lightning, train_plain, where
from mlflow_plugins import NormalizationEffectCallback
from mlflow_plugins.analysis import NormEffect, NormProbe, RuleSet
from mlflow_plugins.pytorch.norm_probes import find_norm_modules, magnitude_cv
from mlflow_plugins.thresholds import Thresholds


class Scaled(nn.Module):
    """A normalization fed inputs of large, varied magnitude: shrinks gradients ~1/scale."""

    def __init__(self, norm: nn.Module, scale: float = 300.0, shape=(4, 8)) -> None:
        super().__init__()
        self.shape = shape
        self.encoder = nn.Linear(16, 32)
        self.norm = norm
        self.head = nn.Linear(32, 4)
        with torch.no_grad():
            self.encoder.weight.mul_(scale)

    def forward(self, x):
        h = self.encoder(x).view(x.shape[0], *self.shape)
        return self.head(self.norm(h).reshape(x.shape[0], -1))


NORMS = {
    "layernorm": lambda: Scaled(nn.LayerNorm(8)),
    "rmsnorm": lambda: Scaled(nn.RMSNorm(8)),
    "batchnorm": lambda: Scaled(nn.BatchNorm1d(4)),
    "groupnorm": lambda: Scaled(nn.GroupNorm(2, 4)),
    "l2normalize": NormAfterLargeInput,
}


@pytest.mark.parametrize("kind", sorted(NORMS))
def test_attenuation_found_plain(kind):
    monitor = train_plain(NORMS[kind](), steps=4)
    assert "NORM_GRAD_ATTENUATION" in codes(monitor.findings)
    assert where(monitor.findings, "NORM_GRAD_ATTENUATION") == {"normalize" if kind == "l2normalize" else "norm"}


def test_erased_magnitude_found_plain():
    monitor = train_plain(NormAfterLargeInput(), steps=3)
    [erased] = [f for f in monitor.findings if f.code == "NORM_ERASES_MAGNITUDE"]
    assert erased.where == "normalize" and erased.severity.value == "info"
    assert erased.evidence["magnitude_cv_in"] > 0.2 and erased.evidence["magnitude_cv_out"] < 0.01


def test_erased_magnitude_found_and_attenuation_measured_lightning():
    cb = NormalizationEffectCallback(log_every=1)
    train_lightning(Wrapped(NormAfterLargeInput()), [cb], steps=4)
    assert where(cb.findings, "NORM_GRAD_ATTENUATION") == {"model.normalize"}
    assert where(cb.findings, "NORM_ERASES_MAGNITUDE") == {"model.normalize"}
    erased = next(f for f in cb.findings if f.code == "NORM_ERASES_MAGNITUDE")
    assert erased.evidence["magnitude_cv_in"] > 0.2 and erased.evidence["magnitude_cv_out"] < 0.01


def test_unit_scale_layernorm_passes_gradient():
    monitor = train_plain(Scaled(nn.LayerNorm(8), scale=1.0), steps=4)
    assert "NORM_GRAD_ATTENUATION" not in codes(monitor.findings)


@pytest.mark.parametrize("name", sorted(HEALTHY))
def test_healthy_models_have_no_attenuation(name):
    cb = NormalizationEffectCallback(log_every=1)
    train_lightning(Wrapped(HEALTHY[name]()), [cb], steps=6)
    assert "NORM_GRAD_ATTENUATION" not in codes(cb.findings), cb.findings


def test_residual_branch_does_not_hide_attenuation():
    """The input also feeds a residual: only the gradient through the norm counts."""
    class Residual(nn.Module):
        def __init__(self):
            super().__init__()
            self.encoder, self.norm, self.head = nn.Linear(16, 32), nn.LayerNorm(32), nn.Linear(32, 4)
            with torch.no_grad():
                self.encoder.weight.mul_(300.0)

        def forward(self, x):
            h = self.encoder(x)
            return self.head(h * 1e-3 + self.norm(h))
    monitor = train_plain(Residual(), steps=3)
    assert where(monitor.findings, "NORM_GRAD_ATTENUATION") == {"norm"}


def test_user_named_module_is_probed():
    class Squash(nn.Module):
        def forward(self, x):
            return x / x.norm(dim=-1, keepdim=True)
    model = nn.Sequential(nn.Linear(16, 32), Squash(), nn.Linear(32, 4))
    assert set(find_norm_modules(model, ["Squash"])) == {"1"}
    with pytest.raises(ValueError, match="norm_modules entry 'Nope' matches no module"):
        find_norm_modules(model, ["Nope"])


def test_magnitude_cv_reference():
    x = torch.tensor([[3.0, 4.0], [6.0, 8.0]])  # magnitudes 5 and 10
    expected = torch.tensor([5.0, 10.0]).std() / 7.5
    assert torch.isclose(magnitude_cv(x, (1,)), expected)


def test_norm_effect_rules():
    effect = RuleSet([NormEffect(Thresholds())])
    found = effect.observe(NormProbe(0, "ln", 0.05, 0.5, 0.01))
    assert {f.code for f in found} == {"NORM_GRAD_ATTENUATION", "NORM_ERASES_MAGNITUDE"}
    quiet = RuleSet([NormEffect(Thresholds())])
    assert not quiet.observe(NormProbe(0, "ln", 0.5, 0.1, 0.001))  # input spread too small to matter
    assert not quiet.observe(NormProbe(1, "ln", None, 0.5, 0.4))
