"""`Sender`: delivers one run's metric points from a background thread, so that training never
waits on the tracking server, and holds them through an outage.

- Points wait in memory until a flush (or a full batch of 1000); then a daemon thread sends what
  the flush asked for (what is logged meanwhile waits for the next flush, so batches stay large),
  one short attempt per batch (`Transport`: no MLflow retries, a 5 s timeout).
- When the server is unreachable the thread retries on its own schedule (after 0.5, 1, 2, then
  every 5 s) and keeps the points: in memory up to `max_buffered` (default `MAX_BUFFERED`, plus
  the batch being retried), beyond that appended to the run's spool file (`SpoolFile`). Memory is
  sent first, then the spool, so points go out in the order they were logged.
- The user is told twice per outage, through `notices()`: once when an attempt first fails
  ("unreachable since ...") and once when the backlog has been delivered ("reachable again").
- `drain()` (what `Recorder.close` calls) waits for the backlog at most `CLOSE_TIMEOUT_S` while
  the server answers; while it does not, for one more attempt only. What is left goes to the
  spool file, with one notice naming the file and the command that sends it (`fixlab replay`).

Exactly once: a batch whose response was lost may have landed; it is sent again as it was, and
MLflow's SQL store skips a point it already holds (same key, value, step and timestamp).
"""

from __future__ import annotations

import atexit
import threading
import time
import warnings
import weakref
from dataclasses import dataclass
from datetime import datetime
from typing import Mapping, NamedTuple, Sequence

from mlflow.entities import Metric, RunTag

from ..outcome import error_line
from .spool_file import Chunk, SpoolFile
from .transport import Transport, is_transient

__all__ = ["BATCH_SIZE", "CLOSE_TIMEOUT_S", "MAX_BUFFERED", "RETRY_DELAYS_S", "Sender", "Unsent"]

BATCH_SIZE = 1000  # MLflow's limit of metrics per log_batch request
MAX_BUFFERED = 50_000  # points held in memory while the server is away (~15 MB); then the spool
CLOSE_TIMEOUT_S = 30.0  # the longest close() waits for a backlog that the server is taking
RETRY_DELAYS_S = (0.5, 1.0, 2.0, 5.0)  # between attempts while it is away; the last repeats

_live: "weakref.WeakSet[Sender]" = weakref.WeakSet()


class Unsent(NamedTuple):
    """Records not delivered yet: metric points in memory, records in the spool file."""

    in_memory: int
    spooled: int


@dataclass
class _Flight:
    """The batch the thread is sending now."""

    metrics: list[Metric]
    chunk: Chunk | None = None  # read from the spool; None: taken from memory
    spilled: bool = False  # drain() also wrote it to the spool: not put back if it fails

    def __len__(self) -> int:
        return len(self.metrics) if self.chunk is None else len(self.chunk)


@dataclass
class _Outage:
    """An outage the user has been told of and not yet told is over."""

    since: float  # wall clock of the first failed attempt
    back: float | None = None  # wall clock of the first success after it
    sent: int = 0  # records delivered since it began
    told_spool: bool = False  # the "kept in <file>" notice was given


