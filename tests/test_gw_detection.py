"""Detection statistics on scores whose answers are known."""

from __future__ import annotations

import numpy as np
import pytest

from projects.cpc_snn_gw.detection import (
    efficiency_vs_snr,
    roc_auc,
    roc_curve,
    snr_at_efficiency,
    threshold_at_far,
    tpr_at_far,
)


def brute_force_auc(scores, labels):
    pos, neg = scores[labels == 1], scores[labels == 0]
    diff = pos[:, None] - neg[None, :]
    return float(np.mean((diff > 0) + 0.5 * (diff == 0)))


def test_auc_matches_pair_counting_with_ties():
    rng = np.random.default_rng(0)
    labels = np.r_[np.zeros(300, int), np.ones(200, int)]
    scores = np.round(rng.normal(size=500) + labels, 1)   # rounding makes ties
    assert roc_auc(scores, labels) == pytest.approx(brute_force_auc(scores, labels), abs=1e-12)
    assert roc_auc(labels.astype(float), labels) == 1.0
    assert roc_auc(-labels.astype(float), labels) == 0.0
    assert roc_auc(np.zeros(500), labels) == 0.5


def test_roc_curve_ends_and_area():
    rng = np.random.default_rng(1)
    labels = rng.integers(0, 2, 400)
    scores = rng.normal(size=400) + labels
    far, tpr = roc_curve(scores, labels)
    assert (far[0], tpr[0], far[-1], tpr[-1]) == (0.0, 0.0, 1.0, 1.0)
    assert np.all(np.diff(far) >= 0) and np.all(np.diff(tpr) >= 0)
    assert np.trapezoid(tpr, far) == pytest.approx(roc_auc(scores, labels), abs=1e-12)


def test_threshold_and_tpr_at_far():
    noise = np.arange(1000, dtype=float)          # 0 .. 999
    assert threshold_at_far(noise, 1e-2) == 989.0   # 10 noise scores (990..999) lie above
    assert np.mean(noise > threshold_at_far(noise, 1e-2)) == pytest.approx(1e-2)
    scores = np.r_[noise, [995.0, 500.0, 1e6, 989.0]]
    labels = np.r_[np.zeros(1000, int), np.ones(4, int)]
    assert tpr_at_far(scores, labels, 1e-2) == (0.5, True)
    assert tpr_at_far(scores, labels, 1e-4) == (0.25, False)   # 1000 noise examples cannot resolve 1e-4


def test_efficiency_per_snr_bin():
    labels = np.r_[np.zeros(100, int), np.ones(6, int)]
    scores = np.r_[np.linspace(0, 1, 100), [0.0, 0.0, 5.0, 0.0, 5.0, 5.0]]
    snr = np.r_[np.full(100, np.nan), [5, 6, 7, 12, 13, 14]]
    threshold = threshold_at_far(scores[labels == 0], 0.05)
    curve = efficiency_vs_snr(scores, labels, snr, threshold, np.array([4.0, 10.0, 16.0, 20.0]), "5 %")
    np.testing.assert_array_equal(curve.counts, [3, 3, 0])
    np.testing.assert_allclose(curve.efficiency[:2], [1 / 3, 2 / 3])
    assert np.isnan(curve.efficiency[2])


@pytest.mark.parametrize("scores, labels, match", [
    (np.zeros(3), np.array([0, 1]), "one length"),
    (np.zeros(2), np.array([0, 2]), "other than 0 and 1"),
    (np.zeros(2), np.array([1, 1]), "one class only"),
])
def test_bad_inputs_name_the_problem(scores, labels, match):
    with pytest.raises(ValueError, match=match):
        roc_auc(scores, labels)
    with pytest.raises(ValueError, match="far=2"):
        threshold_at_far(np.zeros(3), 2)


def test_snr_at_half_efficiency_recovers_a_known_logistic_curve():
    rng = np.random.default_rng(0)
    snr = rng.uniform(5, 15, 4000)
    detected = rng.random(4000) < 1 / (1 + np.exp(-1.5 * (snr - 9.0)))
    scores = np.concatenate([detected.astype(float), np.zeros(4000)])
    labels = np.concatenate([np.ones(4000, int), np.zeros(4000, int)])
    snrs = np.concatenate([snr, np.full(4000, np.nan)])
    assert snr_at_efficiency(scores, labels, snrs, 0.5) == pytest.approx(9.0, abs=0.15)
    assert snr_at_efficiency(scores, labels, snrs, 0.5, target=0.9) == pytest.approx(9.0 + np.log(9) / 1.5, abs=0.25)
    everything = np.concatenate([np.ones(4000), np.zeros(4000)])
    assert np.isnan(snr_at_efficiency(everything, labels, snrs, 0.5))  # no crossing to measure
    with pytest.raises(ValueError, match="target=1.2 is not allowed"):
        snr_at_efficiency(scores, labels, snrs, 0.5, target=1.2)


def test_the_networks_share_of_the_matched_filter():
    from projects.cpc_snn_gw.data import Windows
    from projects.cpc_snn_gw.experiment import far_label
    from projects.cpc_snn_gw.reference import reference_metrics

    rng = np.random.default_rng(1)
    n = 400
    y = np.repeat([0, 1], n).astype(np.int32)
    snr = np.where(y == 1, rng.uniform(2, 25, 2 * n), np.nan).astype(np.float32)
    noise = rng.normal(size=2 * n) * 3.0  # the same draws: both detectors get one threshold, about 7
    optimal = np.where(y == 1, snr, 0) + noise       # the filter: half the injections found near SNR 7
    network = np.where(y == 1, snr / 2, 0) + noise   # half its sensitivity: near 14
    test = Windows(np.zeros((2 * n, 2, 4), np.float32), y, snr)
    metrics = reference_metrics(network, optimal, test, (1e-2, 1e-3), far_label)
    network_tpr, _ = tpr_at_far(network, y, 1e-2)
    assert metrics["vs_mf/tpr_ratio_far_1e-2"] == pytest.approx(network_tpr / metrics["mf/tpr_at_far_1e-2"])
    assert metrics["mf/snr50_far_1e-2"] == pytest.approx(7.0, abs=0.7)
    assert metrics["vs_mf/distance_ratio_far_1e-2"] == pytest.approx(0.5, abs=0.07)  # half the SNR scale
    assert np.isnan(metrics["mf/tpr_at_far_1e-3"])  # 400 noise windows cannot resolve 1e-3
