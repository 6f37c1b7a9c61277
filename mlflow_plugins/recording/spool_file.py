"""`SpoolFile`: a run's unsent records on local disk, as JSON lines, while its tracking server is away.

One file per run, `<spool folder>/<run id>.jsonl`; the folder is `$FIXLAB_SPOOL`, else
`./fixlab_spool`. The first line says which run and tracking URI the records belong to; each
following line is one record:

    {"fixlab_spool": 1, "run_id": "3f2a...", "tracking_uri": "http://tracker:5000"}
    {"m": ["train/loss", 0.31, 1718000000123, 120]}     a metric point: key, value, ms, step
    {"tag": ["fixlab.health", "ok"]}                    a run tag
    {"file": "fixlab/report.html", "b64": "PCFET0..."}  an artifact file, base64

Points keep the timestamp they were logged with, so sending one again is harmless: MLflow's SQL
store skips a point it already holds (same key, value, step and timestamp). That is what makes a
spool safe to send more than once, in part or whole (`fixlab replay`).
"""

from __future__ import annotations

import base64
import json
import os
import threading
import weakref
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterator, Mapping, Sequence

from mlflow.entities import Metric, RunTag

from ..outcome import error_line

__all__ = ["SPOOL_ENV", "Chunk", "SpoolFile", "read_spool", "spool_folder"]

SPOOL_ENV = "FIXLAB_SPOOL"
_DEFAULT_FOLDER = "fixlab_spool"
_FORMAT = 1
MAX_TAGS = 100  # MLflow's limits per log_batch request: tags,
MAX_RECORDS = 1000  # and metric points, params and tags together
_shared: "weakref.WeakValueDictionary[Path, SpoolFile]" = weakref.WeakValueDictionary()
_shared_lock = threading.Lock()


def spool_folder(folder: str | os.PathLike | None = None) -> Path:
    """The spool folder, absolute: `folder`, else `$FIXLAB_SPOOL`, else `./fixlab_spool`."""
    return Path(folder or os.environ.get(SPOOL_ENV) or _DEFAULT_FOLDER).resolve()


@dataclass
class Chunk:
    """Consecutive records of a spool, at most one request's worth, and where they end."""

    metrics: list[Metric] = field(default_factory=list)
    tags: list[RunTag] = field(default_factory=list)
    files: dict[str, bytes] = field(default_factory=dict)
    end: int = 0  # byte offset after the last record read

    def __len__(self) -> int:
        return len(self.metrics) + len(self.tags) + len(self.files)


