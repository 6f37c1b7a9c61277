"""`ProjectSpec`: who a project is. One per project, beside its config (standard library only)."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal, Mapping

from projects.common.documents import label

__all__ = ["ProjectSpec"]


@dataclass(frozen=True)
class ProjectSpec:
    """A project's identity: what its runs are tagged with and registered under.

    Args:
        name: the package under `projects/`, the `fixlab.project` tag and the default experiment.
        document: the seed document it reproduces (the `fixlab.document` tag).
        registered_model: the MLflow registered model its checkpoints go to.
        claims_file: the document's numbers and the metrics that measure them.
        selection_metric: the metric the best checkpoint and the `champion` alias are chosen by.
        mode: whether a higher (`max`) or lower (`min`) `selection_metric` is better.
        citations: what the document saw and did about the failures the plugin's codes name,
            by code; cited on this project's findings (`Finding.document`) after its label.
        baseline: what `selection_metric` must beat for the `champion` alias: a number (ROC AUC's
            chance level 0.5, or the project's floor), or the name of a metric the run logs
            (`chance/acc`, 1/n_classes, which depends on the run's data). None: no baseline is
            stated, so the champion gate refuses every run.

    Raises:
        ValueError: a `mode` or `baseline` outside what is allowed.

    Example:
        >>> SPEC = ProjectSpec("repr_gradflow", "001_bac714bd05ae718b.txt", "repr-gradflow",
        ...                    Path(__file__).with_name("claims.yaml"), "val/acc", baseline="chance/acc")
    """

    name: str
    document: str
    registered_model: str
    claims_file: Path
    selection_metric: str
    mode: Literal["max", "min"] = "max"
    baseline: float | str | None = None
    citations: Mapping[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.mode not in ("max", "min"):
            raise ValueError(f"mode={self.mode!r} is not allowed; allowed: 'max' or 'min'")
        number = isinstance(self.baseline, (int, float)) and not isinstance(self.baseline, bool)
        if not (self.baseline is None or (number and not math.isnan(self.baseline))
                or (isinstance(self.baseline, str) and self.baseline.strip())):
            raise ValueError(f"baseline={self.baseline!r} is not allowed; allowed: a number, the name of a "
                             "metric the run logs, or None")

    def baseline_value(self, metrics: Mapping[str, float | None]) -> float:
        """The value `selection_metric` must beat in a run that measured `metrics`; NaN when no
        baseline is stated or the run did not log the metric it names (the gate then refuses)."""
        if isinstance(self.baseline, str):
            value = metrics.get(self.baseline)
            return math.nan if value is None else float(value)
        return math.nan if self.baseline is None else float(self.baseline)

    @property
    def document_label(self) -> str:
        """The document by number and title, e.g. "Document 001 (Representation learning ...)"."""
        return label(self.document)

    def cited(self) -> dict[str, str]:
        """The citation of each code the document speaks of: its label, then what it says."""
        return {code: f"{self.document_label}: {text}" for code, text in self.citations.items()}

    @property
    def greater_is_better(self) -> bool:
        return self.mode == "max"
