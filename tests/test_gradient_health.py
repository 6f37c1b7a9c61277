"""GRAD_*: planted bugs are found where they are, healthy models stay silent (torch, Lightning)."""

from __future__ import annotations

import numpy as np
import pytest

from _models import (HEALTHY, NoGradBranch, TinyScale, Wrapped, codes, mlp, train_lightning,
                     train_plain, where)
from mlflow_plugins import GradientHealthCallback, Severity
from mlflow_plugins.analysis import GradientHealth, GradPresence, GradSnapshot, RuleSet
from mlflow_plugins.thresholds import Thresholds

GRAD_CODES = {"GRAD_NEVER_UPDATED", "GRAD_VANISHING", "GRAD_EXPLODING", "GRAD_NORM_OUT_OF_RANGE"}

# (name, model factory, loss scale, thresholds, expected code, expected places)
PLANTED = [
    ("no_grad branch", NoGradBranch, 1.0, {}, "GRAD_NEVER_UPDATED",
     {"representation.weight", "representation.bias"}),
    ("tiny scale", TinyScale, 1.0, {}, "GRAD_VANISHING", {"first"}),
    ("huge loss", mlp, 1e5, {}, "GRAD_EXPLODING", {"<total>"}),
    ("tiny loss", mlp, 1e-4, {"norm_band_window": 5}, "GRAD_NORM_OUT_OF_RANGE", {"<total>"}),
]


@pytest.mark.parametrize("name,factory,scale,thresholds,code,places", PLANTED, ids=[p[0] for p in PLANTED])
def test_planted_plain(name, factory, scale, thresholds, code, places):
    monitor = train_plain(factory(), steps=12, loss_scale=scale, lr=1e-6 if scale > 1 else 0.05,
                          monitor_kwargs=thresholds)
    assert code in codes(monitor.findings)
    assert places <= where(monitor.findings, code)


@pytest.mark.parametrize("name,factory,scale,thresholds,code,places", PLANTED, ids=[p[0] for p in PLANTED])
def test_planted_lightning(name, factory, scale, thresholds, code, places):
    cb = GradientHealthCallback(log_every=1, **thresholds)
    module = Wrapped(factory(), loss_scale=scale, lr=1e-6 if scale > 1 else 0.05)
    train_lightning(module, [cb], steps=12)
    assert code in codes(cb.findings)
    assert {f"model.{p}" if p != "<total>" else p for p in places} <= where(cb.findings, code)


@pytest.mark.parametrize("name", sorted(HEALTHY))
def test_healthy_plain_is_silent(name):
    monitor = train_plain(HEALTHY[name](), steps=30)
    assert not codes(monitor.findings) & (GRAD_CODES | {"NONFINITE"}), monitor.findings
    assert all(f.severity is not Severity.CRITICAL for f in monitor.findings)


@pytest.mark.parametrize("name", sorted(HEALTHY))
def test_healthy_lightning_is_silent(name):
    cb = GradientHealthCallback(log_every=1)
    train_lightning(Wrapped(HEALTHY[name]()), [cb], steps=30)
    assert not codes(cb.findings) & GRAD_CODES, cb.findings
    assert all(f.severity is not Severity.CRITICAL for f in cb.findings)


def test_never_updated_waits_for_k_steps():
    monitor = train_plain(NoGradBranch(), steps=2)
    assert "GRAD_NEVER_UPDATED" not in codes(monitor.findings)
    monitor = train_plain(NoGradBranch(), steps=5, monitor_kwargs={"never_updated_steps": 5})
    assert "GRAD_NEVER_UPDATED" in codes(monitor.findings)


def test_sampled_steps_only_at_default_interval():
    """At log_every=50 the zero-gradient rule sees steps 0, 50, 100: None grads are seen every step."""
    monitor = train_plain(NoGradBranch(), steps=4, monitor_kwargs={"log_every": 50})
    assert where(monitor.findings, "GRAD_NEVER_UPDATED") == {"representation.weight", "representation.bias"}


def _snap(step, l2, mean_abs=None, missing=None):
    l2 = np.asarray(l2, dtype=float)
    return GradSnapshot(step, tuple(f"p{i}" for i in range(len(l2))), l2,
                        np.asarray(mean_abs if mean_abs is not None else l2 / 10, dtype=float),
                        np.asarray(missing if missing is not None else [False] * len(l2)),
                        np.full(len(l2), 10.0))


def _health(thresholds: Thresholds) -> RuleSet:
    """The gradient rule with its state, as adapters run it."""
    return RuleSet([GradientHealth(thresholds)])


