"""NONFINITE and AMP_STEPS_SKIPPED: fp16 overflow on CPU is located; healthy AMP stays silent."""

from __future__ import annotations

import pytest
import torch
from lightning.pytorch.plugins.precision import MixedPrecision

from _models import HEALTHY, Fp16Overflow, SqrtAtZero, Wrapped, codes, train_lightning, train_plain
from mlflow_plugins import AmpNanCallback, Severity, TrainingStopped
from mlflow_plugins.analysis import AmpSkips, AmpStep, RuleSet
from mlflow_plugins.thresholds import Thresholds


def _nonfinite(findings):
    return [f for f in findings if f.code == "NONFINITE"]


def test_fp16_overflow_names_the_module_plain():
    monitor = train_plain(Fp16Overflow(), steps=8, amp=True, scaler=torch.amp.GradScaler("cpu"))
    [finding] = _nonfinite(monitor.findings)
    assert finding.where == "big" and finding.step == 0
    assert finding.evidence["dtype"] == "torch.float16" and finding.evidence["autocast"] is True
    assert finding.evidence["inf"] is True and finding.severity is Severity.CRITICAL
    assert "float32" in finding.hint  # the documented fix


def test_fp16_overflow_without_scaler_plain():
    monitor = train_plain(Fp16Overflow(), steps=3, amp=True, monitor_kwargs={"log_every": 50})
    assert [f.where for f in _nonfinite(monitor.findings)] == ["big"]


def test_same_model_in_float32_is_silent():
    monitor = train_plain(Fp16Overflow(), steps=5, amp=False)
    assert not _nonfinite(monitor.findings)


def test_bfloat16_has_the_range_float16_lacks():
    monitor = train_plain(Fp16Overflow(), steps=3, amp=True, amp_dtype=torch.bfloat16)
    assert "NONFINITE" not in codes(monitor.findings)


def test_infinite_gradient_with_finite_forward_names_the_parameter():
    monitor = train_plain(SqrtAtZero(), steps=1)
    [finding] = _nonfinite(monitor.findings)
    assert finding.where == "lin.weight" and finding.evidence["source"] == "gradient"


def test_applied_nan_gradient_shows_up_in_the_next_output():
    """At the default interval gradients are read on sampled steps only; once a NaN update is
    applied, the next step's one-reduction output check catches it and names the module."""
    monitor = train_plain(SqrtAtZero(), steps=3, monitor_kwargs={"log_every": 50})
    assert [(f.where, f.evidence["source"]) for f in _nonfinite(monitor.findings)] == [
        ("lin.weight", "gradient"), ("lin", "activation")]


def test_scaler_skips_and_collapse_plain():
    monitor = train_plain(Fp16Overflow(), steps=24, amp=True, scaler=torch.amp.GradScaler("cpu"))
    amp = {f.where: f for f in monitor.findings if f.code == "AMP_STEPS_SKIPPED"}
    assert amp["grad_scaler"].severity is Severity.WARNING
    assert amp["grad_scaler.scale"].severity is Severity.CRITICAL  # 65536 / 2**17 < 1
    assert monitor.step == 24  # skipped steps still count as steps


@pytest.mark.parametrize("name", sorted(HEALTHY))
def test_healthy_amp_is_silent_plain(name):
    monitor = train_plain(HEALTHY[name](), steps=20, amp=True, scaler=torch.amp.GradScaler("cpu"))
    assert not codes(monitor.findings) & {"NONFINITE", "AMP_STEPS_SKIPPED"}, monitor.findings


def test_policy_skip_step_keeps_parameters_finite():
    model = SqrtAtZero()
    train_plain(model, steps=3, monitor_kwargs={"policy": "skip_step"})
    assert all(torch.isfinite(p).all() for p in model.parameters())
    warned = SqrtAtZero()
    train_plain(warned, steps=3)
    assert not all(torch.isfinite(p).all() for p in warned.parameters())  # the bug is real


def test_policy_stop_raises_and_records():
    with pytest.raises(TrainingStopped, match="NONFINITE at lin.weight"):
        train_plain(SqrtAtZero(), steps=3, monitor_kwargs={"policy": "stop"})


def test_lightning_fp16_overflow_located_and_scaler_followed():
    cb = AmpNanCallback(log_every=1)
    precision = MixedPrecision("16-mixed", "cpu", scaler=torch.amp.GradScaler("cpu"))
    train_lightning(Wrapped(Fp16Overflow()), [cb], steps=10, plugins=[precision])
    [finding] = _nonfinite(cb.findings)
    assert finding.where == "model.big" and finding.evidence["dtype"] == "torch.float16"
    assert finding.evidence["autocast"] is True
    assert {f.where for f in cb.findings if f.code == "AMP_STEPS_SKIPPED"} == {"grad_scaler"}


def test_lightning_autocast_inside_training_step():
    cb = AmpNanCallback()
    train_lightning(Wrapped(Fp16Overflow(), amp=True), [cb], steps=3)
    assert [f.where for f in _nonfinite(cb.findings)] == ["model.big"]


def test_lightning_policy_stop_ends_fit():
    cb = AmpNanCallback(policy="stop")
    trainer = train_lightning(Wrapped(Fp16Overflow(), amp=True), [cb], steps=10)
    assert trainer.global_step < 10 and _nonfinite(cb.findings)


@pytest.mark.parametrize("name", sorted(HEALTHY))
def test_lightning_healthy_is_silent(name):
    cb = AmpNanCallback()
    precision = MixedPrecision("16-mixed", "cpu", scaler=torch.amp.GradScaler("cpu"))
    train_lightning(Wrapped(HEALTHY[name]()), [cb], steps=15, plugins=[precision])
    assert not codes(cb.findings), cb.findings


def test_calibration_skips_do_not_alarm():
    amp = RuleSet([AmpSkips(Thresholds())])
    scale = 65536.0
    for step in range(200):
        skipped = step < 5  # the scaler's usual calibration at the start
        scale = scale / 2 if skipped else scale
        assert not amp.observe(AmpStep(step, scale, skipped))
    assert amp.states["amp_skips"]["skipped_total"] == 5


def test_skip_fraction_of_window():
    amp = RuleSet([AmpSkips(Thresholds(amp_window=20, amp_skip_fraction=0.1))])
    found = [f for step in range(10) for f in amp.observe(AmpStep(step, 1024.0, step % 3 == 0))]
    assert [(f.where, f.step) for f in found] == [("grad_scaler", 6)]  # steps 0, 3, 6: 3/20 > 10 %
