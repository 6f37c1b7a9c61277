"""GRAD_NOT_RESET: gradients not cleared between optimizer steps, said as such (zero_grad), at
the first sampled step, not weeks later as an exploding gradient with a hint to clip."""

from __future__ import annotations

import mlflow
import numpy as np
import torch
from torch import nn

import mlflow_plugins
from _models import Wrapped, codes, data, mlp, train_lightning
from mlflow_plugins import GradientHealthCallback
from mlflow_plugins.analysis import GradientsReset, GradReset, RuleSet


def _train(zero_grad, steps: int = 12, *, accumulate: int = 1, opt_lr: float = 1e-3, before_step=None):
    torch.manual_seed(0)
    model = mlp()
    opt = torch.optim.Adam(model.parameters(), opt_lr)
    x, y = data(n=32 * accumulate)
    with mlflow_plugins.watch(model, opt, log_every=4) as monitor:
        for _ in range(steps):
            for xb, yb in zip(x.chunk(accumulate), y.chunk(accumulate)):
                loss = nn.functional.cross_entropy(model(xb), yb)
                if before_step is not None:
                    before_step(model, loss)
                loss.backward()
            opt.step()
            zero_grad(model, opt)
    return monitor


def _reset(monitor) -> list:
    return [f for f in monitor.findings if f.code == "GRAD_NOT_RESET"]


def test_a_forgotten_zero_grad_is_named_at_the_first_sampled_step():
    monitor = _train(lambda model, opt: None)
    (found,) = _reset(monitor)
    assert found.step == 0 and found.where == "optimizer" and found.severity.value == "critical"
    assert found.evidence["n_stale"] == found.evidence["n_params"] == 6
    assert "zero_grad" in found.hint


def test_clearing_the_gradients_any_usual_way_is_healthy():
    for zero_grad in (lambda m, o: o.zero_grad(), lambda m, o: o.zero_grad(set_to_none=False),
                      lambda m, o: m.zero_grad()):
        monitor = _train(zero_grad)
        assert "GRAD_NOT_RESET" not in codes(monitor.findings), monitor.findings


def test_accumulating_micro_batches_between_steps_is_healthy():
    monitor = _train(lambda m, o: o.zero_grad(), accumulate=4)
    assert "GRAD_NOT_RESET" not in codes(monitor.findings), monitor.findings


def test_reading_gradients_with_autograd_grad_before_zero_grad_is_not_a_backward():
    # A gradient-penalty or logging pass with torch.autograd.grad sees the old .grad but does
    # not accumulate into it: no finding.
    def penalty(model, loss):
        torch.autograd.grad(loss, list(model.parameters()), retain_graph=True)

    monitor = _train(lambda m, o: o.zero_grad(), before_step=penalty)
    assert "GRAD_NOT_RESET" not in codes(monitor.findings), monitor.findings


def test_zero_grad_on_the_other_optimizer_names_the_generator():
    # The discriminator's optimizer is cleared twice; the generator's never is.
    torch.manual_seed(0)
    g = nn.Sequential(nn.Linear(4, 8), nn.ReLU(), nn.Linear(8, 8))
    d = nn.Sequential(nn.Linear(8, 8), nn.ReLU(), nn.Linear(8, 1))
    opt_g, opt_d = torch.optim.Adam(g.parameters(), 1e-3), torch.optim.Adam(d.parameters(), 1e-3)
    real = torch.randn(32, 8)
    with mlflow_plugins.watch(g, opt_g, log_every=4) as monitor:
        for _ in range(8):
            fake = g(torch.randn(32, 4))
            opt_d.zero_grad()
            (nn.functional.softplus(d(fake.detach())).mean() + nn.functional.softplus(-d(real)).mean()).backward()
            opt_d.step()
            opt_d.zero_grad()  # meant: opt_g.zero_grad()
            nn.functional.softplus(-d(fake)).mean().backward()
            opt_g.step()
    (found,) = _reset(monitor)
    assert found.evidence["params"] == "0.weight, 0.bias, 2.weight, 2.bias"


def test_the_finding_reaches_the_run(tracking_uri):
    with mlflow.start_run() as run:
        _train(lambda model, opt: None, steps=6)
    assert "GRAD_NOT_RESET" in mlflow.MlflowClient().get_run(run.info.run_id).data.tags["fixlab.findings"]


class _ManualOptimization(Wrapped):
    def __init__(self, model: nn.Module, *, zero_grad: bool) -> None:
        super().__init__(model)
        self.automatic_optimization, self.zero_grad_each_step = False, zero_grad

    def training_step(self, batch, batch_idx):
        opt = self.optimizers()
        if self.zero_grad_each_step:
            opt.zero_grad()
        x, y = batch
        self.manual_backward(nn.functional.cross_entropy(self(x), y))
        opt.step()


def test_lightning_manual_optimization_without_zero_grad_is_named():
    cb = GradientHealthCallback(log_every=4)
    train_lightning(_ManualOptimization(mlp(), zero_grad=False), [cb], steps=10)
    assert [f.step for f in cb.findings if f.code == "GRAD_NOT_RESET"] == [0], cb.findings


def test_lightning_healthy_manual_and_automatic_optimization_say_nothing():
    for module in (_ManualOptimization(mlp(), zero_grad=True), Wrapped(mlp())):
        cb = GradientHealthCallback(log_every=4)
        train_lightning(module, [cb], steps=10)
        assert "GRAD_NOT_RESET" not in codes(cb.findings), cb.findings


def test_the_rule_needs_a_checked_stale_gradient():
    rules = RuleSet([GradientsReset()])
    names = ("a", "b")
    assert rules.observe(GradReset(0, names, np.array([True, False]), np.array([False, True]))) == []
    (f,) = rules.observe(GradReset(4, names, np.array([False, True]), np.array([True, True])))
    assert (f.step, f.evidence["n_stale"], f.evidence["params"]) == (4, 1, "b")
    assert rules.observe(GradReset(8, names, np.array([True, True]), np.array([True, True]))) == []