class SpoolFile:
    """The spool of one run: records are appended at the end and read from an offset.

    Not thread-safe on its own: the `Sender` that owns it serializes every call under its lock.

    Args:
        path: the file, `<folder>/<run id>.jsonl`; created (with its folder) on the first append.
        run_id / tracking_uri: written in the header, for `fixlab replay`.
    """

    def __init__(self, path: Path, run_id: str, tracking_uri: str) -> None:
        self.path, self.run_id, self.tracking_uri = Path(path), run_id, tracking_uri
        self._offset = 0  # records before this byte were delivered
        self._lock = threading.Lock()
        self._tail_checked = False
        # A file left by an earlier process of the same run is taken over and sent too.
        self.pending = _count(self.path) if self.path.exists() else 0

    @classmethod
    def of_run(cls, run_id: str, tracking_uri: str,
               folder: str | os.PathLike | None = None) -> "SpoolFile":
        """The spool of `run_id` in `folder` (see `spool_folder`): one object per file in this
        process, so that two recorders of a run never append or remove behind each other."""
        path = spool_folder(folder) / f"{run_id}.jsonl"
        with _shared_lock:
            spool = _shared.get(path)
            if spool is None:
                spool = _shared[path] = cls(path, run_id, tracking_uri)
            return spool

    def append(self, metrics: Sequence[Metric] = (), tags: Sequence[RunTag] = (),
               files: Mapping[str, bytes] | None = None) -> None:
        """Appends records (and the header, for a new file); flushed before returning."""
        lines = [json.dumps({"m": [m.key, m.value, m.timestamp, m.step]}) for m in metrics]
        lines += [json.dumps({"tag": [t.key, t.value]}) for t in tags]
        lines += [json.dumps({"file": name, "b64": base64.b64encode(data).decode("ascii")})
                  for name, data in (files or {}).items()]
        if not lines:
            return
        with self._lock:
            new = not self.path.exists()
            if new:
                self.path.parent.mkdir(parents=True, exist_ok=True)
                self._offset = 0
                lines.insert(0, json.dumps({"fixlab_spool": _FORMAT, "run_id": self.run_id,
                                            "tracking_uri": self.tracking_uri}))
            elif not self._tail_checked and not _ends_a_line(self.path):
                lines.insert(0, "")  # an earlier process died mid-line: start a fresh one
            self._tail_checked = True
            with self.path.open("a", encoding="utf-8") as out:
                out.write("\n".join(lines) + "\n")
            self.pending += sum(1 for line in lines if line) - new

    def read(self, start: int | None = None) -> Chunk:
        """The next records from byte `start` (default: the first undelivered one): up to one
        request's worth (1000 points and tags, at most 100 of them tags), or a single artifact
        file. A line that is not a record (the tail of a write cut short by a crash) is skipped."""
        with self._lock:
            chunk = Chunk(end=self._offset if start is None else start)
            if not self.path.exists():
                return chunk
            with self.path.open("rb") as src:
                src.seek(chunk.end)
                for line in src:
                    if not line.endswith(b"\n"):
                        break  # a record still being written
                    record = _parse(line)
                    if "file" in record and len(chunk):
                        break  # a file travels alone
                    _add(chunk, record)
                    chunk.end += len(line)
                    if (chunk.files or len(chunk.tags) >= MAX_TAGS
                            or len(chunk.metrics) + len(chunk.tags) >= MAX_RECORDS):
                        break
            return chunk

    def commit(self, chunk: Chunk) -> None:
        """The records of `chunk` were delivered: move past them; remove the file once all were."""
        with self._lock:
            if not self.path.exists():
                self._offset, self.pending = 0, 0
                return
            self._offset = max(self._offset, chunk.end)
            self.pending = max(0, self.pending - len(chunk))
            if self._offset >= self.path.stat().st_size:
                self.path.unlink()
                self._offset, self.pending = 0, 0


def read_spool(path: str | os.PathLike) -> tuple[SpoolFile, Iterator[Chunk]]:
    """A spool file and its records in request-sized chunks, from the start (for replay; the
    file is left as it is).

    Raises:
        ValueError: `path` is not a fixlab spool file.
    """
    try:
        with Path(path).open("rb") as src:
            header = json.loads(src.readline() or b"null")
    except (OSError, ValueError) as error:
        raise ValueError(f"path={str(path)!r} is not a fixlab spool file: {error_line(error)}") from None
    if not isinstance(header, dict) or header.get("fixlab_spool") != _FORMAT or "run_id" not in header:
        raise ValueError(f"path={str(path)!r} is not a fixlab spool file (its first line is not a "
                         "fixlab_spool header); allowed: a <run id>.jsonl file that fixlab wrote")
    spool = SpoolFile(Path(path), str(header["run_id"]), str(header.get("tracking_uri") or ""))

    def chunks() -> Iterator[Chunk]:
        start = 0
        while len(chunk := spool.read(start)) or chunk.end > start:
            start = chunk.end
            if len(chunk):
                yield chunk

    return spool, chunks()


def _count(path: Path) -> int:
    """Records in a spool file (every line but the header)."""
    with path.open("rb") as src:
        return max(0, sum(1 for line in src if line.endswith(b"\n")) - 1)


def _ends_a_line(path: Path) -> bool:
    with path.open("rb") as src:
        src.seek(0, os.SEEK_END)
        if src.tell() == 0:
            return True
        src.seek(-1, os.SEEK_END)
        return src.read(1) == b"\n"


def _parse(line: bytes) -> dict:
    """One line as a record; {} for a line that is not one (cut short, or not JSON)."""
    try:
        record = json.loads(line)
    except ValueError:
        return {}
    return record if isinstance(record, dict) else {}


def _add(chunk: Chunk, record: dict) -> None:
    """Adds one record to a chunk; the header, and anything malformed, adds nothing."""
    try:
        if "m" in record:
            key, value, timestamp, step = record["m"]
            chunk.metrics.append(Metric(str(key), float(value), int(timestamp), int(step)))
        elif "tag" in record:
            key, value = record["tag"]
            chunk.tags.append(RunTag(str(key), str(value)))
        elif "file" in record:
            chunk.files[str(record["file"])] = base64.b64decode(record["b64"])
    except (KeyError, TypeError, ValueError):
        pass  # a record this version cannot read: skipped, never fatal to the sender
