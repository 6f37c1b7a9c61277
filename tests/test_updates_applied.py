"""UPDATES_NOT_APPLIED: parameters with gradients that optimizer steps do not change.

Planted bugs as users write them (a learning rate parsed as an integer, a schedule sized for one
epoch, a param group left out, the optimizer built before the model was reloaded, an
accumulation condition that never holds), and healthy programs that look close to them (Adam's
tiny early steps, accumulation, a frozen part, warm-up from 0, a GAN's second optimizer).
"""

from __future__ import annotations

from typing import Callable

import mlflow
import numpy as np
import pytest
import torch
from torch import nn

import mlflow_plugins
from _models import Wrapped, codes, data, mlp, train_lightning
from mlflow_plugins import GradientHealthCallback, Severity
from mlflow_plugins.analysis import RuleSet, UpdatesApplied, UpdateSnapshot
from mlflow_plugins.thresholds import Thresholds


class EncoderDecoder(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.encoder = nn.Linear(16, 16)
        self.decoder = nn.Linear(16, 16)
        self.head = nn.Linear(16, 4)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(torch.relu(self.decoder(torch.relu(self.encoder(x)))))


def _loop(model: nn.Module, opt: torch.optim.Optimizer, steps: int, *, sched=None, accumulate: int = 1,
          step_if: Callable[[int], bool] = lambda i: True, **watch_kwargs):
    torch.manual_seed(0)
    x, y = data(n=64 * accumulate)
    with mlflow_plugins.watch(model, opt, log_every=10, **watch_kwargs) as monitor:
        for i in range(steps):
            for xb, yb in zip(x.chunk(accumulate), y.chunk(accumulate)):
                nn.functional.cross_entropy(model(xb), yb).backward()
            if step_if(i):
                opt.step()
                opt.zero_grad()
            if sched is not None:
                sched.step()
    return monitor


def _updates(monitor) -> list:
    return [f for f in monitor.findings if f.code == "UPDATES_NOT_APPLIED"]


def _lr_parsed_as_int():
    model = mlp()
    return model, torch.optim.SGD(model.parameters(), lr=int(1e-3)), {}  # "--lr 1e-3" through int()


def _schedule_sized_for_one_epoch():
    model = mlp()
    opt = torch.optim.AdamW(model.parameters(), lr=1e-3)
    steps_per_epoch = 10  # the decay was meant to span every epoch
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda s: max(0.0, 1 - s / steps_per_epoch))
    return model, opt, {"sched": sched}


def _decoder_left_out_of_the_param_groups():
    model = EncoderDecoder()
    opt = torch.optim.Adam([{"params": model.encoder.parameters()},
                            {"params": model.head.parameters(), "lr": 1e-2}], lr=1e-3)
    return model, opt, {}


def _optimizer_built_before_the_model_was_reloaded():
    model = mlp()
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    model = mlp()  # e.g. model = load_pretrained(...) after building the optimizer
    return model, opt, {}


PLANTED = {
    "lr parsed as int": (_lr_parsed_as_int, {"0", "2", "4"}, "learning rate 0 in its param group"),
    "schedule sized for one epoch": (_schedule_sized_for_one_epoch, {"0", "2", "4"}, "learning rate 0"),
    "param group left out": (_decoder_left_out_of_the_param_groups, {"decoder"}, "not held by the optimizer"),
    "optimizer before reload": (_optimizer_built_before_the_model_was_reloaded, {"0", "2", "4"},
                                "holds none of the model's parameters"),
}


@pytest.mark.parametrize("case", PLANTED)
def test_a_planted_bug_names_the_layers_that_hold_still(case):
    build, layers, cause = PLANTED[case]
    model, opt, kwargs = build()
    found = _updates(_loop(model, opt, steps=40, **kwargs))
    assert {f.where for f in found} == layers, found
    assert all(cause in f.evidence["cause"] for f in found), found
    assert all(f.evidence["ratio_max"] <= 1e-8 and f.evidence["grad_norm"] > 0 for f in found)


def test_the_finding_comes_within_the_stall_window_not_after_the_run():
    model, opt, _ = _lr_parsed_as_int()
    monitor = _loop(model, opt, steps=25)  # sampled every 10 steps; followed from step 0
    (first, *_) = _updates(monitor)
    assert first.step == 0 and first.evidence["last_step"] == 20


