"""Disk cache of simulated data sets, keyed by config; misses are simulated in a separate process.

The training process imports neither ripplegw nor bilby from here: the generator process does
(ripplegw would switch this process's JAX to float64).
"""

from __future__ import annotations

import codecs
import dataclasses
import os
import signal
import subprocess
import sys
import warnings
from pathlib import Path
from typing import IO, TextIO

from .config import ERROR_PREFIX, GWDataConfig
from .dataset import GWDataset
from .storage import InvalidCacheError, read_dataset

#: Folder that holds the `jax_modules` package, for the generator's import path.
_PACKAGE_ROOT = Path(__file__).resolve().parents[2]


class GenerationError(RuntimeError):
    """The generator process failed; the message is its one-line reason."""


def cache_path(config: GWDataConfig, cache_dir: Path) -> Path:
    """Where the data set for `config` lives in `cache_dir`."""
    return Path(cache_dir) / f"gw_data_{config.cache_key()}.npz"


def load_or_generate(config: GWDataConfig, cache_dir: Path, progress: bool = True) -> GWDataset:
    """The data set for `config`: read from `cache_dir` if a valid entry exists, else simulated.

    A corrupt, truncated or mismatched entry is never trusted: it is regenerated, with a
    one-line `RuntimeWarning`. Simulation runs in a separate process (see `generate`).

    Args:
        config: what to simulate.
        cache_dir: folder of cache entries (created if missing).
        progress: pass the generator's progress bar through to this process's stderr.

    Raises:
        GenerationError: the generator process failed (its reason is the message).

    Example:
        >>> data = load_or_generate(GWDataConfig(n_train=16, n_val=8, n_test=8), Path("gw_cache"))
        >>> data.train.x.shape, data.generated
        ((16, 2, 2048), True)
    """
    path = cache_path(config, cache_dir)
    if path.exists():
        try:
            return read_dataset(path, config)
        except InvalidCacheError as exc:
            warnings.warn(f"gw_data: cache entry {path} is invalid ({exc}); regenerating", RuntimeWarning, stacklevel=2)
    path.parent.mkdir(parents=True, exist_ok=True)
    run_generator(config, path, progress=progress)
    try:
        dataset = read_dataset(path, config)
    except InvalidCacheError as exc:
        raise GenerationError(f"the generator wrote an invalid data set to {path} ({exc})") from None
    return dataclasses.replace(dataset, generated=True)


def run_generator(config: GWDataConfig, out: Path, progress: bool = True) -> None:
    """Run `python -m jax_modules.gw_data.generate` for `config`, writing `out`.

    The child's stderr (the progress bar) is relayed to this process's stderr as it arrives
    when `progress` is set; JAX in the child runs on the CPU, so it never competes for an
    accelerator the training process holds, and the data does not depend on the device.

    Raises:
        GenerationError: the child exited non-zero; the message is its error line.
    """
    command = [sys.executable, "-m", "jax_modules.gw_data.generate", "--config", config.to_json(), "--out", str(out)]
    if not progress:
        command.append("--no-progress")
    env = dict(os.environ, JAX_PLATFORMS="cpu")
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(_PACKAGE_ROOT), env.get("PYTHONPATH")]))
    process = subprocess.Popen(
        command, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=env
    )
    try:
        tail = _relay(process.stderr, sys.stderr if progress else None)
        status = process.wait()
    finally:
        if process.poll() is None:  # interrupted while relaying: do not leave the child running
            process.kill()
            process.wait()
    if status != 0:
        raise GenerationError(f"GW data generation failed (exit status {status}): {_reason(tail, status)}")


def _relay(stream: IO[bytes], sink: TextIO | None, keep: int = 8192) -> str:
    """Copy `stream` to `sink` as bytes arrive (tqdm redraws with bare '\\r'); return its tail."""
    decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")
    tail = ""
    while chunk := os.read(stream.fileno(), 4096):
        text = decoder.decode(chunk)
        if sink is not None:
            sink.write(text)
            sink.flush()
        tail = (tail + text)[-keep:]
    stream.close()
    return tail


def _reason(tail: str, status: int) -> str:
    """The child's error line; else the signal that killed it; else its last line of output."""
    lines = [line.strip() for line in tail.replace("\r", "\n").splitlines() if line.strip()]
    for line in reversed(lines):
        if line.startswith(ERROR_PREFIX):
            return line[len(ERROR_PREFIX) :]
    if status < 0:
        return f"killed by {signal.Signals(-status).name} (out of memory, or stopped from outside)"
    return lines[-1] if lines else "no output on stderr"
