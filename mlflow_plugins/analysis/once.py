"""Report each finding once per place: a rule's memory of what it already said, as a value."""

from __future__ import annotations

from typing import Any

from ..findings import Finding, Severity

Reported = frozenset  # of (code, where)


def report_once(reported: Reported, code: str, step: int, where: str, evidence: dict[str, Any],
                severity: Severity | None = None, message: str = "") -> tuple[list[Finding], Reported]:
    """The catalog finding for `code` at `where`, unless it was reported before; and the memory."""
    if (code, where) in reported:
        return [], reported
    return [Finding.of(code, step, where, evidence, severity, message)], reported | {(code, where)}
