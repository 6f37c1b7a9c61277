"""The ``fixlab`` command: ``claims`` in every format, errors, ``--version``, the console script."""

from __future__ import annotations

import csv
import io
import json
import os
import shutil
import subprocess
import sys

import mlflow
import pytest

from mlflow_plugins.claims import Claim, evaluate, log_claims
from mlflow_plugins.cli import SUBCOMMANDS, main

BEFORE = Claim("accuracy_before", "repr_broken", "Accuracy: ~2%", "~2%", "test/acc",
               low=None, high=0.05, document="001.txt")
AFTER = Claim("accuracy_after", "repr_fixed", "Accuracy: 15-40%", "15-40%", "test/acc",
              low=0.15, high=None, document="001.txt")


@pytest.fixture(scope="module")
def tracking(module_store):
    """Experiment "repr": a broken and a fixed run with claim verdicts; "empty": none."""
    mlflow.set_experiment("repr")
    with mlflow.start_run(run_name="broken", tags={"fixlab.variant": "repr_broken"}):
        log_claims(evaluate([BEFORE], {"test/acc": 0.0213}))
    with mlflow.start_run(run_name="fixed", tags={"fixlab.variant": "repr_fixed"}):
        log_claims(evaluate([AFTER], {"test/acc": 0.31}))
    mlflow.set_experiment("empty")
    return module_store


def test_claims_table(tracking, capsys):
    assert main(["claims", "--experiment", "repr", "--tracking-uri", tracking]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].split("  ")[0] == "run"
    assert [h.strip() for h in lines[0].split("  ") if h.strip()] == [
        "run", "variant", "claim", "document figure", "expected", "measured", "verdict"]
    assert set(lines[1]) <= {"-", " "}
    assert lines[2].split() == ["broken", "repr_broken", "accuracy_before", "~2%", "<=", "0.05",
                                "0.0213", "reproduced"]
    assert lines[3].split() == ["fixed", "repr_fixed", "accuracy_after", "15-40%", ">=", "0.15",
                                "0.31", "reproduced"]
    # columns are aligned: every row starts its "verdict" cell at the same offset
    offset = lines[0].index("verdict")
    assert all(line[offset:].startswith("reproduced") for line in lines[2:])


def test_claims_csv_and_json(tracking, capsys):
    assert main(["claims", "--experiment", "repr", "--format", "csv"]) == 0
    rows = list(csv.reader(io.StringIO(capsys.readouterr().out)))
    assert rows[0] == ["run", "variant", "claim", "document figure", "expected", "measured", "verdict"]
    assert rows[1] == ["broken", "repr_broken", "accuracy_before", "~2%", "<= 0.05", "0.0213",
                       "reproduced"]

    assert main(["claims", "--experiment", "repr", "--format", "json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert [(r["claim"], r["measured"], r["verdict"]) for r in data] == [
        ("accuracy_before", 0.0213, "reproduced"), ("accuracy_after", 0.31, "reproduced")]


def test_claims_empty_experiment(tracking, capsys):
    assert main(["claims", "--experiment", "empty"]) == 0
    captured = capsys.readouterr()
    assert captured.out == ""
    assert "no claim verdicts recorded in experiment 'empty'" in captured.err


def test_claims_unknown_experiment(tracking, capsys):
    assert main(["claims", "--experiment", "nope"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("fixlab claims: experiment 'nope' does not exist")
    assert "'repr'" in err and "'empty'" in err and "\n" not in err


def test_usage_errors_and_version(capsys):
    assert main([]) == 2
    assert main(["claims"]) == 2  # --experiment is required
    assert "--experiment" in capsys.readouterr().err
    assert main(["claims", "--experiment", "x", "--format", "xml"]) == 2
    assert main(["--version"]) == 0
    assert capsys.readouterr().out.startswith("fixlab ")
    assert "claims" in SUBCOMMANDS and "report" in SUBCOMMANDS


def test_console_script_unknown_experiment(tracking, tmp_path):
    script = os.path.join(os.path.dirname(sys.executable), "fixlab")
    script = script if os.path.exists(script) else shutil.which("fixlab") or script
    assert os.path.exists(script), "the fixlab console script is not installed (pip install -e .)"
    proc = subprocess.run([script, "claims", "--experiment", "nope", "--tracking-uri", tracking],
                          cwd=tmp_path, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2
    assert "fixlab claims: experiment 'nope' does not exist; existing experiments:" in proc.stderr
    assert proc.stdout == ""