def test_a_step_skipped_by_a_condition_is_reported():
    # Accumulating over 128 micro-batches by the batch index of an epoch of 100 batches:
    # `(i + 1) % 128 == 0` never holds, and step() is never called.
    model = mlp()
    opt = torch.optim.SGD(model.parameters(), lr=0.05)
    monitor = _loop(model, opt, steps=100, step_if=lambda i: (i + 1) % 128 == 0)
    (found,) = _updates(monitor)
    assert found.where == "optimizer.step()" and found.evidence["backwards"] == 80
    assert "step skipped by a condition" in found.message


def _adam_tiny_steps():
    model = mlp()
    return model, torch.optim.Adam(model.parameters(), lr=1e-6), {}


def _accumulation():
    model = mlp()
    return model, torch.optim.SGD(model.parameters(), lr=0.05), {"accumulate": 4}


def _frozen_encoder():
    model = EncoderDecoder()
    model.encoder.requires_grad_(False)
    return model, torch.optim.Adam(model.parameters(), lr=1e-3), {}


def _warmup_from_zero():
    model = mlp()
    opt = torch.optim.SGD(model.parameters(), lr=0.05)
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda s: min(1.0, s / 5))  # lr 0 at step 0
    return model, opt, {"sched": sched}


def _cosine_to_zero():
    model = mlp()
    opt = torch.optim.SGD(model.parameters(), lr=0.05)
    return model, opt, {"sched": torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=39)}


HEALTHY = {"adam tiny early steps": _adam_tiny_steps, "accumulation": _accumulation,
           "frozen encoder": _frozen_encoder, "warm-up from 0": _warmup_from_zero,
           "cosine to 0 at the end": _cosine_to_zero}


@pytest.mark.parametrize("case", HEALTHY)
def test_a_healthy_program_gets_no_update_finding(case):
    model, opt, kwargs = HEALTHY[case]()
    monitor = _loop(model, opt, steps=40, **kwargs)
    assert not _updates(monitor), monitor.findings
    assert not {"GRAD_NEVER_UPDATED", "GRAD_NOT_RESET"} & codes(monitor.findings)


def test_a_gan_watched_with_the_generator_optimizer_lets_the_discriminator_move_elsewhere():
    torch.manual_seed(0)
    gan = nn.ModuleDict({"g": nn.Sequential(nn.Linear(4, 8), nn.ReLU(), nn.Linear(8, 8)),
                         "d": nn.Sequential(nn.Linear(8, 8), nn.ReLU(), nn.Linear(8, 1))})
    opt_g = torch.optim.Adam(gan["g"].parameters(), 1e-3)
    opt_d = torch.optim.Adam(gan["d"].parameters(), 1e-3)
    real = torch.randn(32, 8)
    with mlflow_plugins.watch(gan, opt_g, log_every=5) as monitor:
        for _ in range(40):
            fake = gan["g"](torch.randn(32, 4))
            opt_d.zero_grad()
            d_loss = nn.functional.softplus(gan["d"](fake.detach())).mean() + \
                nn.functional.softplus(-gan["d"](real)).mean()
            d_loss.backward()
            opt_d.step()
            opt_g.zero_grad()
            nn.functional.softplus(-gan["d"](fake)).mean().backward()
            opt_g.step()
    assert not _updates(monitor), monitor.findings


def test_the_finding_and_the_update_ratio_reach_the_run(tracking_uri):
    model, opt, _ = _lr_parsed_as_int()
    with mlflow.start_run() as run:
        _loop(model, opt, steps=25)
    client = mlflow.MlflowClient()
    assert "UPDATES_NOT_APPLIED" in client.get_run(run.info.run_id).data.tags["fixlab.findings"]
    ratios = [m.value for m in client.get_metric_history(run.info.run_id, "update_ratio/total")]
    assert ratios and all(r == 0 for r in ratios)


def test_a_healthy_run_logs_a_positive_update_ratio(tracking_uri):
    model = mlp()
    with mlflow.start_run() as run:
        _loop(model, torch.optim.SGD(model.parameters(), lr=0.05), steps=21)
    ratios = [m.value for m in mlflow.MlflowClient().get_metric_history(run.info.run_id, "update_ratio/total")]
    assert len(ratios) == 3 and all(0 < r < 1 for r in ratios)


class _ScheduledToZero(Wrapped):
    def configure_optimizers(self):
        opt = torch.optim.SGD(self.parameters(), lr=self.lr)
        sched = torch.optim.lr_scheduler.StepLR(opt, step_size=5, gamma=0.0)  # gamma meant 0.1
        return {"optimizer": opt, "lr_scheduler": {"scheduler": sched, "interval": "step"}}


