"""Generator process: `python -m jax_modules.gw_data.generate --config JSON --out FILE.npz [--bank N | --waveforms N]`.

Simulation imports ripplegw, which switches JAX to float64 process-wide; running it here keeps
the training process in float32. `generate_dataset` launches this and reads what it writes: a
plain `.npz` (no pickle) of `dataset_arrays`. Failures end the process with status 1 and one
line on stderr starting with `ERROR_PREFIX`.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

import numpy as np

from .config import ERROR_PREFIX, GWDataConfig
from .storage import bank_arrays, dataset_arrays, waveform_bank_arrays


def main(argv: list[str] | None = None) -> int:
    """Simulate the data set for `--config` and write it to `--out`; return the exit status."""
    parser = argparse.ArgumentParser(prog="python -m jax_modules.gw_data.generate", description=__doc__.split("\n")[0])
    parser.add_argument("--config", required=True, help="GWDataConfig fields as a JSON object")
    parser.add_argument("--out", required=True, type=Path, help="the .npz file to write")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")
    parser.add_argument("--bank", type=int, default=None, metavar="N",
                        help="write the matched filter's template bank (an N x N mass grid) instead of the data")
    parser.add_argument("--waveforms", type=int, default=None, metavar="N",
                        help="write N waveforms for fresh training windows (a waveform bank) instead of the data")
    args = parser.parse_args(argv)
    try:
        config = GWDataConfig.from_json(args.config)
        if not args.out.parent.is_dir():
            raise FileNotFoundError(f"--out folder {str(args.out.parent)!r} does not exist")
        if args.bank is not None:
            from .template_bank import make_bank  # imports ripplegw: float64 from here on

            _write(bank_arrays(make_bank(config, args.bank)), args.out)
        elif args.waveforms is not None:
            from .waveform_bank import make_waveform_bank  # imports ripplegw: float64 from here on

            _write(waveform_bank_arrays(make_waveform_bank(config, args.waveforms)), args.out)
        else:
            from .simulate import simulate_dataset  # imports ripplegw: float64 from here on

            _write(dataset_arrays(simulate_dataset(config, progress=not args.no_progress)), args.out)
    except Exception as exc:  # the parent shows this one line; a traceback would bury it
        message = " ".join(f"{type(exc).__name__}: {exc}".split())
        print(ERROR_PREFIX + message, file=sys.stderr, flush=True)
        return 1
    return 0


def _write(arrays: dict[str, np.ndarray], out: Path) -> None:
    """Write beside `out`, then rename: a killed child never leaves a partial file under its name."""
    tmp = out.with_name(f".{out.name}.tmp")
    try:
        with open(tmp, "wb") as file:
            np.savez(file, allow_pickle=False, **arrays)
        os.replace(tmp, out)
    finally:
        tmp.unlink(missing_ok=True)


if __name__ == "__main__":
    sys.exit(main())
