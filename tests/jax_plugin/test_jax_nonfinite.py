"""NONFINITE in JAX: the module that produced a NaN/Inf is named, and the policies act on it."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import pytest
from flax import nnx

from _jax_models import ExpBlock, LogBlock, Mlp, NanInside, SqrtAtZero, codes, train
from mlflow_plugins import Severity, TrainingStopped
from mlflow_plugins.jax.locate import locate_nonfinite


def _nonfinite(findings):
    return [(f.where, f.evidence["source"]) for f in findings if f.code == "NONFINITE"]


@pytest.mark.parametrize("block,kind", [(LogBlock, "nan"), (ExpBlock, "inf")], ids=["log", "exp"])
def test_activation_names_the_submodule(block, kind):
    run = train(NanInside(nnx.Rngs(0), block), steps=4)
    [finding] = [f for f in run.findings if f.code == "NONFINITE"]
    assert finding.where == "encoder.blocks.1" and finding.step == 0
    assert finding.evidence["source"] == "activation" and finding.evidence["dtype"] == "float32"
    assert finding.evidence[kind] is True and finding.evidence["autocast"] is None
    assert finding.severity is Severity.CRITICAL


def test_located_one_step_late_at_the_default_interval():
    run = train(NanInside(nnx.Rngs(0)), steps=3, monitor_kwargs={"log_every": 50})
    assert _nonfinite(run.findings) == [("encoder.blocks.1", "activation")]


def test_finite_forward_names_the_parameter_then_the_activation():
    """d sqrt(u)/du at 0: the forward is finite, so the gradient names the parameter; once the
    NaN update is applied, the next step's re-run finds the module."""
    run = train(SqrtAtZero(nnx.Rngs(0)), steps=3)
    assert _nonfinite(run.findings) == [("lin.bias", "gradient"), ("lin", "activation")]


def test_without_locate_the_parameter_is_named():
    run = train(NanInside(nnx.Rngs(0)), steps=2, locate=False)
    assert _nonfinite(run.findings) == [("encoder.blocks.0.bias", "gradient")]


def test_policy_skip_step_keeps_parameters_finite():
    skipped = train(NanInside(nnx.Rngs(0)), steps=3, monitor_kwargs={"policy": "skip_step"})
    assert skipped.finite() and int(skipped.opt_state.count) == 3
    assert _nonfinite(skipped.findings) == [("encoder.blocks.1", "activation")]
    warned = train(NanInside(nnx.Rngs(0)), steps=3)
    assert not warned.finite()  # the bug is real


def test_policy_stop_raises():
    with pytest.raises(TrainingStopped, match="NONFINITE at encoder.blocks.1") as stopped:
        train(NanInside(nnx.Rngs(0)), steps=5, monitor_kwargs={"policy": "stop", "log_every": 50})
    assert stopped.value.finding.step == 0


def test_healthy_model_is_silent():
    assert "NONFINITE" not in codes(train(Mlp(nnx.Rngs(0)), steps=5).findings)


class _Stateful(nnx.Module):
    """BatchNorm statistics and dropout RNG: state an eager re-run would change."""

    def __init__(self, rngs: nnx.Rngs) -> None:
        self.bn = nnx.BatchNorm(16, rngs=rngs)
        self.drop = nnx.Dropout(0.5, rngs=rngs)
        self.bad = LogBlock(rngs)

    def __call__(self, x: jax.Array) -> jax.Array:
        return self.bad(self.drop(self.bn(x)))


def test_rerun_leaves_no_trace():
    model = _Stateful(nnx.Rngs(0))
    before = jax.tree.map(lambda v: v, nnx.state(model))
    calls = {cls: cls.__dict__.get("__call__") for cls in (_Stateful, nnx.BatchNorm, LogBlock)}
    event = locate_nonfinite(model, (jax.random.normal(jax.random.key(0), (8, 16)),), step=7)
    assert (event.where, event.source, event.step, event.nan) == ("bad", "activation", 7, True)
    after = nnx.state(model)
    assert jax.tree.all(jax.tree.map(lambda a, b: bool(jnp.all(a == b)), before, after))
    assert {cls: cls.__dict__.get("__call__") for cls in calls} == calls
    assert not nnx.state(model, nnx.Intermediate)


def test_rerun_that_raises_is_survived():
    model = NanInside(nnx.Rngs(0))
    original = LogBlock.__dict__["__call__"]
    assert locate_nonfinite(model, ("not an array",), step=0) is None
    assert LogBlock.__dict__["__call__"] is original
