"""Document 004's monitoring targets as fixlab rules, recorded like the built-in findings.

The note's "Key metrics to monitor" are quantities only this project computes (pseudo-label usage,
the spread of predictions, the prior the data imply), so they are rules over the metrics the
module logs each epoch, passed to the fixlab callbacks with `rules=`:

- `PSEUDO_LABELS_UNUSED`: fewer than 20 % of unlabeled patches pass the confidence threshold (the
  note's target: usage > 20 %) for 3 epochs in a row while the predictions are spread (std >= 0.1,
  the note's collapse bound): the teacher has something to say, and the threshold discards it. While
  the predictions are still bunched, low usage is the model's state, not the threshold's fault,
  and `PREDICTIONS_COLLAPSED` is the finding that speaks.
- `PREDICTIONS_COLLAPSED`: the validation predictions' standard deviation below 0.1 for 5 epochs
  in a row, a tenth of the note's 50 (the note: "should be > 0.1 (not collapsed)"). A slow start
  counts too: the finding's steps say which epochs.
- `PU_PRIOR_MISMATCH`: the configured prior more than 25 % away from the one the data imply (the
  note's 0.3 against 0.197 is 52 % away). 25 %: nnPU's authors report the risk estimate staying
  useful for a prior misspecified by up to about 20 % (Kiryo et al. 2017); beyond that it is biased.
"""

from __future__ import annotations

from typing import Any

from mlflow_plugins import MetricValue, Rule
from mlflow_plugins.findings import Finding

__all__ = ["USAGE_TARGET", "SPREAD_TARGET", "PseudoLabelsUnused", "document_rules"]

USAGE_TARGET = 0.2   # the note: "Pseudo-label usage rate: should be > 20 %"
SPREAD_TARGET = 0.1  # the note: "Prediction std: should be > 0.1 (not collapsed)"
USAGE, SPREAD = "train/pseudo_label_rate", "val/pred_std"


class PseudoLabelsUnused(Rule):
    """A warning when pseudo-label usage stays below `target` for `epochs` epochs in a row in which
    the validation predictions are spread (std >= `spread`).

    Args:
        threshold: the run's confidence threshold, quoted in the finding.
        target / spread / epochs: the bounds and the window.
    """

    accepts = (MetricValue,)
    reads = (USAGE, SPREAD)
    per = "epoch"
    name = "pseudo_labels_unused"

    def __init__(self, threshold: float, *, target: float = USAGE_TARGET, spread: float = SPREAD_TARGET,
                 epochs: int = 3) -> None:
        self.threshold, self.target, self.spread, self.epochs = float(threshold), target, spread, epochs

    def init(self) -> dict[str, Any]:
        # epoch/step/seen: the epoch being judged, its first step and its values; before/since: the
        # bad epochs in a row before it and the step that run started at
        return {"epoch": None, "step": None, "seen": {}, "before": 0, "since": None, "reported": False}

    def update(self, value: MetricValue, state: dict[str, Any]) -> tuple[list[Finding], dict[str, Any]]:
        if value.name not in self.reads or value.epoch is None or state["reported"]:
            return [], state
        if value.epoch != state["epoch"]:  # the previous epoch is over: extend or break the run
            bad = bool(self._bad(state["seen"]))
            state = {**state, "epoch": value.epoch, "step": value.step, "seen": {},
                     "before": state["before"] + 1 if bad else 0,
                     "since": (state["since"] if state["before"] else state["step"]) if bad else None}
        seen = {**state["seen"], value.name: float(value.value)}
        state = {**state, "seen": seen}
        if not self._bad(seen) or state["before"] + 1 < self.epochs:
            return [], state
        usage, spread = seen[USAGE], seen[SPREAD]
        start = state["since"] if state["before"] else state["step"]
        said = (f"{USAGE} = {usage:.3g} (< {self.target:g}) at threshold {self.threshold:g} for {self.epochs} epochs "
                f"in a row while {SPREAD} = {spread:.3g} (>= {self.spread:g}): the threshold discards the teacher's "
                "labels")
        evidence = {"usage_rate": usage, "pred_std": spread, "threshold": self.threshold, "target": self.target,
                    "epochs": self.epochs, "epoch": value.epoch}
        hint = f"lower the confidence threshold until more than {self.target:.0%} of unlabeled patches are used"
        finding = Finding("PSEUDO_LABELS_UNUSED", "warning", int(start), USAGE, evidence, hint, said)
        return [finding], {**state, "reported": True}

    def _bad(self, seen: dict[str, float]) -> bool:
        """Whether an epoch's values break the target (False until both are known)."""
        return USAGE in seen and SPREAD in seen and seen[USAGE] < self.target and seen[SPREAD] >= self.spread


def document_rules(threshold: float) -> list[Rule]:
    """The three rules of document 004 for a run at confidence `threshold`."""
    return [
        PseudoLabelsUnused(threshold),
        Rule.metric(SPREAD, below=SPREAD_TARGET, for_epochs=5, code="PREDICTIONS_COLLAPSED",
                    hint="predictions have not spread: check that a supervised baseline learns on the labels, then "
                         "the learning rate and the data's normalization"),
        Rule.metric("pu/prior_configured", relative_to="pu/prior_estimated", below=0.8, above=1.25, for_epochs=1,
                    code="PU_PRIOR_MISMATCH",
                    hint="set the PU prior to the share of particles among unlabeled patches the data imply"),
    ]
