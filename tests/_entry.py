"""Entry scripts called in-process, as `mlflow run` would call them but without a new interpreter
per case: argument checks are pure Python, so one subprocess test per script is enough."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Sequence

import pytest


@dataclass(frozen=True)
class Result:
    returncode: int
    stdout: str
    stderr: str


def run_main(main: Callable[[Sequence[str]], int], args: Sequence[str], store: Path,
             monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture) -> Result:
    """`main(args)` with the tracking URI at `store` and the cache beside it; its exit code and output."""
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{store}")
    monkeypatch.setenv("FIXLAB_CACHE", str(store.parent / "cache"))
    monkeypatch.delenv("MLFLOW_RUN_ID", raising=False)
    capsys.readouterr()
    try:
        code = main(list(args))
    except SystemExit as exit_:  # argparse's own exits (e.g. --help)
        code = int(exit_.code or 0)
    out = capsys.readouterr()
    return Result(code, out.out, out.err)


def assert_rejected(result: Result, name: str, expected: str, store: Path) -> None:
    """A rejected parameter: exit code 2, one line on stderr naming it and what is allowed, and no
    tracking store touched (so no run, let alone one left RUNNING)."""
    lines = result.stderr.strip().splitlines()
    assert result.returncode == 2, result.stderr
    assert len(lines) == 1 and f"{name}=" in lines[0] and expected in lines[0], lines
    assert not store.exists()
