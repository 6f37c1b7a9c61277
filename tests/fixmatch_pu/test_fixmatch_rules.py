"""Document 004's rules: PSEUDO_LABELS_UNUSED (usage below 20 % while predictions are spread),
PREDICTIONS_COLLAPSED and PU_PRIOR_MISMATCH, on planted sequences of epoch metrics, the healthy
sequences that must stay quiet, and a checkpoint of their states in the middle."""

from __future__ import annotations

import json

import pytest

from mlflow_plugins import MetricValue, RuleSet
from projects.fixmatch_pu.rules import PseudoLabelsUnused, document_rules


def _epochs(rows: list[dict[str, float]]) -> list[MetricValue]:
    """Each epoch's metrics in name order, as the Lightning callback hands them over."""
    return [MetricValue(name, value, step=10 * (epoch + 1), epoch=epoch)
            for epoch, row in enumerate(rows) for name, value in sorted(row.items())]


def _codes(rows: list[dict[str, float]], threshold: float = 0.95) -> dict[str, int]:
    rules = RuleSet(document_rules(threshold))
    found = [f for value in _epochs(rows) for f in rules.observe(value)]
    return {f.code: f.step for f in found}


PRIORS = {"pu/prior_configured": 0.19, "pu/prior_estimated": 0.187}


def _row(usage: float, spread: float, **extra: float) -> dict[str, float]:
    return {"train/pseudo_label_rate": usage, "val/pred_std": spread, **PRIORS, **extra}


def test_unused_pseudo_labels_while_predictions_are_spread_are_flagged_after_three_epochs() -> None:
    rows = [_row(0.0, 0.01), _row(0.0, 0.2), _row(0.0, 0.25), _row(0.0, 0.3), _row(0.5, 0.3)]
    assert _codes(rows) == {"PSEUDO_LABELS_UNUSED": 20}  # epochs 2-4 (steps 20-40); epoch 1 was bunched


def test_low_usage_while_predictions_are_bunched_is_the_collapse_finding_not_the_thresholds() -> None:
    rows = [_row(0.0, 0.01) for _ in range(6)]
    assert _codes(rows) == {"PREDICTIONS_COLLAPSED": 10}


@pytest.mark.parametrize("rows", [
    [_row(0.0, 0.01), _row(0.0, 0.05), _row(0.3, 0.2), _row(0.8, 0.3), _row(0.8, 0.3), _row(0.8, 0.3)],
    [_row(0.1, 0.2), _row(0.1, 0.2), _row(0.5, 0.2), _row(0.1, 0.2), _row(0.1, 0.2), _row(0.9, 0.2)],
], ids=["a debugged run's start", "never three low epochs in a row"])
def test_healthy_runs_give_no_finding(rows) -> None:
    assert _codes(rows) == {}


def test_a_prior_far_from_the_datas_is_flagged_at_once() -> None:
    rows = [{**_row(0.5, 0.3), "pu/prior_configured": 0.3}]
    assert _codes(rows) == {"PU_PRIOR_MISMATCH": 10}
    assert _codes([{**_row(0.5, 0.3), "pu/prior_configured": 0.2}]) == {}  # 7 % off: within 25 %


def test_the_rules_resume_from_their_checkpointed_states() -> None:
    rows = [_row(0.0, 0.2), _row(0.0, 0.2), _row(0.0, 0.2)]
    values = _epochs(rows)
    whole = RuleSet(document_rules(0.95))
    expected = [f.to_dict() for v in values for f in whole.observe(v)]
    first = RuleSet(document_rules(0.95))
    for v in values[:6]:
        first.observe(v)
    resumed = RuleSet(document_rules(0.95))
    resumed.load_state_dict(json.loads(json.dumps(first.state_dict())))
    assert [f.to_dict() for v in values[6:] for f in resumed.observe(v)] == expected


def test_the_finding_quotes_the_threshold_and_the_fix() -> None:
    rule = PseudoLabelsUnused(0.95)
    state, found = rule.init(), []
    for value in _epochs([_row(0.0, 0.2)] * 3):
        new, state = rule.update(value, state)
        found += new
    (finding,) = found
    assert finding.evidence["threshold"] == 0.95 and finding.evidence["usage_rate"] == 0.0
    assert "lower the confidence threshold" in finding.hint and "threshold 0.95" in finding.message
