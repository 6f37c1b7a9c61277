"""The run's description on its MLflow page (`mlflow.note.content`): health at a glance.

A few lines of markdown: the health, one line per finding code (worst first) with what was seen,
the lines a project adds (claim verdicts), and where the full report is. fixlab writes it only
on a run whose description is empty or was written by fixlab (it ends with `MARK`): a user's own
description is never replaced.
"""

from __future__ import annotations

from typing import Mapping, Sequence

from ..findings import Finding, Severity

__all__ = ["NOTE_TAG", "MARK", "run_note", "ours"]

NOTE_TAG = "mlflow.note.content"
MARK = "<!-- written by fixlab -->"
_RANK = {Severity.CRITICAL: 0, Severity.WARNING: 1, Severity.INFO: 2}


def run_note(health: str, findings: Sequence[Finding], *, outcome: str | None = None,
             lines: Sequence[str] = (), report: str = "fixlab/report.html",
             places_shown: int = 3) -> str:
    """The markdown description of a run with this health, these findings and outcome.

    Args:
        lines: more markdown lines (a project's claim verdicts), shown after the findings.
        report: the artifact path of the full report, named at the end.
    """
    out = [f"**fixlab health: {health}**"]
    if outcome and outcome != "finished":
        out.append(f"Outcome: {outcome}")
    by_code: dict[str, list[Finding]] = {}
    for f in sorted(findings, key=lambda f: (_RANK[f.severity], f.step, f.code, f.where)):
        by_code.setdefault(f.code, []).append(f)
    if by_code:
        out.append("")
    for code, group in by_code.items():
        names = ", ".join(f"`{f.where}`" for f in group[:places_shown])
        more = f" and {len(group) - places_shown} more" if len(group) > places_shown else ""
        cited = f" Reproduces {group[0].document.split(':')[0]}." if group[0].document else ""
        out.append(f"- **{code}** ({group[0].severity.value}) at {names}{more}: {group[0].message}.{cited}")
    if not by_code:
        out.append("No findings: gradients, non-finite checks and normalizations looked healthy.")
    if lines:
        out += ["", *lines]
    out += ["", f"Full report: artifact `{report}` (Artifacts tab). {MARK}"]
    return "\n".join(out)


def ours(tags: Mapping[str, str]) -> bool:
    """Whether fixlab may write the run's description: it is empty or fixlab's own."""
    current = tags.get(NOTE_TAG, "")
    return not current.strip() or current.rstrip().endswith(MARK)
