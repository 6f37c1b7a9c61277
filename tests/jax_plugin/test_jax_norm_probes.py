"""NORM_GRAD_ATTENUATION / NORM_ERASES_MAGNITUDE in JAX: probes, their taps, and silence."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
from flax import nnx

from _jax_models import HEALTHY, Mlp, NormAfterLargeInput, Scaled, codes, data, tap_norms, train, where
from mlflow_plugins.jax import L2Normalize, NormTap, probe_norms, unprobe_norms
from mlflow_plugins.jax.norm_probes import magnitude_cv
from mlflow_plugins.jax.readout import probe_cvs

NORMS = {
    "layernorm": lambda r: Scaled(r, lambda r: nnx.LayerNorm(32, rngs=r)),
    "rmsnorm": lambda r: Scaled(r, lambda r: nnx.RMSNorm(32, rngs=r)),
    "groupnorm": lambda r: Scaled(r, lambda r: nnx.GroupNorm(32, num_groups=4, rngs=r)),
    "l2normalize": NormAfterLargeInput,
}


@pytest.mark.parametrize("kind", sorted(NORMS))
def test_attenuation_found(kind):
    run = train(NORMS[kind](nnx.Rngs(0)), steps=4)
    place = "normalize" if kind == "l2normalize" else "norm"
    assert where(run.findings, "NORM_GRAD_ATTENUATION") == {place}
    [found] = [f for f in run.findings if f.code == "NORM_GRAD_ATTENUATION"]
    assert found.evidence["grad_ratio"] < 0.01 and found.severity.value == "warning"


def test_l2_normalize_erases_spread_magnitudes():
    run = train(NormAfterLargeInput(nnx.Rngs(0)), steps=3)
    [erased] = [f for f in run.findings if f.code == "NORM_ERASES_MAGNITUDE"]
    assert erased.where == "normalize" and erased.severity.value == "info"
    assert erased.evidence["magnitude_cv_in"] > 0.2 and erased.evidence["magnitude_cv_out"] < 0.01


def test_same_magnitudes_are_not_erased():
    run = train(NormAfterLargeInput(nnx.Rngs(0)), steps=3, spread=False)
    assert "NORM_ERASES_MAGNITUDE" not in codes(run.findings)


def test_unit_scale_layernorm_passes_gradient():
    run = train(Scaled(nnx.Rngs(0), scale=1.0), steps=4)
    assert "NORM_GRAD_ATTENUATION" not in codes(run.findings)
    ratios = [ratio for ratio, _, _ in run.monitor.session.rules.states["norm_effect"]["recent"]["norm"]]
    assert all(0.1 < r < 10 for r in ratios)


def test_residual_branch_does_not_hide_attenuation():
    """The input also feeds a residual: only the gradient through the norm counts."""
    run = train(Scaled(nnx.Rngs(0), residual=1e-3), steps=3)
    assert where(run.findings, "NORM_GRAD_ATTENUATION") == {"norm"}


@pytest.mark.parametrize("name", sorted(HEALTHY))
def test_healthy_models_have_no_attenuation(name):
    run = train(HEALTHY[name](nnx.Rngs(1)), steps=6)
    assert "NORM_GRAD_ATTENUATION" not in codes(run.findings), run.findings


def test_probed_model_computes_the_same_outputs():
    x, _ = data()
    plain = Scaled(nnx.Rngs(0), lambda r: nnx.BatchNorm(32, rngs=r))
    probed = nnx.clone(plain)
    assert probe_norms(probed) == ["norm"] == probe_norms(probed)  # probing twice is harmless
    assert isinstance(probed.norm, nnx.BatchNorm) and type(probed.norm) is not nnx.BatchNorm
    np.testing.assert_array_equal(probed(x), plain(x))
    assert unprobe_norms(probed) == ["norm"] and type(probed.norm) is nnx.BatchNorm
    assert not isinstance(getattr(probed.norm, "norm_probe_grad_in", None), NormTap)


def test_taps_receive_the_cotangent_norms():
    """Reference: the gradient of the loss at the norm's output and, through the norm alone,
    at its input, computed on the unprobed model."""
    x, y = data()
    plain = Scaled(nnx.Rngs(0), residual=0.5)
    probed = nnx.clone(plain)
    probe_norms(probed)

    def loss_at_output(z):
        return optax.softmax_cross_entropy_with_integer_labels(
            plain.head(z + plain.residual * h), y).mean()

    h = plain.encoder(x)
    g_out = jax.jit(jax.grad(loss_at_output))(plain.norm(h))
    g_in = jax.jit(jax.grad(lambda u: loss_at_output(plain.norm(u))))(h)
    grad_in, grad_out = tap_norms(probed, x, y)
    np.testing.assert_allclose(grad_out, jnp.linalg.norm(g_out), rtol=1e-5)
    np.testing.assert_allclose(grad_in, jnp.linalg.norm(g_in), rtol=1e-5)


def test_probes_run_on_sampled_steps_only():
    """Between samples the taps are disarmed (0): no probe values, no tap gradients."""
    run = train(Scaled(nnx.Rngs(0)), steps=2, monitor_kwargs={"log_every": 3})
    assert float(run.params["norm"]["norm_probe_grad_in"][...]) == 0.0
    np.testing.assert_array_equal(run.opt_state.taps, np.zeros(2))
    run = train(Scaled(nnx.Rngs(0)), steps=3, monitor_kwargs={"log_every": 3})
    assert float(run.params["norm"]["norm_probe_grad_in"][...]) == 1.0  # armed for step 3


def test_intermediates_through_nnx_capture():
    model = Mlp(nnx.Rngs(0))
    probe_norms(model)
    _, intermediates = nnx.capture(model, nnx.Intermediate)(data()[0])
    [(module, cv)] = probe_cvs(intermediates).items()
    assert module == "norm" and cv.shape == (2,) and float(cv[0]) > float(cv[1])


def test_magnitude_cv_reference():
    x = jnp.array([[3.0, 4.0], [6.0, 8.0]])  # magnitudes 5 and 10
    np.testing.assert_allclose(magnitude_cv(x, (1,)), np.std([5.0, 10.0], ddof=1) / 7.5, rtol=1e-6)


def test_probe_norms_rejects_bad_arguments():
    with pytest.raises(ValueError, match="model=str is not a flax.nnx.Module"):
        probe_norms("model")
    with pytest.raises(ValueError, match="types=.*must be nnx.Module subclasses"):
        probe_norms(Mlp(nnx.Rngs(0)), types=(int,))
    custom = nnx.Sequential(nnx.Linear(4, 4, rngs=nnx.Rngs(0)), L2Normalize())
    assert probe_norms(custom, types=(L2Normalize,)) == ["layers.1"]
