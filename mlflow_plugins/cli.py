"""The ``fixlab`` command line.

Subcommands live in :data:`SUBCOMMANDS` (name -> (help, add_arguments, handler)); a handler
takes the parsed arguments and returns the exit code. Other packages add subcommands as
`Subcommand` objects in the entry-point group ``fixlab.commands`` (the projects add ``resume``),
so this package never imports them. Exit codes: 0 ok, 2 bad input (an unknown experiment or run,
a local store that does not exist, a bad option). A command never creates the store it reads:
`store.checked_store` resolves ``--tracking-uri`` > ``$MLFLOW_TRACKING_URI`` > MLflow's default
(``sqlite:///mlflow.db`` in the working directory) and refuses a missing SQLite file in one line.

Example:
    $ fixlab claims --experiment repr_gradflow
    $ fixlab claims --experiment repr_gradflow --format csv > claims.csv
    $ fixlab report 3f2c0d... --tracking-uri sqlite:////abs/path/mlflow.db
"""

from __future__ import annotations

import argparse
import csv
import io
import json
import os
import sys
from typing import Any, Callable, NamedTuple, Sequence

from . import report_command, runs
from .store import URI_HELP

# Table columns: (row key, header).
CLAIM_COLUMNS = (("run_name", "run"), ("variant", "variant"), ("claim", "claim"),
                 ("figure", "document figure"), ("expected", "expected"),
                 ("measured", "measured"), ("verdict", "verdict"))


class Subcommand(NamedTuple):
    help: str
    add_arguments: Callable[[argparse.ArgumentParser], None]
    handler: Callable[[argparse.Namespace], int]


def _claims_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--experiment", required=True, metavar="NAME",
                        help="MLflow experiment whose runs to read")
    parser.add_argument("--tracking-uri", default=None, metavar="URI", help=URI_HELP)
    parser.add_argument("--format", choices=("table", "csv", "json"), default="table",
                        help="output format (default: an aligned text table)")


def _claims(args: argparse.Namespace) -> int:
    """Print every claim verdict recorded in the experiment, one row per (run, claim)."""
    from mlflow_plugins.claims import claims_table

    try:
        rows = claims_table(args.experiment, tracking_uri=args.tracking_uri)
    except ValueError as e:
        print(f"fixlab claims: {e}", file=sys.stderr)
        return 2
    if args.format == "json":
        print(json.dumps(rows, indent=2))
    elif args.format == "csv":
        print(_csv(rows), end="")
    elif rows:
        print(format_table(rows))
    if not rows:
        print(f"fixlab claims: no claim verdicts recorded in experiment {args.experiment!r}",
              file=sys.stderr)
    return 0


SUBCOMMANDS: dict[str, Subcommand] = {
    "claims": Subcommand("print the documented claims and their verdicts across runs",
                         _claims_arguments, _claims),
    "runs": Subcommand(runs.HELP, runs.add_arguments, runs.handle),
    "report": Subcommand(report_command.HELP, report_command.add_arguments, report_command.handle),
}


def _cell(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, float):
        return f"{value:.4g}"
    return str(value)


def format_table(rows: Sequence[dict[str, Any]]) -> str:
    """The claim rows as a plain text table with aligned columns."""
    headers = [h for _, h in CLAIM_COLUMNS]
    body = [[_cell(row.get(key)) for key, _ in CLAIM_COLUMNS] for row in rows]
    widths = [max(len(x) for x in column) for column in zip(headers, *body)]
    lines = [headers, ["-" * w for w in widths], *body]
    return "\n".join("  ".join(c.ljust(w) for c, w in zip(line, widths)).rstrip() for line in lines)


def _csv(rows: Sequence[dict[str, Any]]) -> str:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow([h for _, h in CLAIM_COLUMNS])
    for row in rows:
        writer.writerow(["" if row.get(k) is None else row.get(k) for k, _ in CLAIM_COLUMNS])
    return out.getvalue()


def _version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("fixlab")
    except PackageNotFoundError:
        return "unknown"


COMMANDS_GROUP = "fixlab.commands"


def subcommands() -> dict[str, Subcommand]:
    """The built-in subcommands and those other installed packages declare in ``fixlab.commands``."""
    from importlib.metadata import entry_points

    found = dict(SUBCOMMANDS)
    for entry in entry_points(group=COMMANDS_GROUP):
        if entry.name not in found:
            found[entry.name] = entry.load()
    return found


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="fixlab", description="fixlab: training diagnostics "
                                     "and documented-fix reproductions tracked in MLflow")
    parser.add_argument("--version", action="version", version=f"fixlab {_version()}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name, command in subcommands().items():
        command.add_arguments(sub.add_parser(name, help=command.help, description=command.help))
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the ``fixlab`` command and return its exit code (2 for a usage error)."""
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as e:  # --help, --version and usage errors: return, don't exit
        return 0 if e.code is None else e.code if isinstance(e.code, int) else 2
    if args.command is None:
        parser.print_help(sys.stderr)
        return 2
    # Reading runs downloads small artifacts; MLflow's progress bars would bury the table.
    os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")
    return subcommands()[args.command].handler(args)


if __name__ == "__main__":
    sys.exit(main())