def test_zero_gradient_counts_only_observed_steps():
    health = _health(Thresholds())
    for step in range(2):
        assert not health.observe(_snap(step, [0.0, 1.0]))
        assert not health.observe(GradPresence.missing(step, ("p0", "p1"), np.array([False, False])))  # unseen: no evidence
    found = health.observe(_snap(2, [0.0, 1.0]))
    assert [(f.code, f.where, f.step) for f in found] == [("GRAD_NEVER_UPDATED", "p0", 0)]


def test_a_gradient_resets_the_count():
    health = _health(Thresholds())
    health.observe(_snap(0, [0.0]))
    health.observe(_snap(1, [0.0]))
    health.observe(_snap(2, [0.5]))
    assert not health.observe(_snap(3, [0.0]))


def test_zero_flags_reset_the_count_where_missing_flags_cannot():
    """JAX knows every step which gradients are all zero: an intermittently zero gradient is
    healthy. From None-flags alone (PyTorch), a present gradient is no evidence either way."""
    pattern = [True, True, False, True, True, False, True, True]   # zero twice, then a gradient
    zero_aware = _health(Thresholds())
    assert not [f for step, z in enumerate(pattern) for f in zero_aware.observe(GradPresence.zero(step, ("gated",), np.array([z])))]
    stuck = _health(Thresholds())
    found = [f for step in range(3) for f in stuck.observe(GradPresence.zero(step, ("frozen",), np.array([True])))]
    assert [(f.code, f.where, f.step) for f in found] == [("GRAD_NEVER_UPDATED", "frozen", 0)]


def test_band_needs_a_sustained_window():
    health = _health(Thresholds(norm_band_window=3))
    assert not health.observe(_snap(0, [0.01]))
    assert not health.observe(_snap(1, [1.0]))  # back in band
    assert not health.observe(_snap(2, [0.01]))
    assert not health.observe(_snap(3, [0.01]))
    found = health.observe(_snap(4, [0.01]))
    assert [f.code for f in found] == ["GRAD_NORM_OUT_OF_RANGE"] and found[0].step == 2


def test_each_finding_once_and_state_round_trip():
    health = _health(Thresholds())
    assert [f.where for f in health.observe(_snap(0, [500.0, 1.0]))] == ["<total>", "p0"]
    restored = _health(Thresholds())
    restored.load_state_dict(health.state_dict())
    assert not restored.observe(_snap(1, [500.0, 1.0]))


def test_lightning_state_round_trip():
    cb = GradientHealthCallback(log_every=1)
    train_lightning(Wrapped(NoGradBranch()), [cb], steps=4)
    again = GradientHealthCallback(log_every=1)
    again.load_state_dict(cb.state_dict())
    assert [f.to_dict() for f in again.findings] == [f.to_dict() for f in cb.findings]
    train_lightning(Wrapped(NoGradBranch()), [again], steps=4)
    assert len(where(again.findings, "GRAD_NEVER_UPDATED")) == 2  # not reported a second time


def test_vanishing_is_judged_per_layer():
    names = ("conv.weight", "conv.bias", "head.weight")
    snap = GradSnapshot(0, names, np.array([1.0, 1e-9, 1.0]), np.array([1e-2, 1e-12, 1e-2]),
                        np.zeros(3, dtype=bool), np.array([100.0, 4.0, 10.0]))
    assert not _health(Thresholds()).observe(snap)  # the bias alone is not a layer
    tiny = GradSnapshot(0, names, np.array([1e-6, 1e-9, 1.0]), np.array([1e-9, 1e-12, 1e-2]),
                        np.zeros(3, dtype=bool), np.array([100.0, 4.0, 10.0]))
    found = _health(Thresholds()).observe(tiny)
    assert [(f.code, f.where) for f in found] == [("GRAD_VANISHING", "conv")]


def test_vanishing_ignores_parameters_without_gradient():
    health = _health(Thresholds())
    assert not health.observe(_snap(0, [0.0], mean_abs=[0.0], missing=[True]))


def test_every_step_judges_each_step_and_records_per_interval(tracking_uri):
    import mlflow
    with mlflow.start_run() as run:
        monitor = train_plain(mlp(), steps=6, monitor_kwargs={"log_every": 3, "every_step": True})
    flow = monitor.watch.grads.flow
    assert flow.steps == [0, 1, 2, 3, 4, 5]  # L2 statistics on every step
    assert set(flow.mean_abs_count) == {2.0}  # mean |grad| on steps 0 and 3
    assert np.all(flow.mean_abs > 0)
    client = mlflow.MlflowClient()
    assert [m.step for m in client.get_metric_history(run.info.run_id, "grad_norm/total")] == list(range(6))
    assert [m.step for m in client.get_metric_history(run.info.run_id, "grad_norm/0.weight")] == [0, 3]
