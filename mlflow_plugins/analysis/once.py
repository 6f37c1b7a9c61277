"""Report each finding once per place: a detector's memory of what it already said."""

from __future__ import annotations

from typing import Any, Iterable

from ..findings import Finding, Severity


class ReportOnce:
    """Makes findings, dropping any whose (code, where) was reported before."""

    def __init__(self, reported: Iterable[tuple[str, str]] = ()) -> None:
        self.reported: set[tuple[str, str]] = {tuple(k) for k in reported}  # type: ignore[misc]

    def __call__(self, code: str, step: int, where: str, evidence: dict[str, Any],
                 severity: Severity | None = None) -> list[Finding]:
        if (code, where) in self.reported:
            return []
        self.reported.add((code, where))
        return [Finding.of(code, step, where, evidence, severity)]

    def state(self) -> list[list[str]]:
        return [list(k) for k in sorted(self.reported)]
