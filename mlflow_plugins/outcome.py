"""What happened to a run, in one vocabulary: the `fixlab.outcome` tag and its effect on health.

`finished`, `failed: <ExceptionType: first line>` or `killed: <ExceptionType: first line>` (Ctrl-C,
SIGTERM), after MLflow's run statuses FINISHED / FAILED / KILLED. A run's `fixlab.health` is the
worse of what the diagnostics saw and what its outcome says: a failed run is `critical` and a
killed one at least `warning`, so a run whose training died never reads `ok` (the report's badge
says the same). Pure functions; `run_record.record_outcome` is the one writer.
"""

from __future__ import annotations

from typing import Literal

Status = Literal["FINISHED", "FAILED", "KILLED"]
STATUSES: tuple[str, ...] = ("FINISHED", "FAILED", "KILLED")
OUTCOME_TAG = "fixlab.outcome"
HEALTH_TAG = "fixlab.health"
# The key under which the report's inputs carry the outcome (plain text, shown at the top).
OUTCOME_SECTION = OUTCOME_TAG

_WORDS = {"FINISHED": "finished", "FAILED": "failed", "KILLED": "killed"}
_HEALTH = {"finished": "ok", "failed": "critical", "killed": "warning"}
_RANK = {"ok": 0, "warning": 1, "critical": 2}
_MAX_LINE = 300  # characters of the error's line kept in the tag


def check_status(status: object) -> Status:
    """A run status, validated; lower case is accepted ("failed" is FAILED)."""
    name = status.upper() if isinstance(status, str) else status
    if name not in STATUSES:
        raise ValueError(f"status={status!r} is not a run status; allowed: {list(STATUSES)}")
    return name  # type: ignore[return-value]


def status_of(error: BaseException) -> Status:
    """How an exception ends a run: KILLED for Ctrl-C / SIGTERM (KeyboardInterrupt), FINISHED for
    a clean `sys.exit(0)`, FAILED for anything else (as `projects.common.tracking` ends runs)."""
    if isinstance(error, KeyboardInterrupt):
        return "KILLED"
    if isinstance(error, SystemExit) and error.code in (None, 0):
        return "FINISHED"
    return "FAILED"


def outcome_text(status: object, error: BaseException | str | None = None) -> str:
    """The tag's value: `finished`, or `failed: <line>` / `killed: <line>` where the line is
    `ExceptionType: first line of its message` (or the first line of a string)."""
    word = _WORDS[check_status(status)]
    line = error_line(error) if error is not None else ""
    return f"{word}: {line}" if line and word != "finished" else word


def outcome_health(outcome: str | None) -> str:
    """The health an outcome implies: `critical` (failed), `warning` (killed), else `ok`."""
    return _HEALTH.get((outcome or "").split(":", 1)[0].strip(), "ok")


def worst(*healths: str | None) -> str:
    """The worst of some health values (`ok` < `warning` < `critical`); None and unknowns are ok."""
    return max((h if h in _RANK else "ok" for h in healths), key=_RANK.__getitem__, default="ok")


def is_failure(outcome: str | None) -> bool:
    """Whether an outcome says the run did not finish (failed or killed)."""
    return outcome_health(outcome) != "ok"


def keep_first_failure(previous: str | None, new: str) -> str:
    """The outcome to keep: the first failure names the cause (a SystemExit that Lightning raises
    after a Ctrl-C is its consequence), and `finished` always replaces a failure (a run that was
    continued and then completed)."""
    return previous if is_failure(previous) and is_failure(new) else new  # type: ignore[return-value]


def error_line(error: BaseException | str) -> str:
    """`ExceptionType: first line of the message` (just the type when it has none), or the first
    line of a string; at most 300 characters."""
    if isinstance(error, BaseException):
        lines = str(error).strip().splitlines()
        text = f"{type(error).__name__}: {lines[0]}" if lines else type(error).__name__
    else:
        lines = str(error).strip().splitlines()
        text = lines[0] if lines else ""
    return text[:_MAX_LINE]
