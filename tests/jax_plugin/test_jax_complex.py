"""Complex-valued models (JAX): gradient statistics, probe taps and magnitudes measure |z|."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
from flax import nnx

from _jax_models import IN, OUT, data, tap_norms, train, where
from mlflow_plugins.jax import monitored, probe_norms
from mlflow_plugins.jax.norm_probes import grad_tap, magnitude_cv

TOKENS, WIDTH = 4, 8


class MyComplexNorm(nnx.Module):
    """A complex "layer norm": each token divided by its RMS magnitude, erasing its size."""

    def __call__(self, x: jax.Array) -> jax.Array:
        return x / jnp.sqrt(jnp.mean(jnp.square(jnp.abs(x)), axis=-1, keepdims=True) + 1e-6)


class MyComplexScale(nnx.Module):
    """Divides every token by the RMS magnitude of the whole batch: their spread is kept."""

    def __call__(self, x: jax.Array) -> jax.Array:
        return x / jnp.sqrt(jnp.mean(jnp.square(jnp.abs(x))) + 1e-6)


class ComplexTokens(nnx.Module):
    """Real input -> complex64 tokens (B, 4, 8) -> optional norm -> real head on (re, im)."""

    def __init__(self, rngs: nnx.Rngs, norm: nnx.Module | None = None) -> None:
        self.embed = nnx.Linear(IN, TOKENS * WIDTH, dtype=jnp.complex64,
                                param_dtype=jnp.complex64, rngs=rngs)
        self.norm = norm
        self.head = nnx.Linear(2 * TOKENS * WIDTH, OUT, rngs=rngs)

    def tokens(self, x: jax.Array) -> jax.Array:
        return self.embed(x.astype(jnp.complex64)).reshape(x.shape[0], TOKENS, WIDTH)

    def readout(self, z: jax.Array) -> jax.Array:
        return self.head(jnp.concatenate([z.real, z.imag], axis=-1).reshape(z.shape[0], -1))

    def __call__(self, x: jax.Array) -> jax.Array:
        h = self.tokens(x)
        return self.readout(self.norm(h) if self.norm is not None else h)


def test_user_named_complex_norm_erases_magnitudes():
    model = ComplexTokens(nnx.Rngs(0), MyComplexNorm())
    assert probe_norms(model, types=(MyComplexNorm,)) == ["norm"]
    run = train(model, steps=3, probe=False)
    assert where(run.findings, "NORM_ERASES_MAGNITUDE") == {"norm"}
    [erased] = [f for f in run.findings if f.code == "NORM_ERASES_MAGNITUDE"]
    assert erased.evidence["magnitude_cv_in"] > 0.2 and erased.evidence["magnitude_cv_out"] < 0.01


@pytest.mark.parametrize("norm", [None, MyComplexScale], ids=["no norm", "magnitude-keeping"])
def test_healthy_complex_model_has_no_finding(norm):
    model = ComplexTokens(nnx.Rngs(0), norm() if norm is not None else None)
    if norm is not None:
        assert probe_norms(model, types=(norm,)) == ["norm"]
    run = train(model, steps=6, lr=0.02, probe=False)
    assert run.findings == [] and run.finite()


def test_taps_receive_the_complex_cotangent_norms():
    """Reference: the cotangents at the norm's output and, through the norm alone, at its
    input, computed on the unprobed model."""
    x, y = data()
    plain = ComplexTokens(nnx.Rngs(0), MyComplexNorm())
    probed = nnx.clone(plain)
    probe_norms(probed, types=(MyComplexNorm,))

    def loss_at_output(z: jax.Array) -> jax.Array:
        return optax.softmax_cross_entropy_with_integer_labels(plain.readout(z), y).mean()

    h = plain.tokens(x)
    g_out = jax.grad(loss_at_output)(plain.norm(h))
    g_in = jax.grad(lambda u: loss_at_output(plain.norm(u)))(h)
    assert g_in.dtype == jnp.complex64 and float(jnp.abs(g_in.imag).max()) > 0
    grad_in, grad_out = tap_norms(probed, x, y)
    np.testing.assert_allclose(grad_out, np.linalg.norm(np.asarray(g_out)), rtol=1e-5)
    np.testing.assert_allclose(grad_in, np.linalg.norm(np.asarray(g_in)), rtol=1e-5)


def test_grad_tap_of_a_complex_input():
    z = jnp.array([[3.0 + 4.0j, 1.0j], [0.0, 2.0 - 2.0j]], jnp.complex64)
    weights = jnp.array([[1.0 - 2.0j, 0.5j], [2.0, -1.0 + 1.0j]], jnp.complex64)

    def f(z: jax.Array, tap: jax.Array) -> jax.Array:
        return jnp.sum(jnp.abs(weights * grad_tap(z, tap)) ** 2)

    g_z, g_tap = jax.grad(f, argnums=(0, 1))(z, jnp.ones((), jnp.float32))
    np.testing.assert_allclose(g_z, jax.grad(lambda z: f(z, jnp.zeros(())))(z), rtol=1e-6)
    np.testing.assert_allclose(g_tap, np.linalg.norm(np.asarray(g_z)), rtol=1e-6)
    assert g_tap.dtype == jnp.float32


def test_magnitude_cv_of_complex_tokens_uses_the_imaginary_part():
    x = jnp.array([[3.0 + 4.0j, 0.0], [0.0, 6.0 + 8.0j], [20.0j, 0.0]], jnp.complex64)
    mags = np.array([5.0, 10.0, 20.0])
    np.testing.assert_allclose(magnitude_cv(x, (1,)), np.std(mags, ddof=1) / mags.mean(), rtol=1e-6)


def test_complex_gradient_statistics_match_numpy():
    model = ComplexTokens(nnx.Rngs(0), MyComplexNorm())
    graphdef, params, rest = nnx.split(model, nnx.Param, ...)
    x, y = data()

    def loss(params):
        out = nnx.merge(graphdef, params, rest)(x)
        return optax.softmax_cross_entropy_with_integer_labels(out, y).mean()

    grads = jax.grad(loss)(params)
    tx = monitored(optax.sgd(0.1))
    _, state = jax.jit(tx.update)(grads, tx.init(params), params)
    leaves = [np.asarray(g).astype(np.complex128 if np.iscomplexobj(g) else np.float64)
              for g in jax.tree.leaves(grads)]
    assert any(np.iscomplexobj(g) and np.abs(g.imag).max() > 0 for g in leaves)
    np.testing.assert_allclose(state.l2, [np.linalg.norm(g) for g in leaves], rtol=1e-5)
    np.testing.assert_allclose(state.mean_abs, [np.mean(np.abs(g)) for g in leaves], rtol=1e-5)


@pytest.mark.parametrize("scale", [1e20, 1e-30])
def test_extreme_complex_gradients(scale):
    g = (jax.random.normal(jax.random.key(0), (50,))
         + 1j * jax.random.normal(jax.random.key(1), (50,))).astype(jnp.complex64)
    grads = {"z": g * scale}
    params = {"z": jnp.zeros(50, jnp.complex64)}
    tx = monitored(optax.sgd(0.1))
    _, state = jax.jit(tx.update)(grads, tx.init(params), params)
    ref = np.asarray(g).astype(np.complex128)
    np.testing.assert_allclose(state.l2, [np.linalg.norm(ref) * scale], rtol=1e-5)
    np.testing.assert_allclose(state.mean_abs, [np.mean(np.abs(ref)) * scale], rtol=1e-5)
