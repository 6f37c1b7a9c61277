"""`RunFolder`: where one run keeps what it needs to be continued after a crash.

`$FIXLAB_CHECKPOINTS/<run id>/` (default `./fixlab_checkpoints/<run id>/`, beside the default
`mlflow.db`) holds `config.json` (the run's config, written first), the project's checkpoints
(`last.ckpt` and `best.ckpt` for Lightning projects, `train_state.msgpack` for JAX ones) and a lock
that the training process holds while it runs. The folder's absolute path is the run's tag
`fixlab.checkpoints`. A run that ends FINISHED removes its folder (its model is in MLflow); a run
that dies keeps it, and `fixlab resume <run id>` continues from it.
"""

from __future__ import annotations

import fcntl
import json
import os
import shutil
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Iterator

__all__ = ["CHECKPOINTS_ENV", "CHECKPOINTS_TAG", "RunFolder", "RunBusyError", "checkpoints_root"]

CHECKPOINTS_ENV = "FIXLAB_CHECKPOINTS"
CHECKPOINTS_TAG = "fixlab.checkpoints"
_CONFIG = "config.json"
_LOCK = ".lock"


class RunBusyError(RuntimeError):
    """Another live process is training this run (it holds the folder's lock)."""


def checkpoints_root() -> Path:
    """`$FIXLAB_CHECKPOINTS` if set, else `./fixlab_checkpoints` (absolute)."""
    return Path(os.environ.get(CHECKPOINTS_ENV) or "fixlab_checkpoints").absolute()


class RunFolder:
    """The checkpoint folder of one run; see the module docstring.

    Args:
        path: the folder (created by `hold`).
    """

    def __init__(self, path: str | os.PathLike) -> None:
        self.path = Path(path).absolute()

    @classmethod
    def for_run(cls, run_id: str) -> "RunFolder":
        """The folder a new run `run_id` gets under `checkpoints_root()`."""
        return cls(checkpoints_root() / run_id)

    def file(self, name: str) -> Path:
        return self.path / name

    @contextmanager
    def hold(self) -> Iterator["RunFolder"]:
        """Create the folder and hold its lock for the block: one process trains a run at a time.
        The lock is the kernel's (`flock`), so a killed process never leaves it behind.

        Raises:
            RunBusyError: another live process holds it.
        """
        self.path.mkdir(parents=True, exist_ok=True)
        with open(self.file(_LOCK), "a+") as lock:
            try:
                fcntl.flock(lock.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                raise RunBusyError(f"{self.path} is held by another live process training this run; "
                                   "wait for it to end or stop it first") from None
            try:
                yield self
            finally:
                fcntl.flock(lock.fileno(), fcntl.LOCK_UN)

    def write_config(self, project: str, config_json: str) -> None:
        """Record which project and config the run is (atomically: a crash leaves the old file)."""
        tmp = self.file(_CONFIG + ".tmp")
        tmp.write_text(json.dumps({"project": project, "config": json.loads(config_json)}, indent=1))
        os.replace(tmp, self.file(_CONFIG))

    def read_config(self) -> tuple[str, str]:
        """(project, config JSON) as `write_config` recorded them.

        Raises:
            FileNotFoundError / ValueError: no readable `config.json` in the folder.
        """
        data: Any = json.loads(self.file(_CONFIG).read_text())
        if not isinstance(data, dict) or not isinstance(data.get("project"), str) or "config" not in data:
            raise ValueError(f"{self.file(_CONFIG)} is not a fixlab run config")
        return data["project"], json.dumps(data["config"])

    def remove(self) -> None:
        """Delete the folder and everything in it (the run is done)."""
        shutil.rmtree(self.path, ignore_errors=True)
