"""`fixlab report RUN_ID`: one run at a glance, and where its health report is.

    $ fixlab report 3f2c0d...                        # name, experiment, status, health, outcome,
                                                     # findings, claim verdicts, report, how to open it
    $ fixlab report 3f2c0d... --format json
    $ fixlab report 3f2c0d... --tracking-uri sqlite:////abs/path/mlflow.db

Findings come from the run's artifact `fixlab/findings.json`; many findings of one code are one
line, with a count and the first places. The report is the artifact `fixlab/report.html`, shown as
a local path when the artifact store is local, with the `mlflow ui` command that serves the store
and the run's page in it. An unknown run id, or a local store that does not exist: one line on
stderr, exit code 2.

`read_run` reads MLflow; `group_findings` and `format_text` are pure.
"""

from __future__ import annotations

import argparse
import json
import shlex
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Mapping, Sequence
from urllib.parse import unquote, urlparse
from urllib.request import url2pathname

from .outcome import HEALTH_TAG, OUTCOME_TAG
from .store import URI_HELP, checked_store

__all__ = ["HELP", "FindingGroup", "add_arguments", "format_text", "group_findings", "handle", "read_run"]

HELP = "one run at a glance: health, outcome, findings, claim verdicts, and where its report is"

FINDINGS_ARTIFACT = "fixlab/findings.json"
REPORT_ARTIFACT = "fixlab/report.html"
UI_ADDRESS = "http://127.0.0.1:5000"  # where `mlflow ui` serves by default
PLACES_SHOWN = 3  # places listed on a finding group's line; the rest are counted
_SEVERITY_ORDER = {"critical": 0, "warning": 1, "info": 2}


@dataclass(frozen=True)
class FindingGroup:
    """The findings of one code (and severity): how many, the first places, the first message."""

    code: str
    severity: str
    count: int
    places: tuple[str, ...]  # "where (step N)", earliest first, at most PLACES_SHOWN
    message: str  # the first finding's `message`; "" when findings carry none


def group_findings(findings: Sequence[Mapping[str, Any]]) -> list[FindingGroup]:
    """Findings (dicts of `fixlab/findings.json`) grouped by code and severity: the worst first."""
    groups: dict[tuple[str, str], list[Mapping[str, Any]]] = {}
    for finding in findings:
        key = (str(finding.get("code", "?")), str(finding.get("severity", "?")))
        groups.setdefault(key, []).append(finding)
    result = []
    for (code, severity), members in groups.items():
        members = sorted(members, key=lambda f: (_step(f), str(f.get("where", ""))))
        places = tuple(_place(f) for f in members[:PLACES_SHOWN])
        message = str(members[0].get("message") or "")  # the finding's own words; never the hint
        result.append(FindingGroup(code, severity, len(members), places, message))
    return sorted(result, key=lambda g: (_SEVERITY_ORDER.get(g.severity, 3), g.code))


def _step(finding: Mapping[str, Any]) -> int:
    try:
        return int(finding.get("step", 0))
    except (TypeError, ValueError):
        return 0


def _place(finding: Mapping[str, Any]) -> str:
    where = str(finding.get("where", "")) or "?"
    return f"{where} (step {finding['step']})" if "step" in finding else where


def format_text(report: Mapping[str, Any]) -> str:
    """The `read_run` dict as aligned text lines, for a person."""
    name = f"{report['run_name']} ({report['run_id']})" if report["run_name"] else report["run_id"]
    status = report["status"] + (" (deleted)" if report.get("deleted") else "")
    lines = [("run", name), ("experiment", f"{report['experiment']} (id {report['experiment_id']})"),
             ("status", status), ("health", report["health"] or "not recorded (no fixlab.health tag)"),
             ("outcome", report["outcome"] or "not recorded (no fixlab.outcome tag)")]
    out = [f"{label:<11}{value}" for label, value in lines]
    out += _findings_lines(report)
    out += _claims_lines(report.get("claims") or [])
    out += _report_lines(report)
    return "\n".join(line.rstrip() for line in out)


