"""`fixlab report RUN_ID`, and `fixlab runs --tracking-uri` from another directory, on a real store."""

from __future__ import annotations

import json
import os
from pathlib import Path

import mlflow
import mlflow.tracking._tracking_service.utils as tracking_utils
import pytest

from mlflow_plugins.claims import Claim, evaluate, log_claims
from mlflow_plugins.cli import main
from mlflow_plugins.findings import Finding
from mlflow_plugins.report_command import format_text, group_findings
from mlflow_plugins.run_record import run_report

BEFORE = Claim("accuracy_before", "repr_broken", "Accuracy: ~2%", "~2%", "test/acc",
               low=None, high=0.05, document="001.txt")


@pytest.fixture(scope="module")
def store(module_store):
    """Experiment "diag": run "broken" with a fixlab report (5 x GRAD_NEVER_UPDATED, 1 x
    NORM_ERASES_MAGNITUDE) and a claim verdict; run "plain" with nothing of fixlab's."""
    experiment_id = mlflow.set_experiment("diag").experiment_id
    with mlflow.start_run(run_name="broken", tags={"fixlab.variant": "repr_broken"}) as broken:
        with run_report(broken.info.run_id) as report:
            for i in range(5):
                report.add(Finding.of("GRAD_NEVER_UPDATED", 3 + i, f"repr.conv{i}.weight",
                                      {"steps_without_gradient": 3, "last_step": 5 + i}))
            report.add(Finding.of("NORM_ERASES_MAGNITUDE", 7, "encoder.l2",
                                  {"magnitude_cv_in": 0.25, "magnitude_cv_out": 0.0}))
        log_claims(evaluate([BEFORE], {"test/acc": 0.0213}))
    with mlflow.start_run(run_name="plain") as plain:
        mlflow.log_metric("loss", 1.0)
    return {"uri": module_store, "experiment_id": experiment_id, "broken": broken.info.run_id,
            "plain": plain.info.run_id, "root": Path(os.getcwd())}


