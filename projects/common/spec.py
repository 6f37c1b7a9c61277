"""`ProjectSpec`: who a project is. One per project, beside its config (standard library only)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Literal

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

    Example:
        >>> SPEC = ProjectSpec("repr_gradflow", "001_bac714bd05ae718b.txt", "repr-gradflow",
        ...                    Path(__file__).with_name("claims.yaml"), "val/acc")
    """

    name: str
    document: str
    registered_model: str
    claims_file: Path
    selection_metric: str
    mode: Literal["max", "min"] = "max"

    def __post_init__(self) -> None:
        if self.mode not in ("max", "min"):
            raise ValueError(f"mode={self.mode!r} is not allowed; allowed: 'max' or 'min'")

    @property
    def greater_is_better(self) -> bool:
        return self.mode == "max"