def _findings_lines(report: Mapping[str, Any]) -> list[str]:
    findings = report.get("findings")
    if findings is None:
        why = report.get("findings_error") or f"the run has no {FINDINGS_ARTIFACT}"
        return [f"{'findings':<11}not recorded ({why})"]
    if not findings:
        return [f"{'findings':<11}none"]
    groups = group_findings(findings)
    out = [f"{'findings':<11}{len(findings)} in {len(groups)} code(s)"]
    width = max(len(g.severity) for g in groups)
    for g in groups:
        count = f" in {g.count} places" if g.count > 1 else ""
        more = f", +{g.count - len(g.places)} more" if g.count > len(g.places) else ""
        out.append(f"  {g.severity:<{width}}  {g.code}{count}: {', '.join(g.places)}{more}")
        if g.message:
            out.append(f"  {'':<{width}}    {g.message}")
    return out


def _claims_lines(claims: Sequence[Mapping[str, Any]]) -> list[str]:
    if not claims:
        return []
    rows = [(str(c.get("claim", "")), str(c.get("expected", "")),
             "" if c.get("measured") is None else f"{c['measured']:.4g}", str(c.get("verdict", "")))
            for c in claims]
    widths = [max(len(row[i]) for row in rows) for i in range(3)]
    out = [f"{'claims':<11}{len(claims)}"]
    for claim, expected, measured, verdict in rows:
        out.append(f"  {claim:<{widths[0]}}  expected {expected:<{widths[1]}}  measured "
                   f"{measured or '-':<{widths[2]}}  {verdict}")
    return out


def _report_lines(report: Mapping[str, Any]) -> list[str]:
    where = report["report"]
    if where["error"]:
        out = [f"{'report':<11}{where['location']} (cannot tell whether it exists: {where['error']})"]
    elif where["exists"]:
        out = [f"{'report':<11}{where['location']}"]
    else:
        out = [f"{'report':<11}none (the run has no {REPORT_ARTIFACT})"]
    if report.get("ui_command"):
        out.append(f"{'open it':<11}{report['ui_command']}")
        out.append(f"{'':<11}then {report['url']}")
    elif report.get("url"):
        out.append(f"{'open it':<11}{report['url']}")
    return out


# --------------------------------------------------------------------------- reading MLflow


def read_run(client: Any, run_id: str) -> dict[str, Any]:
    """Everything `fixlab report` shows about `run_id`, read through `client` (plain values).

    Raises:
        ValueError: one line: the run does not exist in the client's store.
    """
    from mlflow.exceptions import MlflowException

    from .claims import run_claim_rows

    uri = client.tracking_uri
    try:
        run = client.get_run(run_id)
    except MlflowException as error:
        first = (str(error.message).strip().splitlines() or [""])[0]
        raise ValueError(f"run {run_id!r} does not exist in {uri} ({first}); allowed: a run id of "
                         "this store (fixlab runs --experiment NAME lists them)") from None
    info, tags = run.info, run.data.tags
    experiment = client.get_experiment(info.experiment_id)
    listed, list_error = _artifact_names(client, run_id)
    findings, findings_error = (None, list_error) if list_error else _findings(client, run_id, listed)
    look = where_to_look(uri, info.experiment_id, run_id, info.artifact_uri)
    return {
        "run_id": run_id, "run_name": info.run_name or "", "experiment": experiment.name,
        "experiment_id": info.experiment_id, "status": info.status,
        "deleted": info.lifecycle_stage == "deleted",
        "health": tags.get(HEALTH_TAG, ""), "outcome": tags.get(OUTCOME_TAG, ""),
        "findings": findings, "findings_error": findings_error,
        "claims": run_claim_rows(run, uri),
        "report": {"artifact_uri": f"{info.artifact_uri.rstrip('/')}/{REPORT_ARTIFACT}",
                   "location": look["report"], "exists": REPORT_ARTIFACT in listed, "error": list_error},
        "tracking_uri": uri, "ui_command": look["ui_command"], "url_path": look["url_path"], "url": look["url"],
    }


