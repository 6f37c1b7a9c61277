"""The loop Flax users write: `nnx.Optimizer(model, monitored(tx), wrt=nnx.Param)` under `nnx.jit`,
and the user's own rules on the JAX monitor."""

from __future__ import annotations

import jax
import mlflow
import optax
import pytest
from flax import nnx

from _jax_models import Mlp, NormAfterLargeInput, StopGradBranch, codes, data, train, where
from mlflow_plugins import Finding, GradSnapshot, Rule
from mlflow_plugins.jax import monitored, probe_norms, watch_jax


def _flax_loop(model: nnx.Module, steps: int, *, log_every: int = 1, rules=(),
               spread: bool = True) -> list[Finding]:
    """Flax's own training loop, as its examples write it, under watch_jax."""
    probe_norms(model)
    optimizer = nnx.Optimizer(model, monitored(optax.adam(1e-2), log_every=log_every), wrt=nnx.Param)
    x, y = data(spread=spread)

    @nnx.jit
    def train_step(model: nnx.Module, optimizer: nnx.Optimizer, x: jax.Array, y: jax.Array):
        def loss_fn(model: nnx.Module) -> jax.Array:
            return optax.softmax_cross_entropy_with_integer_labels(model(x), y).mean()

        loss, grads = nnx.value_and_grad(loss_fn)(model)
        optimizer.update(model, grads)
        return loss, nnx.pop(model, nnx.Intermediate)

    with watch_jax(nnx.state(model, nnx.Param), rules=rules) as monitor:  # log_every: the optimizer's
        for step in range(steps):
            _, intermediates = train_step(model, optimizer, x, y)
            monitor.observe(step, optimizer.opt_state, intermediates=intermediates)
    assert monitor.log_every == log_every
    return monitor.findings


def test_flax_optimizer_loop_finds_a_stopped_gradient():
    findings = _flax_loop(StopGradBranch(nnx.Rngs(0)), steps=4)
    assert where(findings, "GRAD_NEVER_UPDATED") == {"representation.bias", "representation.kernel"}
    assert "DIAGNOSTICS_FAILED" not in codes(findings)  # the statistics were read, not skipped


def test_flax_optimizer_loop_probes_norms():
    findings = _flax_loop(NormAfterLargeInput(nnx.Rngs(0)), steps=3)
    assert where(findings, "NORM_ERASES_MAGNITUDE") == {"normalize"}


def test_flax_optimizer_loop_healthy_is_silent(tracking_uri):
    with mlflow.start_run() as run:
        findings = _flax_loop(Mlp(nnx.Rngs(0)), steps=12, log_every=4, spread=False)
    assert not findings
    stored = mlflow.MlflowClient()
    assert stored.get_run(run.info.run_id).data.tags["fixlab.health"] == "ok"
    steps = [m.step for m in stored.get_metric_history(run.info.run_id, "grad_norm/total")]
    assert steps == [0, 4, 8]  # log_every came from monitored(log_every=4)


class NormBelow(Rule):
    """A user's rule over the JAX gradient snapshot (the same summary torch produces)."""

    name, accepts = "norm_below", (GradSnapshot,)

    def init(self) -> bool:
        return False

    def update(self, snap: GradSnapshot, reported: bool):
        if reported or snap.total_norm >= 1e3:
            return [], reported
        return [Finding("NORM_BELOW_1E3", "info", snap.step, "<total>", {"norm": snap.total_norm})], True


def test_users_rules_on_the_jax_monitor(tracking_uri):
    rule = Rule.metric("val/acc", below=0.5, for_epochs=2, code="NOT_LEARNING", severity="critical")
    with mlflow.start_run() as run:
        result = train(Mlp(nnx.Rngs(0)), steps=3, monitor_kwargs={"rules": [rule, NormBelow()]})
        monitor = result.monitor
    assert where(monitor.findings, "NORM_BELOW_1E3") == {"<total>"}
    with watch_jax(result.params, rules=[rule]) as again:
        with pytest.raises(ValueError, match="pass epoch=<int>"):
            again.log_metrics({"val/acc": 0.1}, step=0)
        again.log_metrics({"val/acc": 0.1}, step=0, epoch=0)
        again.log_metrics({"val/acc": 0.2}, step=10, epoch=1)
    assert [(f.code, f.severity.value) for f in again.findings] == [("NOT_LEARNING", "critical")]
    assert "NORM_BELOW_1E3" in mlflow.MlflowClient().get_run(run.info.run_id).data.tags["fixlab.info"]


def test_jax_monitor_state_round_trip():
    """Two steps, then a new monitor restored from the state: the third finds the stopped branch."""
    first = train(StopGradBranch(nnx.Rngs(0)), steps=2)
    assert "GRAD_NEVER_UPDATED" not in codes(first.findings)
    fresh = train(StopGradBranch(nnx.Rngs(0)), steps=1)
    assert "GRAD_NEVER_UPDATED" not in codes(fresh.findings)
    resumed = train(StopGradBranch(nnx.Rngs(0)), steps=1, state=first.monitor.state_dict())
    assert where(resumed.findings, "GRAD_NEVER_UPDATED") == {"representation.bias", "representation.kernel"}
