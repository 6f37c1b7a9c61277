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

import math

from mlflow_plugins import MetricValue, Rule
from mlflow_plugins.analysis import MetricRule
from mlflow_plugins.findings import Finding

__all__ = ["USAGE_TARGET", "SPREAD_TARGET", "PseudoLabelsUnused", "document_rules"]

USAGE_TARGET = 0.2   # the note: "Pseudo-label usage rate: should be > 20 %"
SPREAD_TARGET = 0.1  # the note: "Prediction std: should be > 0.1 (not collapsed)"
USAGE, SPREAD = "train/pseudo_label_rate", "val/pred_std"


class PseudoLabelsUnused(MetricRule):
    """A warning when pseudo-label usage stays below `target` for `epochs` epochs in a row in which
    the validation predictions are spread (std >= `spread`): a `Rule.metric` on the usage whose
    epochs count only while the spread holds.

    Args:
        threshold: the run's confidence threshold, quoted in the finding.
        target / spread / epochs: the bounds and the window.
    """

    def __init__(self, threshold: float, *, target: float = USAGE_TARGET, spread: float = SPREAD_TARGET,
                 epochs: int = 3) -> None:
        super().__init__(USAGE, code="PSEUDO_LABELS_UNUSED", below=target, for_epochs=epochs,
                         hint=f"lower the confidence threshold until more than {target:.0%} of unlabeled "
                              "patches are used", name="pseudo_labels_unused")
        self.reads = (USAGE, SPREAD)
        self.threshold, self.spread = float(threshold), spread

    def judged(self, seen: dict[str, float]) -> float:
        """The usage of an epoch whose predictions are spread; NaN (not judged) otherwise."""
        return seen.get(USAGE, math.nan) if seen.get(SPREAD, -math.inf) >= self.spread else math.nan

    def finding(self, judged: float, seen: dict[str, float], start: int, last: MetricValue) -> Finding:
        said = (f"{USAGE} = {judged:.3g} (< {self.below:g}) at threshold {self.threshold:g} for {self.count} epochs "
                f"in a row while {SPREAD} = {seen[SPREAD]:.3g} (>= {self.spread:g}): the threshold discards the "
                "teacher's labels")
        evidence = {"usage_rate": judged, "pred_std": seen[SPREAD], "threshold": self.threshold,
                    "target": self.below, "epochs": self.count, "epoch": last.epoch}
        return Finding(self.code, self.severity, start, USAGE, evidence, self.hint, said)


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