def where_to_look(tracking_uri: str, experiment_id: str, run_id: str, artifact_uri: str) -> dict[str, str | None]:
    """Where a run's report is (a local path when the artifact store is local), the command that
    serves its store in MLflow's UI (None for a server) and the run's address there."""
    url_path = f"#/experiments/{experiment_id}/runs/{run_id}"
    ui_command, url = _ui(tracking_uri, url_path)
    return {"report": _location(f"{artifact_uri.rstrip('/')}/{REPORT_ARTIFACT}"), "ui_command": ui_command,
            "url_path": url_path, "url": url}


def _artifact_names(client: Any, run_id: str) -> tuple[set[str], str | None]:
    """The paths under the run's `fixlab/` artifacts, or an error line when they cannot be listed."""
    try:
        return {a.path for a in client.list_artifacts(run_id, "fixlab")}, None
    except Exception as error:  # noqa: BLE001 - e.g. an mlflow-artifacts: location without its server
        text = str(getattr(error, "message", error)).strip().splitlines()
        return set(), f"artifacts unreadable: {type(error).__name__}: {text[0] if text else ''}"[:300]


def _findings(client: Any, run_id: str, listed: set[str]) -> tuple[list[dict[str, Any]] | None, str | None]:
    """The findings of `fixlab/findings.json` (None and why when absent or unreadable)."""
    if FINDINGS_ARTIFACT not in listed:
        return None, None
    with tempfile.TemporaryDirectory(prefix="fixlab_report_") as tmp:
        try:
            local = client.download_artifacts(run_id, FINDINGS_ARTIFACT, tmp)
            document = json.loads(Path(local).read_text(encoding="utf-8"))
        except Exception as error:  # noqa: BLE001 - a damaged artifact is reported, not raised
            return None, f"{FINDINGS_ARTIFACT} unreadable: {type(error).__name__}"
    findings = document.get("findings") if isinstance(document, dict) else None
    if not isinstance(findings, list):
        return None, f"{FINDINGS_ARTIFACT} has no 'findings' list"
    return [f for f in findings if isinstance(f, dict)], None


def _location(artifact_uri: str) -> str:
    """A local path for a local artifact URI (``file://`` or a plain path); the URI otherwise."""
    parsed = urlparse(artifact_uri)
    return url2pathname(unquote(parsed.path)) if parsed.scheme == "file" else artifact_uri


def _ui(uri: str, url_path: str) -> tuple[str | None, str | None]:
    """The command that serves the store in MLflow's UI (None for a server), and the run's URL."""
    scheme = urlparse(uri).scheme
    if scheme in ("http", "https"):
        return None, f"{uri.rstrip('/')}/{url_path}"
    if scheme.startswith("databricks"):
        return None, None
    return f"mlflow ui --backend-store-uri {shlex.quote(uri)}", f"{UI_ADDRESS}/{url_path}"


# --------------------------------------------------------------------------- the command


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("run_id", metavar="RUN_ID", help="the MLflow run to show")
    parser.add_argument("--tracking-uri", default=None, metavar="URI", help=URI_HELP)
    parser.add_argument("--format", choices=("text", "json"), default="text",
                        help="output format (default: text for a person)")


def handle(args: argparse.Namespace) -> int:
    """Prints the run's report; exit code 0, or 2 for a missing store or an unknown run."""
    from mlflow.tracking import MlflowClient

    try:
        client = MlflowClient(tracking_uri=checked_store(args.tracking_uri))
        report = read_run(client, args.run_id)
    except ValueError as error:
        print(f"fixlab report: {error}", file=sys.stderr)
        return 2
    print(json.dumps(report, indent=2) if args.format == "json" else format_text(report))
    return 0
