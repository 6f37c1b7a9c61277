"""UPDATES_NOT_APPLIED in JAX: measured inside `jit` on sampled updates (and the ones following a
still one), so `optax.MultiSteps` accumulation and an `optax.set_to_zero` freeze are told apart
from a schedule that reached 0."""

from __future__ import annotations

import jax
import optax
from flax import nnx

from _jax_models import Mlp, data
from mlflow_plugins import Severity
from mlflow_plugins.jax import monitored, watch_jax


def _train(inner: optax.GradientTransformation, steps: int = 60, log_every: int = 10):
    model = Mlp(nnx.Rngs(0))
    graphdef, params, rest = nnx.split(model, nnx.Param, ...)
    tx = monitored(inner, log_every=log_every)
    opt_state = tx.init(params)
    x, y = data()

    @jax.jit
    def step(params, opt_state):
        def loss_fn(p):
            logits = nnx.merge(graphdef, p, rest)(x)
            return optax.softmax_cross_entropy_with_integer_labels(logits, y).mean()

        grads = jax.grad(loss_fn)(params)
        updates, opt_state = tx.update(grads, opt_state, params)
        return optax.apply_updates(params, updates), opt_state

    with watch_jax(params, log_every=log_every) as monitor:
        for i in range(steps):
            params, opt_state = step(params, opt_state)
            monitor.observe(i, opt_state)
    return [f for f in monitor.findings if f.code == "UPDATES_NOT_APPLIED"], monitor


def test_a_schedule_that_reaches_zero_names_every_layer():
    # linear decay sized for 10 steps of a 60-step run
    found, _ = _train(optax.sgd(optax.linear_schedule(0.05, 0.0, transition_steps=10)))
    assert {f.where for f in found} == {"encoder", "norm", "hidden", "head"}
    assert all(f.severity is Severity.WARNING and f.step == 10 for f in found), found
    assert all("changed before, then stopped" in f.evidence["cause"] for f in found)


def test_a_zero_learning_rate_from_the_start():
    found, _ = _train(optax.adam(0.0))
    assert {f.where for f in found} == {"encoder", "norm", "hidden", "head"}
    assert all("no parameter changed" in f.evidence["cause"] and f.step == 0 for f in found)


def test_multisteps_accumulation_adam_tiny_steps_are_healthy():
    for inner in (optax.MultiSteps(optax.sgd(0.05), every_k_schedule=4), optax.adam(1e-6)):
        found, monitor = _train(inner)
        assert found == [] and monitor.findings == [], monitor.findings


def test_a_set_to_zero_freeze_is_information_naming_the_frozen_layer():
    def label(params):
        return jax.tree_util.tree_map_with_path(
            lambda path, _: "frozen" if "encoder" in jax.tree_util.keystr(path) else "train", params)

    found, _ = _train(optax.multi_transform({"train": optax.sgd(0.05), "frozen": optax.set_to_zero()}, label))
    (f,) = found
    assert f.where == "encoder" and f.severity is Severity.INFO
    assert "frozen by the optimizer" in f.evidence["cause"]
