"""`fixlab runs`: an experiment's runs at a glance, and closing the ones that died without saying so.

    $ fixlab runs --experiment repr_gradflow            # id, name, status, health, findings, outcome
    $ fixlab runs --experiment repr_gradflow --stale    # RUNNING, but their process is gone
    $ fixlab runs --experiment repr_gradflow --stale --close

A stale run is RUNNING while the process its tags name (`liveness`) no longer exists on this
host. `--close` ends it KILLED and tags `fixlab.outcome=killed: ...`, so the MLflow UI stops
showing it as running. Runs of other hosts, or without the tags, are never closed.
"""

from __future__ import annotations

import argparse
import sys
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any, Sequence

from .liveness import HOST_TAG, PID_TAG, process_alive
from .outcome import OUTCOME_TAG
from .paging import all_pages
from .store import URI_HELP, checked_store

__all__ = ["HELP", "RunRow", "list_runs", "stale_runs", "close_stale", "add_arguments", "handle"]

HELP = "list an experiment's runs with their health; --stale --close ends runs whose process died"


@dataclass(frozen=True)
class RunRow:
    """One run, as `fixlab runs` shows it."""

    run_id: str
    name: str
    status: str
    health: str
    findings: str
    outcome: str
    started: str
    alive: bool | None  # for a RUNNING run: its process still runs (None: cannot tell)

    @classmethod
    def of(cls, run: Any) -> "RunRow":
        tags = run.data.tags
        started = datetime.fromtimestamp(run.info.start_time / 1000, timezone.utc).strftime("%Y-%m-%d %H:%M")
        return cls(run.info.run_id, run.info.run_name or "", run.info.status, tags.get("fixlab.health", ""),
                   tags.get("fixlab.findings", ""), tags.get(OUTCOME_TAG, ""), started,
                   process_alive(tags) if run.info.status == "RUNNING" else None)

    @property
    def stale(self) -> bool:
        return self.status == "RUNNING" and self.alive is False


def _experiment_id(client: Any, name: str) -> str:
    """The id of experiment `name`; ValueError (one line, listing those that exist) if none."""
    experiment = client.get_experiment_by_name(name)
    if experiment is None:
        names = sorted(e.name for e in all_pages(client.search_experiments))
        raise ValueError(f"experiment={name!r} does not exist; allowed: one of {names} "
                         f"(store {client.tracking_uri})")
    return experiment.experiment_id


def list_runs(client: Any, experiment: str) -> list[RunRow]:
    """Every run of `experiment`, newest first.

    Raises:
        ValueError: the experiment does not exist (the ones that do are listed).
    """
    experiment_id = _experiment_id(client, experiment)
    runs = all_pages(lambda **page: client.search_runs([experiment_id], **page))
    return [RunRow.of(run) for run in runs]


def stale_runs(client: Any, experiment: str) -> list[RunRow]:
    """The runs of `experiment` that are RUNNING but whose process is gone."""
    return [row for row in list_runs(client, experiment) if row.stale]


def close_stale(client: Any, rows: Sequence[RunRow]) -> None:
    """End each stale run KILLED, tagged with why."""
    from .run_record import record_outcome  # loads MLflow: only when closing

    for row in rows:
        run = client.get_run(row.run_id)
        if run.info.status != "RUNNING" or process_alive(run.data.tags) is not False:
            continue  # it ended, or came back, meanwhile
        tags = run.data.tags
        record_outcome(row.run_id, "KILLED", f"process {tags.get(PID_TAG)} on {tags.get(HOST_TAG)} ended without "
                                             "closing the run (closed by fixlab runs --stale)",
                       tracking_uri=client.tracking_uri)
        client.set_terminated(row.run_id, "KILLED")


_COLUMNS = (("run_id", "run"), ("name", "name"), ("status", "status"), ("health", "health"),
            ("findings", "findings"), ("outcome", "outcome"), ("started", "started (UTC)"))


def format_rows(rows: Sequence[RunRow]) -> str:
    """An aligned text table; a RUNNING run whose process is gone shows as RUNNING (stale)."""
    def cell(row: RunRow, key: str) -> str:
        value = str(getattr(row, key))
        return f"{value} (stale)" if key == "status" and row.stale else value

    body = [[cell(row, key) for key, _ in _COLUMNS] for row in rows]
    headers = [h for _, h in _COLUMNS]
    widths = [max(len(x) for x in column) for column in zip(headers, *body)]
    lines = [headers, ["-" * w for w in widths], *body]
    return "\n".join("  ".join(c.ljust(w) for c, w in zip(line, widths)).rstrip() for line in lines)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--experiment", required=True, metavar="NAME", help="MLflow experiment whose runs to list")
    parser.add_argument("--tracking-uri", default=None, metavar="URI", help=URI_HELP)
    parser.add_argument("--stale", action="store_true",
                        help="only RUNNING runs whose process is gone (killed, power loss)")
    parser.add_argument("--close", action="store_true", help="with --stale: end them KILLED, tagged with why")


def handle(args: argparse.Namespace) -> int:
    from mlflow.tracking import MlflowClient

    if args.close and not args.stale:
        print("fixlab runs: --close is allowed only with --stale", file=sys.stderr)
        return 2
    try:
        client = MlflowClient(tracking_uri=checked_store(args.tracking_uri))
        rows = stale_runs(client, args.experiment) if args.stale else list_runs(client, args.experiment)
    except ValueError as error:
        print(f"fixlab runs: {error}", file=sys.stderr)
        return 2
    if rows:
        print(format_rows(rows))
    if args.close and rows:
        close_stale(client, rows)
        print(f"closed {len(rows)} stale run(s) as KILLED")
    elif not rows:
        print(f"fixlab runs: no {'stale ' if args.stale else ''}runs in experiment {args.experiment!r}",
              file=sys.stderr)
    return 0

