"""Which process owns a run, and whether it is still alive: for runs that died without saying so.

A run killed with SIGKILL (or by a power cut) cannot mark itself: MLflow shows it RUNNING forever.
Every run fixlab sees created gets tags naming its process (`fixlab.host`, `fixlab.pid` and the
process's start time, so a recycled pid is not mistaken for it); `process_alive` reads them back.
Only runs of this host can be judged; for others the answer is None (unknown).
"""

from __future__ import annotations

import os
import socket
from typing import Mapping

__all__ = ["HOST_TAG", "PID_TAG", "PID_START_TAG", "process_tags", "process_alive"]

HOST_TAG = "fixlab.host"
PID_TAG = "fixlab.pid"
PID_START_TAG = "fixlab.pid_start"


def _start_time(pid: int) -> str | None:
    """The process's start time in clock ticks since boot (Linux /proc), or None if unknown/gone."""
    try:
        with open(f"/proc/{pid}/stat") as stat:
            fields = stat.read().rsplit(")", 1)[1].split()
        return fields[19]  # field 22 of stat(5), counted after the command name
    except (OSError, IndexError):
        return None


def process_tags(pid: int | None = None) -> dict[str, str]:
    """The tags that name process `pid` (default: this one) on this host."""
    pid = os.getpid() if pid is None else pid
    tags = {HOST_TAG: socket.gethostname(), PID_TAG: str(pid)}
    start = _start_time(pid)
    if start is not None:
        tags[PID_START_TAG] = start
    return tags


def process_alive(tags: Mapping[str, str]) -> bool | None:
    """Whether the process the tags name is still running: None when they name none, or a process
    on another host (which this host cannot see)."""
    host, pid = tags.get(HOST_TAG), tags.get(PID_TAG, "")
    if host is None or not pid.isdigit() or host != socket.gethostname():
        return None
    start = _start_time(int(pid))
    if os.path.isdir("/proc"):
        return start is not None and start == tags.get(PID_START_TAG, start)
    try:  # no /proc: the pid exists (it may have been recycled)
        os.kill(int(pid), 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True