def test_lightning_names_the_layers_a_schedule_stopped():
    cb = GradientHealthCallback(log_every=10)
    train_lightning(_ScheduledToZero(mlp()), [cb], steps=40)
    found = [f for f in cb.findings if f.code == "UPDATES_NOT_APPLIED"]
    assert {f.where for f in found} == {"model.0", "model.2", "model.4"}, cb.findings
    # lr is 0 from step 5; step 10 is the first sampled step after it, followed until step 30
    assert all((f.step, f.evidence["last_step"]) == (10, 30) and "learning rate 0" in f.evidence["cause"]
               for f in found)


def test_lightning_healthy_training_has_no_update_finding():
    cb = GradientHealthCallback(log_every=10)
    train_lightning(Wrapped(mlp()), [cb], steps=40)
    assert not {"UPDATES_NOT_APPLIED", "GRAD_NOT_RESET"} & codes(cb.findings), cb.findings


def _snap(step: int, update: list[float], *, grad: float = 1.0, lr: float = 0.1, held=True) -> UpdateSnapshot:
    n = len(update)
    return UpdateSnapshot(step, tuple(f"l{i}.weight" for i in range(n)), np.array(update, float),
                          np.ones(n), np.full(n, grad), np.ones(n), np.full(n, held), np.full(n, lr))


def test_the_rule_waits_for_the_stall_window_and_says_why():
    rules = RuleSet([UpdatesApplied(Thresholds(update_stall_steps=3))])
    found = []
    for step, update in enumerate([[0.1, 0.1], [0.1, 0.0], [0.1, 0.0], [0.1, 0.0], [0.1, 0.0]]):
        found += rules.observe(_snap(step, update))
    (f,) = found
    assert (f.where, f.step, f.evidence["last_step"]) == ("l1", 1, 4)
    assert f.severity is Severity.WARNING and "changed before, then stopped" in f.evidence["cause"]


def test_the_rule_calls_a_layer_held_from_the_start_beside_moving_ones_information():
    rules = RuleSet([UpdatesApplied(Thresholds(update_stall_steps=2))])
    found = []
    for step in range(4):
        found += rules.observe(_snap(step, [0.1, 0.0]))
    (f,) = found
    assert f.where == "l1" and f.severity is Severity.INFO and "frozen by the optimizer" in f.evidence["cause"]


def test_the_rule_ignores_vanishing_gradients_and_unmeasured_steps():
    rules = RuleSet([UpdatesApplied(Thresholds(update_stall_steps=1))])
    found = rules.observe(_snap(0, [0.0, 0.0], grad=1e-12)) + rules.observe(_snap(5, [0.0, 0.0], grad=1e-12))
    found += rules.observe(_snap(6, [np.nan, np.nan])) + rules.observe(_snap(9, [np.nan, np.nan]))
    assert found == []


class _ManualSteps(Wrapped):
    """Manual optimization stepping every `every` batches (`every=None`: a condition never true)."""

    def __init__(self, model: nn.Module, every: int | None) -> None:
        super().__init__(model)
        self.automatic_optimization, self.every = False, every

    def training_step(self, batch, batch_idx):
        opt = self.optimizers()
        x, y = batch
        self.manual_backward(nn.functional.cross_entropy(self(x), y))
        if self.every is not None and (batch_idx + 1) % self.every == 0:
            opt.step()
            opt.zero_grad()


def _fit_manual(every: int | None, epochs: int) -> GradientHealthCallback:
    import lightning.pytorch as pl

    cb = GradientHealthCallback(log_every=10)
    x, y = data()
    loader = torch.utils.data.DataLoader(torch.utils.data.TensorDataset(x, y), batch_size=8)  # 8 batches
    pl.Trainer(max_epochs=epochs, accelerator="cpu", devices=1, logger=False, callbacks=[cb],
               enable_checkpointing=False, enable_progress_bar=False,
               enable_model_summary=False).fit(_ManualSteps(mlp(), every), loader)
    return cb


def test_lightning_manual_optimization_whose_step_is_never_taken_is_reported():
    cb = _fit_manual(every=None, epochs=11)  # 88 backward passes, no step
    found = [f for f in cb.findings if f.code == "UPDATES_NOT_APPLIED"]
    assert [f.where for f in found] == ["optimizer.step()"] and found[0].evidence["backwards"] == 80, cb.findings


def test_lightning_manual_accumulation_is_healthy():
    cb = _fit_manual(every=4, epochs=12)  # a step every 4 batches, 24 steps
    assert not {"UPDATES_NOT_APPLIED", "GRAD_NOT_RESET"} & codes(cb.findings), cb.findings
