"""Gradients of extreme but finite magnitude (JAX): measured inside `jit`, not mistaken for
NaN/Inf or zero; all-zero and NaN gradients keep their findings."""

from __future__ import annotations

import functools
import math

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
from flax import nnx

from _jax_models import IN, OUT, codes, train, where
from mlflow_plugins.jax import monitored
from mlflow_plugins.jax.transform import INF, NAN, OK, ZERO


@functools.partial(jax.custom_vjp, nondiff_argnums=(1,))
def scale_grad(x: jax.Array, scale: float) -> jax.Array:
    """Identity forward; the backward multiplies the cotangent by `scale`."""
    return x


scale_grad.defvjp(lambda x, scale: (x, None), lambda scale, _, g: (g * scale,))


class GradScaledFirst(nnx.Module):
    """A healthy float32 MLP whose first layer's gradient is multiplied by `scale`; the forward
    is unchanged, so only that layer's gradient is extreme."""

    def __init__(self, rngs: nnx.Rngs, scale: float) -> None:
        self.scale = scale
        self.first = nnx.Linear(IN, IN, rngs=rngs)
        self.head = nnx.Linear(IN, OUT, rngs=rngs)

    def __call__(self, x: jax.Array) -> jax.Array:
        return self.head(nnx.relu(scale_grad(self.first(x), self.scale)))


FIRST = {"first.kernel", "first.bias"}


@pytest.mark.parametrize("monitor_kwargs", [{}, {"log_every": 50}],
                         ids=["every step read", "status only between reads"])
def test_huge_gradient_is_exploding_not_nonfinite(monitor_kwargs):
    """lr=0 keeps the parameters, so the gradient stays ~1e20 and every forward stays finite."""
    run = train(GradScaledFirst(nnx.Rngs(0), 1e20), steps=4, lr=0.0, probe=False,
                monitor_kwargs=monitor_kwargs)
    assert "NONFINITE" not in codes(run.findings), run.findings
    assert FIRST <= where(run.findings, "GRAD_EXPLODING")
    assert "head.kernel" not in where(run.findings, "GRAD_EXPLODING")
    exploding = {f.where: f.evidence["grad_norm"] for f in run.findings
                 if f.code == "GRAD_EXPLODING"}
    assert 1e18 < exploding["first.kernel"] < 1e23 and math.isfinite(exploding["<total>"])
    assert np.all(np.asarray(run.opt_state.status) == OK)


def test_huge_gradient_is_not_skipped_as_nonfinite():
    run = train(GradScaledFirst(nnx.Rngs(0), 1e20), steps=3, lr=1e-22, probe=False,
                monitor_kwargs={"policy": "skip_step"})
    assert "NONFINITE" not in codes(run.findings)
    # applied, not skipped: lr * 1e20-ish gradients moved the first layer
    initial = GradScaledFirst(nnx.Rngs(0), 1.0).first.kernel[...]
    assert bool(jnp.any(run.params["first"]["kernel"][...] != initial))


def test_tiny_gradient_is_vanishing_not_never_updated():
    run = train(GradScaledFirst(nnx.Rngs(0), 1e-30), steps=5, probe=False)
    assert "GRAD_NEVER_UPDATED" not in codes(run.findings), run.findings
    assert where(run.findings, "GRAD_VANISHING") == {"first"}
    [vanishing] = [f for f in run.findings if f.code == "GRAD_VANISHING"]
    assert 0 < vanishing.evidence["mean_abs_grad"] < 1e-28


def test_tiny_gradient_between_reads_is_not_zero():
    """Only the status vector is read off the log steps: a tiny gradient must not be ZERO."""
    run = train(GradScaledFirst(nnx.Rngs(0), 1e-30), steps=5, probe=False,
                monitor_kwargs={"log_every": 50})
    assert "GRAD_NEVER_UPDATED" not in codes(run.findings), run.findings


def test_all_zero_gradient_is_still_never_updated():
    run = train(GradScaledFirst(nnx.Rngs(0), 0.0), steps=4, probe=False)
    assert where(run.findings, "GRAD_NEVER_UPDATED") == FIRST


def test_nan_gradient_is_still_nonfinite():
    run = train(GradScaledFirst(nnx.Rngs(0), float("nan")), steps=1, probe=False, locate=False)
    [nonfinite] = [f for f in run.findings if f.code == "NONFINITE"]
    assert nonfinite.where in FIRST and nonfinite.evidence["nan"]


def _reference(g: np.ndarray) -> tuple[float, float]:
    """L2 norm and mean |g| in float64 numpy, scaled by max |g| so that neither can overflow."""
    a = np.abs(np.asarray(g).astype(np.complex128 if np.iscomplexobj(g) else np.float64))
    top = a.max() if a.size else 0.0
    if top == 0:
        return 0.0, 0.0
    return float(top * np.linalg.norm(a / top)), float(top * np.mean(a / top))


SCALES = [1e20, 1e-30, 0.0, 1.0, 2e38]  # 2e38: near float32's largest value


@pytest.mark.parametrize("scale", SCALES)
def test_statistics_match_float64_numpy(scale):
    key = jax.random.key(1)
    bf16_scale = min(scale, 1e30)  # within bfloat16's range
    grads = {"g": (jax.random.uniform(key, (300,)) + 0.5) * scale,
             "bf16": ((jax.random.uniform(key, (30,)) + 0.5) * bf16_scale).astype(jnp.bfloat16),
             "other": jax.random.normal(key, (7,))}
    params = jax.tree.map(jnp.zeros_like, grads)
    tx = monitored(optax.sgd(0.1))
    _, state = jax.jit(tx.update)(grads, tx.init(params), params)
    leaves = jax.tree.leaves(grads)
    # the state is float32: a norm beyond its range (at 2e38) saturates at its maximum
    refs = np.minimum([_reference(g) for g in leaves], np.finfo(np.float32).max)
    np.testing.assert_allclose(state.l2, refs[:, 0], rtol=1e-5)
    np.testing.assert_allclose(state.mean_abs, refs[:, 1], rtol=1e-5)
    expected = [ZERO if ref == 0 else OK for ref in refs[:, 0]]
    assert np.asarray(state.status).tolist() == expected
    assert np.all(np.isfinite(state.l2))


def test_status_and_skip_come_from_the_values():
    params = {"huge": jnp.ones(4), "nan": jnp.ones(3), "inf": jnp.ones(3), "tiny": jnp.ones(3)}
    finite = {"huge": jnp.full(4, 1e20), "nan": jnp.ones(3), "inf": jnp.ones(3),
              "tiny": jnp.full(3, 1e-30)}
    tx = monitored(optax.sgd(1.0), skip_step=True)
    update = jax.jit(tx.update)
    updates, state = update(finite, tx.init(params), params)
    assert np.asarray(state.status).tolist() == [OK, OK, OK, OK]
    np.testing.assert_allclose(updates["huge"], -1e20)  # applied: not rejected as non-finite
    bad = dict(finite, nan=jnp.array([1.0, jnp.nan, jnp.inf]), inf=jnp.array([1e20, jnp.inf, 0.0]))
    updates, state = update(bad, state, params)
    assert np.asarray(state.status).tolist() == [OK, INF, NAN, OK]  # leaves sorted by name
    assert all(bool(jnp.all(u == 0)) for u in jax.tree.leaves(updates))
