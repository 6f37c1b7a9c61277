"""What a comparison's parent run does with its children: collect each configuration's results over
seeds (`Cell`), sum them up (mean and spread, the median epoch to a target), write the table as
markdown and HTML, say how healthy the children were, and close the parent (`finish_comparison`)."""

from __future__ import annotations

import html
import math
import statistics
from dataclasses import dataclass, field
from typing import Any, Mapping, Sequence

import mlflow

from mlflow_plugins.registry import RegistrationResult
from projects.common.entry import RunSummary
from projects.common.run import ProjectRun, finish_run
from projects.common.tracking import set_tags_now

__all__ = ["CHILDREN_HEALTH_TAG", "refuse_resume", "Cell", "Table", "summarize", "median_epochs", "child_health", "children_health",
           "markdown_table", "html_table", "finish_comparison"]

CHILDREN_HEALTH_TAG = "fixlab.children_health"


@dataclass
class Cell:
    """One configuration's children: their metrics, per-epoch validation curves and health."""

    values: dict[str, list[float]] = field(default_factory=dict)
    curves: list[list[float]] = field(default_factory=list)
    health: list[str] = field(default_factory=list)
    codes: set[str] = field(default_factory=set)  # the children's warning and critical codes

    def add(self, metrics: Mapping[str, float | None], run_id: str, curve: Sequence[float] = ()) -> None:
        """One child's measured metrics, validation curve and (from its tags) health."""
        for key, value in metrics.items():
            if value is not None:
                self.values.setdefault(key, []).append(float(value))
        self.curves.append(list(curve))
        health, codes = child_health(run_id)
        self.health.append(health)
        self.codes.update(c for c in codes.split(",") if c and c != "none")

    def summary(self, key: str) -> tuple[float, float]:
        """Mean and spread over the children of `key` (NaN when none measured it)."""
        return summarize(self.values.get(key, []))


@dataclass
class Table:
    """A comparison's result: metrics for the parent, the table in two formats, its figure."""

    title: str
    metrics: dict[str, float]
    markdown: str
    html: str
    figure: Any
    headline: list[str]
    cells: list[Cell]


def refuse_resume(entry_point: str, resume: str | None) -> None:
    """A comparison cannot be continued: its children are not checkpointed together.

    Raises:
        ValueError: `resume` is given.
    """
    if resume:
        raise ValueError(f"resume={resume!r} is not allowed for {entry_point}: a comparison's children are "
                         "not checkpointed together; start it again")


def summarize(values: Sequence[float]) -> tuple[float, float]:
    """Mean and sample standard deviation (0 for one value; NaN mean for none)."""
    mean = statistics.fmean(values) if values else math.nan
    return mean, statistics.stdev(values) if len(values) > 1 else 0.0


def median_epochs(values: Sequence[float]) -> float:
    """The median over seeds of the epochs to a target, a seed that never reached it (NaN) counting
    as later than every seed that did; NaN when the median itself is such a seed."""
    middle = statistics.median([math.inf if math.isnan(v) else v for v in values]) if values else math.inf
    return middle if math.isfinite(middle) else math.nan


def child_health(run_id: str) -> tuple[str, str]:
    """A finished child's `fixlab.health` and `fixlab.findings` tags."""
    tags = mlflow.MlflowClient().get_run(run_id).data.tags
    return tags.get("fixlab.health", "unknown"), tags.get("fixlab.findings", "")


def children_health(cells: Sequence[Cell]) -> str:
    """"15 children: 5 ok, 1 warning, 9 critical (GRAD_NEVER_UPDATED)": the parent's summary of its
    children's health (`fixlab.children_health`), so a healthy parent does not hide sick children."""
    health = [h for cell in cells for h in cell.health]
    codes = sorted({c for cell in cells for c in cell.codes})
    counts = ", ".join(f"{health.count(h)} {h}" for h in ("ok", "warning", "critical", "unknown") if h in health)
    return f"{len(health)} children: {counts}" + (f" ({', '.join(codes)})" if codes else "")


def _text(value: Any) -> str:
    if value is None:
        return "n/a"
    if isinstance(value, bool):
        return str(value)
    if isinstance(value, float) or type(value).__name__.startswith("float"):
        return f"{float(value):.4g}"
    return str(value)


def markdown_table(rows: Sequence[Mapping[str, Any]], columns: Sequence[str]) -> str:
    """A markdown table of `rows` restricted to `columns`: floats to 4 significant digits, None or a
    missing key as "n/a".

    Raises:
        ValueError: `columns` is empty.
    """
    if not columns:
        raise ValueError("columns is empty; name at least one column")

    def cell(value: Any) -> str:
        return _text(value).replace("|", "\\|").replace("\n", " ")

    lines = ["| " + " | ".join(cell(c) for c in columns) + " |", "|" + "|".join("---" for _ in columns) + "|"]
    lines += ["| " + " | ".join(cell(row.get(c)) for c in columns) + " |" for row in rows]
    return "\n".join(lines) + "\n"


def html_table(rows: Sequence[Mapping[str, Any]], columns: Sequence[str]) -> str:
    """The same table as HTML, for a report section."""
    head = "".join(f"<th>{html.escape(c)}</th>" for c in columns)
    body = "".join("<tr>" + "".join(f"<td>{html.escape(_text(r.get(c)))}</td>" for c in columns) + "</tr>"
                   for r in rows)
    return f"<table><tr>{head}</tr>{body}</table>"


def finish_comparison(parent: ProjectRun, table: Table, artifact: str) -> RunSummary:
    """Log the table (`tables/<artifact>.md`, a report section, metrics), its figure
    (`figures/<artifact>.png`) and the children's health on the parent, and close it: a comparison
    registers no model."""
    parent.log_metrics(table.metrics)
    summary = children_health(table.cells)
    set_tags_now(parent.run_id, {CHILDREN_HEALTH_TAG: summary})
    client = mlflow.MlflowClient()
    client.log_text(parent.run_id, table.markdown, f"tables/{artifact}.md")
    client.log_figure(parent.run_id, table.figure, f"figures/{artifact}.png")
    spec = parent.spec

    def no_model(health: str) -> RegistrationResult:
        return RegistrationResult(spec.registered_model, None, False,
                                  "a comparison registers no model: its children are compared in the table")

    return finish_run(parent, findings=[], metrics=table.metrics, register=no_model,
                      sections={table.title: table.html}, headline=[*table.headline, summary])
