"""Simulate a data set in a separate process and hand its arrays back to this one.

Simulation imports ripplegw, which switches JAX to float64 for the whole process (and bilby,
which is heavy); the training process must stay in float32, so neither is imported here: a
child process (`python -m jax_modules.gw_data.generate`) simulates and writes a plain `.npz`
that this process reads back. Caching is the caller's business (`projects.common.data_cache`).
"""

from __future__ import annotations

import codecs
import os
import signal
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import IO, Callable, TextIO, TypeVar

import numpy as np

from .config import ERROR_PREFIX, GWDataConfig
from .dataset import GWDataset
from .matched_filter import TemplateBank
from .online import WaveformBank
from .storage import bank_from_arrays, dataset_from_arrays, waveform_bank_from_arrays

__all__ = ["GenerationError", "generate_dataset", "generate_bank", "generate_waveform_bank", "run_generator"]

T = TypeVar("T")

#: Folder that holds the `jax_modules` package, for the generator's import path.
_PACKAGE_ROOT = Path(__file__).resolve().parents[2]


class GenerationError(RuntimeError):
    """The generator process failed; the message is its one-line reason."""


def generate_dataset(config: GWDataConfig, progress: bool = True) -> GWDataset:
    """Simulate the data set for `config` in a generator process; deterministic for `config.seed`.

    The child writes into a private temporary folder that is removed before this returns (or
    raises), so nothing is left on disk.

    Args:
        config: what to simulate.
        progress: pass the generator's progress bar through to this process's stderr.

    Raises:
        GenerationError: the generator process failed (its reason is the message), or wrote
            arrays that do not fit `config`.

    Example:
        >>> data = generate_dataset(GWDataConfig(n_train=16, n_val=8, n_test=8), progress=False)
        >>> data.train.x.shape, data.generated
        ((16, 2, 2048), True)
    """
    with tempfile.TemporaryDirectory(prefix="gw_data_") as folder:
        out = Path(folder) / "dataset.npz"
        run_generator(config, out, progress=progress)
        try:
            with np.load(out, allow_pickle=False) as npz:
                arrays = {name: npz[name] for name in npz.files}
            return dataset_from_arrays(arrays, config, generated=True)
        except (OSError, ValueError) as exc:  # InvalidDataError included; a bug in the generator
            raise GenerationError(f"the generator wrote an unusable data set ({type(exc).__name__}: {exc})") from None


def generate_bank(config: GWDataConfig, n_masses: int) -> TemplateBank:
    """The matched filter's template bank for `config`'s windows and mass range (an `n_masses` x
    `n_masses` grid), made in a generator process like the data.

    Raises:
        GenerationError: the generator process failed, or wrote a bank that does not fit `config`.
    """
    return _generated(config, ["--bank", str(int(n_masses))], lambda arrays: bank_from_arrays(arrays, config),
                      "template bank")


def generate_waveform_bank(config: GWDataConfig, n_waveforms: int) -> WaveformBank:
    """`n_waveforms` waveforms for fresh training windows of `config`'s kind (`online.FreshWindows`),
    made in a generator process like the data; deterministic for `config.seed`.

    Raises:
        GenerationError: the generator process failed, or wrote a bank that does not fit `config`.
    """
    return _generated(config, ["--waveforms", str(int(n_waveforms))],
                      lambda arrays: waveform_bank_from_arrays(arrays, config), "waveform bank")


def _generated(config: GWDataConfig, extra: list[str], convert: Callable[[dict[str, np.ndarray]], T],
               what: str) -> T:
    """What the generator writes with `extra` arguments, read back through `convert` (which checks it)."""
    with tempfile.TemporaryDirectory(prefix="gw_bank_") as folder:
        out = Path(folder) / "bank.npz"
        run_generator(config, out, progress=False, extra=extra)
        try:
            with np.load(out, allow_pickle=False) as npz:
                return convert({name: npz[name] for name in npz.files})
        except (OSError, ValueError) as exc:
            raise GenerationError(f"the generator wrote an unusable {what} ({type(exc).__name__}: {exc})") from None


def run_generator(config: GWDataConfig, out: Path, progress: bool = True, extra: list[str] | None = None) -> None:
    """Run `python -m jax_modules.gw_data.generate` for `config`, writing `out`.

    The child's stderr (the progress bar) is relayed to this process's stderr as it arrives
    when `progress` is set; JAX in the child runs on the CPU, so it never competes for an
    accelerator the training process holds, and the data does not depend on the device.

    Args:
        extra: more arguments for the generator (`["--bank", "8"]`: the template bank instead).

    Raises:
        GenerationError: the child exited non-zero; the message is its error line.
    """
    command = ["--config", config.to_json(), "--out", str(out)] + ([] if progress else ["--no-progress"])
    run_module("jax_modules.gw_data.generate", command + (extra or []), progress, what="GW data generation")


def run_module(module: str, args: list[str], progress: bool, *, what: str) -> None:
    """Run `python -m module args` on the CPU, relaying its stderr (progress bars) when `progress`
    is set, and never leaving it running if this process is interrupted.

    Raises:
        GenerationError: the child exited non-zero; "`what` failed (exit status N): its error line".
    """
    env = dict(os.environ, JAX_PLATFORMS="cpu")
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(_PACKAGE_ROOT), env.get("PYTHONPATH")]))
    process = subprocess.Popen([sys.executable, "-m", module, *args], stdin=subprocess.DEVNULL,
                               stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=env)
    try:
        tail = _relay(process.stderr, sys.stderr if progress else None)
        status = process.wait()
    finally:
        if process.poll() is None:  # interrupted while relaying: do not leave the child running
            process.kill()
            process.wait()
    if status != 0:
        raise GenerationError(f"{what} failed (exit status {status}): {_reason(tail, status)}")


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
