"""GRAD_* in JAX: planted bugs are found where they are, healthy models stay silent."""

from __future__ import annotations

import numpy as np
import pytest
from flax import nnx

from _jax_models import HEALTHY, Mlp, StopGradBranch, TinyScale, codes, train, where
from mlflow_plugins import Severity

# (name, model factory, loss scale, lr, thresholds, expected code, expected places)
PLANTED = [
    ("stop_gradient branch", StopGradBranch, 1.0, 0.05, {}, "GRAD_NEVER_UPDATED",
     {"representation.kernel", "representation.bias"}),
    ("tiny scale", TinyScale, 1.0, 0.05, {}, "GRAD_VANISHING", {"first"}),
    ("huge loss", Mlp, 1e5, 1e-6, {}, "GRAD_EXPLODING", {"<total>"}),
    ("tiny loss", Mlp, 1e-4, 0.05, {"norm_band_window": 5}, "GRAD_NORM_OUT_OF_RANGE", {"<total>"}),
]


@pytest.mark.parametrize("name,factory,scale,lr,thresholds,code,places", PLANTED,
                         ids=[p[0] for p in PLANTED])
def test_planted(name, factory, scale, lr, thresholds, code, places):
    run = train(factory(nnx.Rngs(0)), steps=8, loss_scale=scale, lr=lr, monitor_kwargs=thresholds)
    assert code in codes(run.findings)
    assert places <= where(run.findings, code)


def test_stop_gradient_is_critical_after_k_steps_at_the_default_interval():
    """At log_every=50 only step 0 is fully read, but each step's all-zero status is read one
    step late: exactly-zero gradients are seen on every step, as None gradients are in torch."""
    run = train(StopGradBranch(nnx.Rngs(0)), steps=4, monitor_kwargs={"log_every": 50})
    found = [f for f in run.findings if f.code == "GRAD_NEVER_UPDATED"]
    assert {f.where for f in found} == {"representation.kernel", "representation.bias"}
    assert all(f.severity is Severity.CRITICAL and f.step == 0 for f in found)
    assert found[0].evidence["steps_without_gradient"] == 3
    assert codes(run.findings) == {"GRAD_NEVER_UPDATED"}


def test_never_updated_waits_for_k_steps():
    assert not train(StopGradBranch(nnx.Rngs(0)), steps=2).findings
    run = train(StopGradBranch(nnx.Rngs(0)), steps=4, monitor_kwargs={"never_updated_steps": 5})
    assert not run.findings


@pytest.mark.parametrize("name", sorted(HEALTHY))
def test_healthy_models_have_no_finding(name):
    run = train(HEALTHY[name](nnx.Rngs(0)), steps=30, lr=0.02, spread=False)
    assert run.findings == []
    assert len(run.monitor.flow.steps) == 30 and run.finite()


def test_same_seed_same_statistics():
    a = train(Mlp(nnx.Rngs(3)), steps=5)
    b = train(Mlp(nnx.Rngs(3)), steps=5)
    assert a.monitor.flow.total_norm == b.monitor.flow.total_norm
    np.testing.assert_array_equal(a.monitor.flow.mean_abs, b.monitor.flow.mean_abs)


def test_default_interval_reads_statistics_once_per_interval():
    run = train(Mlp(nnx.Rngs(0)), steps=7, monitor_kwargs={"log_every": 3})
    flow = run.monitor.flow
    assert flow.steps == [0, 3, 6]
    assert np.all(flow.mean_abs > 0) and np.all(np.isfinite(flow.mean_abs))


def test_every_step_judges_each_step_mean_abs_per_interval():
    run = train(Mlp(nnx.Rngs(0)), steps=6, monitor_kwargs={"log_every": 3, "every_step": True})
    flow = run.monitor.flow
    assert flow.steps == list(range(6))
    assert set(flow.mean_abs_count) == {2.0}  # measured on steps 0 and 3 only


def test_a_train_step_that_donates_its_state():
    """Status vectors are copied before the next step can free a donated optimizer state."""
    run = train(StopGradBranch(nnx.Rngs(0)), steps=5, donate=True, locate=False,
                monitor_kwargs={"log_every": 50})
    assert where(run.findings, "GRAD_NEVER_UPDATED") == {"representation.kernel",
                                                         "representation.bias"}