@pytest.fixture
def elsewhere(tmp_path, monkeypatch):
    """Another working directory, with no tracking URI set in the process or the environment."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    monkeypatch.setattr(tracking_utils, "_tracking_uri", None)
    return tmp_path


def test_report_names_the_codes_health_claims_and_where_the_report_is(store, capsys):
    assert main(["report", store["broken"], "--tracking-uri", store["uri"]]) == 0
    out = capsys.readouterr().out
    lines = out.splitlines()
    assert lines[0] == f"run        broken ({store['broken']})"
    assert lines[1] == f"experiment diag (id {store['experiment_id']})"
    assert "health     critical" in lines
    # five findings of one code are one line: a count and the first three places, earliest first
    grouped = [line for line in lines if "GRAD_NEVER_UPDATED" in line]
    assert grouped == ["  critical  GRAD_NEVER_UPDATED in 5 places: repr.conv0.weight (step 3), "
                       "repr.conv1.weight (step 4), repr.conv2.weight (step 5), +2 more"]
    assert any(line.split() == ["info", "NORM_ERASES_MAGNITUDE:", "encoder.l2", "(step", "7)"] for line in lines)
    assert any(line.split()[:1] == ["accuracy_before"] and line.endswith("reproduced") for line in lines)
    report = next(line for line in lines if line.startswith("report"))
    path = Path(report.split(None, 1)[1])
    assert path.is_file() and path.name == "report.html" and path.is_relative_to(store["root"])
    assert f"mlflow ui --backend-store-uri {store['uri']}" in out
    assert f"http://127.0.0.1:5000/#/experiments/{store['experiment_id']}/runs/{store['broken']}" in out


def test_report_as_json(store, capsys):
    assert main(["report", store["broken"], "--tracking-uri", store["uri"], "--format", "json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert (data["run_name"], data["experiment"], data["health"]) == ("broken", "diag", "critical")
    assert sorted({f["code"] for f in data["findings"]}) == ["GRAD_NEVER_UPDATED", "NORM_ERASES_MAGNITUDE"]
    assert len(data["findings"]) == 6
    assert [(c["claim"], c["verdict"]) for c in data["claims"]] == [("accuracy_before", "reproduced")]
    assert data["report"]["exists"] is True and Path(data["report"]["location"]).is_file()
    assert data["url_path"] == f"#/experiments/{store['experiment_id']}/runs/{store['broken']}"
    assert data["ui_command"] == f"mlflow ui --backend-store-uri {store['uri']}"


def test_report_of_a_run_without_fixlab_artifacts(store, capsys):
    assert main(["report", store["plain"], "--tracking-uri", store["uri"]]) == 0
    out = capsys.readouterr().out
    assert "health     not recorded" in out
    assert "findings   not recorded (the run has no fixlab/findings.json)" in out
    assert "report     none (the run has no fixlab/report.html)" in out
    assert "claims" not in out


def test_report_unknown_run_is_one_line_and_exit_2(store, capsys):
    assert main(["report", "0123456789abcdef0123456789abcdef", "--tracking-uri", store["uri"]]) == 2
    captured = capsys.readouterr()
    assert captured.out == ""
    err = captured.err.strip()
    assert "\n" not in err
    assert err.startswith("fixlab report: run '0123456789abcdef0123456789abcdef' does not exist in "
                          f"{store['uri']}")


def test_unknown_experiment_is_one_line_naming_what_exists(store, capsys):
    for command in ("claims", "runs"):
        assert main([command, "--experiment", "nope", "--tracking-uri", store["uri"]]) == 2
        err = capsys.readouterr().err.strip()
        assert "\n" not in err and "'nope' does not exist" in err and "'diag'" in err, err


def test_runs_with_tracking_uri_from_another_directory(store, elsewhere, capsys):
    assert main(["runs", "--experiment", "diag", "--tracking-uri", store["uri"]]) == 0
    out = capsys.readouterr().out
    assert store["broken"] in out and store["plain"] in out and "critical" in out
    assert os.listdir(elsewhere) == []  # nothing created in the working directory

    # the same command without the URI looks for ./mlflow.db, says so, and creates nothing
    assert main(["runs", "--experiment", "diag"]) == 2
    err = capsys.readouterr().err.strip()
    assert "\n" not in err and f"{elsewhere / 'mlflow.db'} does not exist" in err
    assert os.listdir(elsewhere) == []


def test_report_with_the_store_from_the_environment_in_another_directory(store, elsewhere, monkeypatch,
                                                                        capsys):
    monkeypatch.setenv("MLFLOW_TRACKING_URI", store["uri"])
    assert main(["report", store["broken"]]) == 0
    assert "GRAD_NEVER_UPDATED" in capsys.readouterr().out
    assert os.listdir(elsewhere) == []


def test_findings_are_grouped_and_show_a_message_only_when_they_have_one():
    findings = [{"code": "GRAD_VANISHING", "severity": "warning", "step": 9, "where": f"l{i}",
                 "hint": "the long generic fix"} for i in range(4)]
    findings.append({"code": "NONFINITE", "severity": "critical", "step": 2, "where": "head",
                     "message": "NaN in the output of head (float16)", "hint": "the long generic fix"})
    groups = group_findings(findings)
    assert [(g.code, g.count, g.places, g.message) for g in groups] == [
        ("NONFINITE", 1, ("head (step 2)",), "NaN in the output of head (float16)"),
        ("GRAD_VANISHING", 4, ("l0 (step 9)", "l1 (step 9)", "l2 (step 9)"), "")]
    text = format_text({"run_id": "r1", "run_name": "", "experiment": "e", "experiment_id": "3",
                        "status": "FAILED", "health": "critical", "outcome": "failed: boom",
                        "findings": findings, "claims": [],
                        "report": {"location": "/x/fixlab/report.html", "exists": True, "error": None},
                        "ui_command": None, "url": "http://tracker:5000/#/experiments/3/runs/r1"})
    assert "    NaN in the output of head (float16)" in text
    assert "the long generic fix" not in text  # the hint is not the finding's message
    assert "  warning   GRAD_VANISHING in 4 places: l0 (step 9), l1 (step 9), l2 (step 9), +1 more" in text
    assert text.splitlines()[-1] == "open it    http://tracker:5000/#/experiments/3/runs/r1"
