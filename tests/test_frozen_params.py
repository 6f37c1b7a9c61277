"""Freezing on purpose (requires_grad=False while the optimizer holds every parameter, as many
libraries build it) is information, PARAMS_FROZEN, never the critical GRAD_NEVER_UPDATED, which
stays for parameters that should learn and get no gradient (no_grad, detach)."""

from __future__ import annotations

import numpy as np
import torch

import mlflow_plugins
from _models import NoGradBranch, Wrapped, codes, data, mlp, train_lightning, where
from mlflow_plugins import GradientHealthCallback, Severity
from mlflow_plugins.analysis import GradientHealth, GradPresence, RuleSet
from mlflow_plugins.thresholds import Thresholds


def _frozen_first_layer() -> torch.nn.Module:
    model = mlp()
    for p in model[0].parameters():
        p.requires_grad_(False)
    return model


def _train(model: torch.nn.Module, steps: int, unfreeze_at: int | None = None):
    """Adam over every parameter (frozen ones too), the usual loop; `unfreeze_at`: the step at
    which every parameter starts to learn."""
    torch.manual_seed(0)
    x, y = data()
    opt = torch.optim.Adam(model.parameters(), 1e-3)
    with mlflow_plugins.watch(model, opt, log_every=4) as monitor:
        for step in range(steps):
            if step == unfreeze_at:
                for p in model.parameters():
                    p.requires_grad_(True)
            opt.zero_grad()
            torch.nn.functional.cross_entropy(model(x), y).backward()
            opt.step()
    return monitor


def test_a_frozen_layer_in_the_optimizer_is_information_not_a_critical_finding():
    monitor = _train(_frozen_first_layer(), steps=12)
    assert "GRAD_NEVER_UPDATED" not in codes(monitor.findings)
    (frozen,) = [f for f in monitor.findings if f.code == "PARAMS_FROZEN"]
    assert frozen.severity is Severity.INFO and frozen.evidence["n_frozen"] == 2
    assert frozen.evidence["n_params"] == 6 and frozen.evidence["frozen"] == "0.weight, 0.bias"
    assert all(f.severity is not Severity.CRITICAL for f in monitor.findings)


def test_nothing_frozen_says_nothing_about_freezing():
    assert "PARAMS_FROZEN" not in codes(_train(mlp(), steps=8).findings)


def test_a_layer_unfrozen_during_training_is_not_reported_as_never_updated():
    monitor = _train(_frozen_first_layer(), steps=12, unfreeze_at=5)
    assert "GRAD_NEVER_UPDATED" not in codes(monitor.findings) and "PARAMS_FROZEN" in codes(monitor.findings)


def test_a_trainable_layer_without_gradient_is_still_critical_beside_a_frozen_one():
    model = NoGradBranch()
    model.readout.bias.requires_grad_(False)  # frozen on purpose, next to the no_grad bug
    monitor = _train(model, steps=12)
    assert where(monitor.findings, "GRAD_NEVER_UPDATED") == {"representation.weight", "representation.bias"}
    assert "PARAMS_FROZEN" in codes(monitor.findings)


def test_lightning_reports_the_frozen_layer_by_its_module_path():
    cb = GradientHealthCallback(log_every=1)
    train_lightning(Wrapped(_frozen_first_layer()), [cb], steps=8)
    assert "GRAD_NEVER_UPDATED" not in codes(cb.findings)
    (frozen,) = [f for f in cb.findings if f.code == "PARAMS_FROZEN"]
    assert frozen.evidence["frozen"] == "model.0.weight, model.0.bias"


def test_the_rule_counts_no_missing_gradient_of_a_frozen_parameter():
    rules = RuleSet([GradientHealth(Thresholds())])
    names, frozen = ("a", "b"), np.array([True, False])
    found = []
    for step in range(6):
        found += rules.observe(GradPresence.missing(step, names, np.array([True, True]), frozen=frozen))
    assert [(f.code, f.where) for f in found] == [("PARAMS_FROZEN", "optimizer"), ("GRAD_NEVER_UPDATED", "b")]