class Sender:
    """Sends one run's metric points off the training thread; see the module docstring.

    Args:
        transport: delivers a batch in one short attempt.
        spool: the run's spool file, for what does not fit in memory or is left at close.
        max_buffered: points held in memory before new ones go to the spool (>= 1).
    """

    def __init__(self, transport: Transport, spool: SpoolFile, *,
                 max_buffered: int = MAX_BUFFERED) -> None:
        self.transport, self.spool, self.max_buffered = transport, spool, max_buffered
        self._cond = threading.Condition()
        self._memory: list[Metric] = []
        self._flight: _Flight | None = None
        self._thread: threading.Thread | None = None
        self._flush_left = 0  # points at the head of memory that a flush asked to send
        self._draining = False  # drain() is waiting: send everything, retry now
        self._down = False  # the last attempt failed and may succeed later
        self._failures = 0  # consecutive failed attempts
        self._retry_at = 0.0  # monotonic time of the next attempt while down
        self._attempts = 0
        self._outage: _Outage | None = None
        self._spool_broken = False  # told the user the spool file cannot be written
        self._notices: list[str] = []
        _live.add(self)

    # the caller's side (the training thread) ------------------------------------------------

    def put(self, points: Sequence[Metric]) -> None:
        """Queues points; never waits on the server (at most on a local file append)."""
        if not points:
            return
        with self._cond:
            if not (self.spool.pending or len(self._memory) + len(points) > self.max_buffered):
                self._memory.extend(points)
            elif not self._to_spool(points):
                self._memory.extend(points)  # the spool cannot be written: memory, unbounded
            if len(self._memory) >= BATCH_SIZE or self.spool.pending:
                self._wake()

    def put_records(self, tags: Sequence[RunTag] = (), files: Mapping[str, bytes] | None = None) -> None:
        """Tags and artifact files that could not be sent now: into the spool, sent later."""
        with self._cond:
            if self._to_spool(tags=tags, files=files):
                self._wake()

    def flush(self) -> None:
        """Asks the thread to send everything queued so far (not what is logged meanwhile: that
        waits for the next flush, so batches stay large); returns at once."""
        with self._cond:
            self._flush_left = len(self._memory)
            if self._memory or self.spool.pending:
                self._wake()

    def wait_flushed(self, timeout_s: float = CLOSE_TIMEOUT_S) -> bool:
        """Waits, at most `timeout_s`, until what earlier flushes asked for has been sent,
        without sending what was logged since. False if it has not (the server is away)."""
        with self._cond:
            deadline = time.monotonic() + timeout_s
            while (self._flush_left or self._flight is not None) and not self._down:
                left_s = deadline - time.monotonic()
                if left_s <= 0 or self._thread is None:
                    break
                self._cond.wait(min(left_s, 0.5))
            return not (self._flush_left or self._flight is not None)

    def drain(self, timeout_s: float = CLOSE_TIMEOUT_S) -> int:
        """Waits until everything queued is delivered: at most `timeout_s`, and while the server
        is unreachable only for one more attempt. The rest goes to the spool file (one notice
        says how to send it). Returns the number of records left there."""
        with self._cond:
            self._draining = True
            if self._memory or self.spool.pending:
                self._wake()
            attempts, deadline = self._attempts, time.monotonic() + timeout_s
            while self._memory or self._flight is not None or self.spool.pending:
                left_s = deadline - time.monotonic()
                if left_s <= 0 or (self._down and self._attempts > attempts):
                    break
                if self._thread is None:
                    break  # it stopped on an error (its notice says which): nothing will move
                self._cond.wait(min(left_s, 0.5))
            self._draining = False
            self._flush_left = 0
            self._spill()
            left = self.spool.pending + len(self._memory)
            if left and not (self._outage is not None and self._outage.told_spool):
                self._notices.append(self._kept_notice(left, timeout_s))
                if self._outage is not None:
                    self._outage.told_spool = True
            return left

    def notices(self) -> list[str]:
        """The one-line messages for the user since the last call (outage, recovery, failures)."""
        with self._cond:
            notices, self._notices = self._notices, []
            return notices

    @property
    def reachable(self) -> bool:
        """False while the last attempt failed and the server has not answered since."""
        return not self._down

    @property
    def unsent(self) -> Unsent:
        with self._cond:
            flight = self._flight
            flying = len(flight) if flight and flight.chunk is None and not flight.spilled else 0
            return Unsent(len(self._memory) + flying, self.spool.pending)

    # the thread ------------------------------------------------------------------------------

    def _wake(self) -> None:
        """Starts the thread if it is not running, and wakes it (under the lock)."""
        if self._thread is None:
            self._thread = threading.Thread(target=self._run, daemon=True,
                                            name=f"fixlab-sender-{self.transport.run_id[:8]}")
            self._thread.start()
        self._cond.notify_all()

    def _due(self) -> bool:
        if not (self._memory or self.spool.pending):
            return False
        if self._down:
            return self._draining or time.monotonic() >= self._retry_at
        return (self._draining or self._flush_left > 0 or len(self._memory) >= BATCH_SIZE
                or self.spool.pending > 0)

    def _run(self) -> None:
        try:
            self._loop()
        except Exception as error:  # noqa: BLE001 - a bug or a broken spool: say so, never spin
            with self._cond:
                self._thread = None
                self._notices.append(f"fixlab: sending metrics of MLflow run {self.transport.run_id} "
                                     f"stopped: {error_line(error)}; the next flush tries again")
                self._cond.notify_all()

    def _loop(self) -> None:
        while True:
            with self._cond:
                while not self._due():
                    if not self._down or not (self._memory or self.spool.pending):
                        self._thread = None  # idle: the next put or flush starts a new thread
                        self._cond.notify_all()
                        return
                    self._cond.wait(max(0.01, self._retry_at - time.monotonic()))
                flight = self._take()
            error = self._attempt(flight)
            with self._cond:
                self._settle(flight, error)
                self._cond.notify_all()

    def _take(self) -> _Flight:
        if self._memory:
            whole = self._down or self._draining or len(self._memory) >= BATCH_SIZE
            batch = self._memory[:BATCH_SIZE if whole else min(BATCH_SIZE, self._flush_left)]
            del self._memory[:len(batch)]
            self._flush_left = max(0, self._flush_left - len(batch))
            self._flight = _Flight(batch)
        else:
            chunk = self.spool.read()
            self._flight = _Flight(chunk.metrics, chunk)
        return self._flight

    def _attempt(self, flight: _Flight) -> Exception | None:
        """One try, outside the lock: the training thread keeps queueing meanwhile."""
        try:
            tags = flight.chunk.tags if flight.chunk is not None else []
            if flight.metrics or tags:
                self.transport.send(flight.metrics, tags)
            if flight.chunk is not None and flight.chunk.files:
                self.transport.upload(flight.chunk.files)
        except Exception as error:  # noqa: BLE001 - judged by is_transient in _settle
            return error
        return None

    def _settle(self, flight: _Flight, error: Exception | None) -> None:
        """Books an attempt (under the lock): delivered, to retry, or refused for good."""
        self._flight = None
        if not len(flight):  # nothing was sent (a spool removed by `fixlab replay`)
            if flight.chunk is not None:
                self.spool.commit(flight.chunk)
            return
        self._attempts += 1
        if error is not None and is_transient(error):
            self._failed(flight, error)
            return
        if flight.chunk is not None:
            self.spool.commit(flight.chunk)
        if error is not None:  # refused (no such run, a deleted run): sending again cannot help
            self._notices.append(f"fixlab: logging {_records(flight)} for MLflow run "
                                 f"{self.transport.run_id} failed: {error_line(error)}; "
                                 "training continues")
        if self._down:  # back: what piled up in memory meanwhile goes out now, as if flushed
            self._flush_left = len(self._memory)
        self._down, self._failures = False, 0
        if self._outage is not None:
            self._outage.sent += len(flight) if error is None else 0
            self._outage.back = self._outage.back or time.time()
            if not (self._flush_left or self.spool.pending):  # the backlog is out
                self._notices.append(
                    f"fixlab: {self._where} reachable again after "
                    f"{self._outage.back - self._outage.since:.0f} s; sent "
                    f"{self._outage.sent} buffered points")
                self._outage = None

    def _failed(self, flight: _Flight, error: Exception) -> None:
        self._down = True
        self._failures += 1
        delay = RETRY_DELAYS_S[min(self._failures, len(RETRY_DELAYS_S)) - 1]
        self._retry_at = time.monotonic() + delay
        if flight.chunk is None and not flight.spilled:
            self._memory[:0] = flight.metrics  # first in line again, as it was
            self._flush_left += len(flight.metrics)
        if self._outage is None:
            self._outage = _Outage(since=time.time())
            self._notices.append(
                f"fixlab: {self._where} unreachable since "
                f"{datetime.fromtimestamp(self._outage.since):%H:%M:%S} "
                f"({self.transport.reason(error)}); "
                f"buffering metrics ({len(self._memory)} in memory, beyond {self.max_buffered} "
                f"spooling to {self.spool.path}); training continues")
        elif self._outage.back is not None:
            self._outage.back = None  # away again before the backlog was out: one outage

    def _spill(self) -> None:
        """Moves what memory holds, and a batch in flight from memory, to the spool file."""
        flight = self._flight
        if flight is not None and flight.chunk is None and not flight.spilled:
            # It may land too: a point sent twice lands once.
            flight.spilled = self._to_spool(flight.metrics)
        if self._memory and self._to_spool(self._memory):
            self._memory = []

    def _to_spool(self, metrics: Sequence[Metric] = (), tags: Sequence[RunTag] = (),
                  files: Mapping[str, bytes] | None = None) -> bool:
        """Appends to the spool file; False, with one notice, when it cannot be written."""
        try:
            self.spool.append(metrics=metrics, tags=tags, files=files)
            return True
        except OSError as error:
            if not self._spool_broken:
                self._spool_broken = True
                self._notices.append(f"fixlab: cannot write the spool file {self.spool.path} "
                                     f"({error_line(error)}); holding metrics in memory")
            return False

    def _kept_notice(self, left: int, timeout_s: float) -> str:
        why = (f"{self._where} unreachable" if self._down
               else f"still sending after {timeout_s:g} s")
        return (f"fixlab: {left} records of MLflow run {self.transport.run_id} not sent ({why}); "
                f"kept in {self.spool.path}; send them with `fixlab replay {self.spool.path}`")

    @property
    def _where(self) -> str:
        kind = "tracking server" if self.transport.is_server else "tracking store"
        return f"{kind} {self.transport.tracking_uri}"


def _records(flight: _Flight) -> str:
    if flight.chunk is None or len(flight.chunk) == len(flight.metrics):
        return f"{len(flight.metrics)} metric points"
    return f"{len(flight)} records (metric points, tags, files)"


@atexit.register
def _drain_at_exit() -> None:
    """At interpreter exit: what was never closed is sent, or left in the spool, and said so."""
    for sender in list(_live):
        if sender.unsent != (0, 0):
            sender.drain()
        for notice in sender.notices():
            warnings.warn(notice, RuntimeWarning, stacklevel=1)
