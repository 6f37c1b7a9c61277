"""`fixlab replay`: sends what a run left in its spool file while its tracking server was away.

A `Recorder` that cannot reach the tracking server keeps the run's metric points (and, written
meanwhile, its fixlab tags and report files) in `<spool folder>/<run id>.jsonl`, where the spool
folder is `$FIXLAB_SPOOL`, else `./fixlab_spool`. When the server comes back during the run, the
recorder sends the file itself and removes it. When it does not (the process ended first), this
command sends it:

    $ fixlab replay                                   # every file in the spool folder
    $ fixlab replay fixlab_spool/3f2a....jsonl        # one file
    $ fixlab replay --tracking-uri sqlite:///mlflow.db   # elsewhere than the URI each file names

Each file's records go to its run exactly once: a point keeps the timestamp it was logged with,
and MLflow's SQL store skips a point it already holds, so points that landed before the outage
or in an earlier, interrupted replay are not added twice. A file is removed once all its records
landed; on a failure it is kept and the command can be run again. Run it after the training
process has ended (a live recorder still appends to its file).
"""

from __future__ import annotations

import argparse
import os
import sys
from dataclasses import dataclass
from pathlib import Path

from .cli import Subcommand

__all__ = ["COMMAND", "HELP", "Replayed", "add_arguments", "handle", "replay"]

HELP = "send the metric points runs left in their spool files while the tracking server was away"


@dataclass(frozen=True)
class Replayed:
    """What `replay` did with one spool file."""

    path: Path
    run_id: str
    sent: int  # records delivered (points, tags, files)
    error: str | None = None  # why the file was kept; None: all landed and it was removed


def replay(path: str | os.PathLike | None = None, tracking_uri: str | None = None) -> list[Replayed]:
    """Sends spool files to their runs, exactly once, and removes each file whose records all
    landed.

    Args:
        path: a spool file, or a folder of them; default `$FIXLAB_SPOOL`, else `./fixlab_spool`.
        tracking_uri: where to send; default the URI each file was written for.

    Returns:
        One `Replayed` per file, in name order.

    Raises:
        ValueError: `path` does not exist or is not a spool file.

    Example:
        >>> [r.error for r in replay("fixlab_spool")]
        [None]
    """
    from .recording.spool_file import spool_folder

    target = spool_folder(path)
    if target.is_dir():
        files = sorted(target.glob("*.jsonl"))
    elif target.is_file():
        files = [target]
    elif path is None:
        files = []  # no default folder: nothing was ever spooled here
    else:
        raise ValueError(f"path={str(path)!r} does not exist; allowed: a spool file "
                         "(<run id>.jsonl) or a folder of them")
    return [_replay_file(file, tracking_uri) for file in files]


def _replay_file(path: Path, tracking_uri: str | None) -> Replayed:
    import mlflow

    from .recording.spool_file import read_spool
    from .recording.transport import Transport

    spool, chunks = read_spool(path)
    transport = Transport(spool.run_id, tracking_uri or spool.tracking_uri or mlflow.get_tracking_uri())
    sent = 0
    try:
        for chunk in chunks:
            if chunk.metrics or chunk.tags:
                transport.send(chunk.metrics, chunk.tags)
            if chunk.files:
                transport.upload(chunk.files)
            sent += len(chunk)
    except Exception as error:  # noqa: BLE001 - reported per file; the file is kept
        text = str(error).strip().splitlines()
        return Replayed(path, spool.run_id, sent,
                        f"{type(error).__name__}: {text[0] if text else ''}"[:300])
    path.unlink()
    return Replayed(path, spool.run_id, sent)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("path", nargs="?", default=None, metavar="PATH",
                        help="a spool file or a folder of them (default: $FIXLAB_SPOOL, "
                             "else ./fixlab_spool)")
    parser.add_argument("--tracking-uri", default=None, metavar="URI",
                        help="where to send the records (default: the tracking URI each file "
                             "was written for)")


def handle(args: argparse.Namespace) -> int:
    """Replays, prints one line per file; exit code 0 all sent, 1 a file was kept, 2 bad input."""
    try:
        results = replay(args.path, args.tracking_uri)
    except ValueError as error:
        print(f"fixlab replay: {error}", file=sys.stderr)
        return 2
    if not results:
        print("fixlab replay: no spool files to send", file=sys.stderr)
    for r in results:
        if r.error is None:
            print(f"{r.path}: {r.sent} records sent to run {r.run_id}; file removed")
        else:
            print(f"fixlab replay: {r.path}: {r.sent} records sent to run {r.run_id}, then "
                  f"{r.error}; file kept, run the command again", file=sys.stderr)
    return 1 if any(r.error for r in results) else 0


COMMAND = Subcommand(HELP, add_arguments, handle)
