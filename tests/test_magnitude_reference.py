"""The magnitude spread of NORM_ERASES_MAGNITUDE: torch and JAX against one numpy reference.

Both adapters compute the coefficient of variation of per-token (or per-sample) magnitudes: the
L2 norm of |x| over the normalized axes, then std with ddof=1 (torch's `std()` default, JAX's
explicit `ddof=1`) over the mean. On the same data they must agree with numpy and each other.
"""

from __future__ import annotations

import jax.numpy as jnp
import numpy as np
import pytest
import torch

from mlflow_plugins.jax.norm_probes import magnitude_cv as jax_magnitude_cv
from mlflow_plugins.pytorch.norm_probes import magnitude_cv as torch_magnitude_cv


def reference_cv(x: np.ndarray, axes: tuple[int, ...]) -> float:
    """Independent float64 computation: |x| per element, L2 over `axes`, std (ddof=1) / mean."""
    mags = np.sqrt(np.sum(np.abs(x.astype(np.complex128)) ** 2, axis=axes)).ravel()
    return float(np.std(mags, ddof=1) / np.mean(mags))


def _tokens(dtype: str, shape: tuple[int, ...], seed: int = 0) -> np.ndarray:
    """Random tokens whose magnitudes spread over ~15x along the first axis."""
    rng = np.random.default_rng(seed)
    spread = np.linspace(0.2, 3.0, shape[0]).reshape((-1,) + (1,) * (len(shape) - 1))
    x = rng.standard_normal(shape)
    if dtype == "complex64":
        x = x + 1j * rng.standard_normal(shape)
    return (x * spread).astype(dtype)


CASES = [  # (dtype, shape, axes): tokens (last axis), sample-wise (all but the batch axis)
    ("float32", (16, 8), (1,)),
    ("float32", (6, 5, 8), (2,)),
    ("float32", (6, 5, 8), (1, 2)),
    ("complex64", (16, 8), (1,)),
    ("complex64", (6, 5, 8), (2,)),
    ("complex64", (6, 5, 8), (1, 2)),
]


@pytest.mark.parametrize("dtype,shape,axes", CASES, ids=[f"{d}-{s}-{a}" for d, s, a in CASES])
def test_torch_and_jax_magnitude_cv_match_numpy(dtype, shape, axes):
    x = _tokens(dtype, shape)
    expected = reference_cv(x, axes)
    assert expected > 0.2  # spread enough to matter to NORM_ERASES_MAGNITUDE
    got_torch = float(torch_magnitude_cv(torch.from_numpy(x), axes))
    got_jax = float(jax_magnitude_cv(jnp.asarray(x), axes))
    np.testing.assert_allclose([got_torch, got_jax], expected, rtol=1e-5)


def test_complex_magnitudes_are_not_their_real_parts():
    """Purely imaginary tokens have the magnitudes of their imaginary parts, not zero."""
    x = (1j * _tokens("float32", (16, 8))).astype(np.complex64)
    expected = reference_cv(x.imag, (1,))
    np.testing.assert_allclose([float(torch_magnitude_cv(torch.from_numpy(x), (1,))),
                                float(jax_magnitude_cv(jnp.asarray(x), (1,)))], expected, rtol=1e-5)


def test_equal_magnitudes_have_zero_spread():
    x = np.exp(1j * np.linspace(0, 6, 32)).reshape(8, 4).astype(np.complex64)  # every |z| = 1
    assert float(torch_magnitude_cv(torch.from_numpy(x), (1,))) < 1e-6
    assert float(jax_magnitude_cv(jnp.asarray(x), (1,))) < 1e-6
