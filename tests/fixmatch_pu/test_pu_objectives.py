"""The PU objectives against reference computations written out in numpy (du Plessis et al.'s unbiased
risk, Kiryo et al.'s non-negative correction, Topaz's GE-binomial, PN), and the config's checks."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from lightning_modules.fixmatch_pu import FixMatchPUConfig, ge_binomial_risk, pn_risk, pu_risk


def _softplus(z: np.ndarray) -> np.ndarray:
    return np.log1p(np.exp(-np.abs(z))) + np.maximum(z, 0)


def _reference(z_p: np.ndarray, z_u: np.ndarray, prior: float) -> tuple[float, float]:
    positive = prior * np.mean(_softplus(-z_p))
    negative = np.mean(_softplus(z_u)) - prior * np.mean(_softplus(z_p))
    return float(positive), float(negative)


@pytest.mark.parametrize("seed", range(4))
def test_pu_risk_matches_the_written_out_formula(seed: int) -> None:
    rng = np.random.default_rng(seed)
    z_p, z_u = rng.normal(1, 2, 16), rng.normal(-1, 2, 64)
    positive, negative = _reference(z_p, z_u, 0.3)
    upu = pu_risk(torch.tensor(z_p), torch.tensor(z_u), 0.3, non_negative=False)
    assert math.isclose(float(upu.positive), positive, rel_tol=1e-9)
    assert math.isclose(float(upu.negative), negative, rel_tol=1e-9)
    assert math.isclose(float(upu.objective), positive + negative, rel_tol=1e-9)
    nn = pu_risk(torch.tensor(z_p), torch.tensor(z_u), 0.3)
    assert math.isclose(float(nn.risk), positive + max(negative, 0.0), rel_tol=1e-9)


def test_nnpu_steps_back_up_when_the_negative_risk_goes_below_minus_beta() -> None:
    # Unlabeled patches scored very negative and positives scored very negative too: the estimated
    # negative risk E_u[l(z,-1)] - pi E_p[l(z,-1)] goes below zero, which no true risk can.
    z_p = torch.full((8,), 4.0, requires_grad=True)
    z_u = torch.full((32,), -6.0, requires_grad=True)
    risk = pu_risk(z_p, z_u, 0.5, gamma=0.5)
    assert float(risk.negative) < 0 and math.isclose(float(risk.objective), -0.5 * float(risk.negative))
    risk.objective.backward()
    # the correction descends -gamma * negative: it raises the unlabeled scores' loss as negatives
    assert float(z_u.grad.sum()) < 0
    healthy = pu_risk(torch.zeros(8), torch.zeros(32), 0.3)
    assert float(healthy.negative) > 0 and math.isclose(float(healthy.objective), float(healthy.risk))


def test_ge_binomial_is_zero_when_the_expected_share_matches_the_prior() -> None:
    prior = 0.2
    at_prior = torch.full((50,), math.log(prior / (1 - prior)))
    z_p = torch.full((10,), 3.0)
    matched = ge_binomial_risk(z_p, at_prior, prior, weight=10.0)
    assert abs(float(matched.negative)) < 1e-6
    off = ge_binomial_risk(z_p, torch.zeros(50), prior, weight=10.0)  # q = 0.5
    expected_kl = prior * math.log(prior / 0.5) + (1 - prior) * math.log((1 - prior) / 0.5)
    assert math.isclose(float(off.negative), expected_kl, rel_tol=1e-5)
    assert math.isclose(float(off.objective), float(off.positive) + 10 * expected_kl, rel_tol=1e-5)


def test_pn_weights_the_two_classes_equally() -> None:
    z_p, z_u = torch.tensor([2.0, 1.0]), torch.tensor([-1.0, 0.0, 3.0, -2.0])
    expected = 0.5 * (np.mean(_softplus(-z_p.numpy())) + np.mean(_softplus(z_u.numpy())))
    assert math.isclose(float(pn_risk(z_p, z_u).objective), float(expected), rel_tol=1e-6)


@pytest.mark.parametrize("field, value, allowed", [
    ("prior", 1.5, r"a number in \(0, 1\)"), ("prior", 0.0, r"a number in \(0, 1\)"),
    ("threshold", 1.2, r"a number in \[0, 1\]"), ("threshold", -0.1, r"a number in \[0, 1\]"),
    ("objective", "bce", "one of nnpu"), ("backbone", "vit", "one of cnn, resnet"),
    ("ema_decay", 1.0, r"a number in \[0, 1\)"), ("lr", 0, "a number > 0"), ("rampup_epochs", -1, "an integer >= 0")])
def test_config_refuses_out_of_range_values(field: str, value, allowed: str) -> None:
    with pytest.raises(ValueError, match=f"{field}={value!r} is not allowed; allowed: {allowed}"):
        FixMatchPUConfig(**{field: value})
