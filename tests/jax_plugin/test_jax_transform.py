"""`monitored`: the in-jit statistics against numpy, sampling, probe taps, skip_step, the state."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
from flax import nnx

from _jax_models import Mlp, Scaled, data
from mlflow_plugins.jax import MonitoredState, monitored, probe_norms
from mlflow_plugins.jax.paths import leaf_names
from mlflow_plugins.jax.readout import find_state
from mlflow_plugins.jax.transform import INF, NAN, OK, ZERO


def _params_and_grads(model: nnx.Module):
    graphdef, params, rest = nnx.split(model, nnx.Param, ...)
    x, y = data()

    def loss(params):
        out = nnx.merge(graphdef, params, rest)(x)
        return optax.softmax_cross_entropy_with_integer_labels(out, y).mean()

    return params, jax.grad(loss)(params)


def test_statistics_match_numpy():
    params, grads = _params_and_grads(Mlp(nnx.Rngs(0)))
    tx = monitored(optax.sgd(0.1))
    _, state = jax.jit(tx.update)(grads, tx.init(params), params)
    leaves = [np.asarray(g, np.float64) for g in jax.tree.leaves(grads)]
    np.testing.assert_allclose(state.l2, [np.linalg.norm(g) for g in leaves], rtol=1e-5)
    np.testing.assert_allclose(state.mean_abs, [np.mean(np.abs(g)) for g in leaves], rtol=1e-5)
    assert int(state.count) == 1 and int(state.sampled_at) == 0
    assert np.all(np.asarray(state.status) == OK)


def test_status_codes():
    params = {"a": jnp.ones(3), "b": jnp.ones(3), "c": jnp.ones(3), "d": jnp.ones(3)}
    grads = {"a": jnp.zeros(3), "b": jnp.array([1.0, jnp.nan, 0.0]),
             "c": jnp.array([jnp.inf, 1.0, 0.0]), "d": jnp.ones(3)}
    tx = monitored(optax.sgd(0.1))
    _, state = tx.update(grads, tx.init(params), params)
    assert np.asarray(state.status).tolist() == [ZERO, NAN, INF, OK]


def test_mean_abs_only_on_sampled_updates():
    params, grads = _params_and_grads(Mlp(nnx.Rngs(0)))
    tx = monitored(optax.sgd(0.1), log_every=2)
    update = jax.jit(tx.update)
    state = tx.init(params)
    _, state = update(grads, state, params)
    first = np.asarray(state.mean_abs)
    _, state = update(jax.tree.map(lambda g: g * 2, grads), state, params)
    assert int(state.sampled_at) == 0
    np.testing.assert_array_equal(state.mean_abs, first)  # kept, not measured
    _, state = update(jax.tree.map(lambda g: g * 2, grads), state, params)
    assert int(state.sampled_at) == 2
    np.testing.assert_allclose(state.mean_abs, 2 * first, rtol=1e-6)


def test_probe_taps_are_hidden_from_the_inner_optimizer():
    """A global-norm clip inside sees the parameters' gradients only; taps are armed or not."""
    model = Scaled(nnx.Rngs(0))
    probe_norms(model)
    params, grads = _params_and_grads(model)
    names = leaf_names(params)
    taps = [i for i, n in enumerate(names) if n.startswith("norm.norm_probe")]
    assert len(taps) == 2 and all(float(jax.tree.leaves(grads)[i]) > 0 for i in taps)
    inner = optax.chain(optax.clip_by_global_norm(1e-3), optax.sgd(1.0))
    tx = monitored(inner, log_every=2)
    updates, state = tx.update(grads, tx.init(params), params)
    without_taps = jax.tree.unflatten(jax.tree.structure(grads), [
        jnp.zeros_like(g) if i in taps else g for i, g in enumerate(jax.tree.leaves(grads))])
    expected, _ = inner.update(without_taps, inner.init(params), params)
    got, want = jax.tree.leaves(updates), jax.tree.leaves(expected)
    for i in range(len(names)):
        if i in taps:  # from 1 (armed at init) to 0: update 1 of log_every=2 is not sampled
            assert float(got[i]) == -1.0
        else:
            np.testing.assert_allclose(got[i], want[i], rtol=1e-6)
    np.testing.assert_allclose(state.taps, [float(jax.tree.leaves(grads)[i]) for i in taps])
    assert len(jax.tree.leaves(state.inner_state)) == 0  # clip and sgd keep no per-leaf state
    adam_state = monitored(optax.adam(1e-3)).init(params).inner_state
    assert len(jax.tree.leaves(adam_state[0].mu)) == len(names) - len(taps)  # none for taps


def test_skip_step_zeroes_a_nonfinite_update_and_keeps_the_inner_state():
    params, grads = _params_and_grads(Mlp(nnx.Rngs(0)))
    tx = monitored(optax.adam(1e-3), skip_step=True)
    update = jax.jit(tx.update)
    state = tx.init(params)
    _, state = update(grads, state, params)
    bad = jax.tree.map(lambda g: g.at[..., 0].set(jnp.nan), grads)
    updates, skipped = update(bad, state, params)
    assert all(bool(jnp.all(u == 0)) for u in jax.tree.leaves(updates))
    assert jax.tree.all(jax.tree.map(lambda a, b: bool(jnp.all(a == b)),
                                     skipped.inner_state, state.inner_state))
    assert int(skipped.count) == 2 and bool(skipped.skip_step)
    updates, _ = update(grads, skipped, params)
    assert any(bool(jnp.any(u != 0)) for u in jax.tree.leaves(updates))


def test_state_is_found_inside_a_chain():
    params, _ = _params_and_grads(Mlp(nnx.Rngs(0)))
    state = optax.chain(optax.add_decayed_weights(1e-4), monitored(optax.sgd(0.1))).init(params)
    assert isinstance(find_state(state), MonitoredState)
    with pytest.raises(ValueError, match="opt_state holds 0 MonitoredState; build the optimizer"):
        find_state(optax.sgd(0.1).init(params))


@pytest.mark.parametrize("kwargs,message", [
    ({"log_every": 0}, r"log_every=0 is out of range; allowed: an integer >= 1"),
    ({"skip_step": "yes"}, r"skip_step='yes' is not allowed; allowed: True or False"),
])
def test_bad_arguments(kwargs, message):
    with pytest.raises(ValueError, match=message):
        monitored(optax.sgd(0.1), **kwargs)


def test_init_needs_parameters():
    with pytest.raises(ValueError, match="params has no array leaves to monitor"):
        monitored(optax.sgd(0.1)).init({})
