"""Surrogate-gradient spikes, the spike bridge, and LIF dynamics in seconds."""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx

from jax_modules.cpc_snn_gw import (LIFClassifier, ModelConfig, SpikeBridge, build_model, leaky_integrate,
                                    lif_scan, membrane_decay, spike, split_model, variant_config)


def test_spike_forward_is_exactly_binary() -> None:
    v = jnp.linspace(-2.0, 2.0, 101)
    out = np.asarray(spike(v, 10.0))
    assert set(np.unique(out)) == {0.0, 1.0}
    np.testing.assert_array_equal(out, (np.asarray(v) > 0).astype(np.float32))


def test_spike_gradient_is_the_fast_sigmoid_surrogate() -> None:
    v = jnp.array([-1.0, -0.05, 0.0, 0.05, 1.0])
    grad = np.asarray(jax.grad(lambda v: spike(v, 10.0).sum())(v))
    np.testing.assert_allclose(grad, 1.0 / (1.0 + 10.0 * np.abs(np.asarray(v))) ** 2, rtol=1e-6)
    assert grad[2] == 1.0 and grad[1] > 0.4  # largest at threshold, far from zero nearby


def test_bridge_threshold_learns_through_the_surrogate() -> None:
    bridge = SpikeBridge(3, threshold=0.5, learnable=True, slope=5.0)
    x = jnp.array([[0.4, 0.6, 2.0]])
    np.testing.assert_array_equal(np.asarray(bridge(x)), [[0.0, 1.0, 1.0]])
    grads = nnx.grad(lambda b: b(x).sum())(bridge)
    expected = -1.0 / (1.0 + 5.0 * np.abs(np.array([0.4, 0.6, 2.0]) - 0.5)) ** 2
    np.testing.assert_allclose(np.asarray(grads["threshold"][...]), expected, rtol=1e-6)


def test_fixed_threshold_adds_no_state() -> None:
    assert len(jax.tree_util.tree_leaves(nnx.state(SpikeBridge(4, learnable=False)))) == 0
    assert len(jax.tree_util.tree_leaves(nnx.state(SpikeBridge(4, learnable=True)))) == 1


def test_decay_is_exp_of_minus_dt_over_tau_in_seconds() -> None:
    assert membrane_decay(dt=1 / 64, tau=0.02) == pytest.approx(math.exp(-(1 / 64) / 0.02))
    assert membrane_decay(dt=0.02, tau=0.02) == pytest.approx(math.exp(-1.0))
    with pytest.raises(ValueError, match="tau=0 is out of range; allowed: a finite number of seconds > 0"):
        membrane_decay(dt=0.01, tau=0)


def test_single_subthreshold_neuron_matches_closed_form() -> None:
    beta, current, steps = membrane_decay(dt=32 / 2048, tau=0.02), 0.3, 12
    spikes, v = lif_scan(jnp.full((1, steps, 1), current), beta, threshold=100.0, slope=10.0)
    n = np.arange(1, steps + 1)
    np.testing.assert_allclose(np.asarray(v[0, :, 0]), current * (1 - beta**n) / (1 - beta), rtol=1e-5)
    assert float(spikes.sum()) == 0.0
    np.testing.assert_allclose(np.asarray(leaky_integrate(jnp.full((1, steps, 1), current), beta)),
                               np.asarray(v), rtol=1e-6)


def test_lif_resets_by_subtraction() -> None:
    beta = 0.5
    spikes, v = lif_scan(jnp.array([[[1.5], [0.0], [0.0]]]), beta, threshold=1.0, slope=10.0)
    np.testing.assert_array_equal(np.asarray(spikes[0, :, 0]), [1.0, 0.0, 0.0])
    np.testing.assert_allclose(np.asarray(v[0, :, 0]), [1.5, 0.5 * beta, 0.5 * beta**2])


def test_lif_classifier_uses_the_latent_step_in_seconds() -> None:
    cfg = variant_config("cpc_original")
    model = nnx.eval_shape(lambda: build_model(cfg, seed=0))  # beta is fixed at construction
    assert isinstance(model.classifier, LIFClassifier)
    assert model.classifier.beta == pytest.approx(math.exp(-(32 / 2048) / cfg.tau))


def test_gradient_reaches_the_encoder_through_bridge_and_snn() -> None:
    """A small cpc_original (L2 on): the classification gradient crosses two surrogates."""
    cfg = ModelConfig(kind="cpc_snn", encoder_widths=(8, 16), encoder_strides=(4, 8), latent_dim=16,
                      context_dim=16, snn_hidden=(16,), l2_normalize=True)
    graphdef, params, rest = split_model(build_model(cfg, seed=0))
    x = jax.random.normal(jax.random.key(0), (4, 2, 512))
    grads = jax.jit(jax.grad(lambda p: nnx.merge(graphdef, p, rest)(x).sum()))(params)
    first_conv = np.asarray(grads["encoder"]["convs"][0]["kernel"][...])
    assert np.all(np.isfinite(first_conv)) and np.abs(first_conv).max() > 0
