"""Score an MLGWSC-1 strain file with a registered detector: `python -m projects.cpc_snn_gw.predict`.

Loads `--model` (default `models:/cpc-snn-gw@champion`) only if it is detector data for the installed
loader (`projects.cpc_snn_gw.serving`: nothing from the artifact is run or unpickled), cuts the file
into whitened 1 s H1/L1 windows and writes one CSV row per window: GPS start time and the
probability of a signal. A bad parameter, a malformed file, a missing or refused model: one line
on stderr, exit code 2, and no output file.
"""

from __future__ import annotations

import os
import sys
import tempfile
from pathlib import Path
from typing import Sequence

import numpy as np

from projects.common.params import Param, ParamError, existing_file, parse_params, report_param_error
from projects.cpc_snn_gw.config import SPEC

PROG = "cpc_snn_gw.predict"
MODEL_PREFIX = "models:/"
SAMPLE_RATE = 2048.0  # the registered models are trained on 1 s windows at 2048 Hz
SERVING = "projects.cpc_snn_gw.serving"  # the only loader a detector's MLmodel may name


def model_uri(name: str, text: str) -> str:
    """Parameter check: a registered-model URI (`models:/NAME@ALIAS` or `models:/NAME/VERSION`)."""
    if not text.startswith(MODEL_PREFIX) or len(text) <= len(MODEL_PREFIX):
        raise ParamError(name, text, "a registered-model URI such as models:/cpc-snn-gw@champion or models:/NAME/VERSION")
    return text


def output_file(name: str, text: str) -> str:
    """Parameter check: a file path whose folder exists (the file itself is written later)."""
    parent = Path(text).expanduser().resolve().parent
    if not parent.is_dir():
        raise ParamError(name, text, "a file path in an existing directory")
    return str(Path(text).expanduser().resolve())


PARAMS: tuple[Param, ...] = (
    Param("model", model_uri, f"{MODEL_PREFIX}{SPEC.registered_model}@champion", "the registered detector"),
    Param("data_path", existing_file("a path to an existing MLGWSC-1 strain file (HDF5)"), None, "the MLGWSC-1 strain file to score"),
    Param("out", output_file, "scores.csv", "where to write start_time,probability rows"),
)


def load_detector(uri: str):
    """The detector at `uri`, loaded by the installed serving module; ParamError naming `model` if
    it is not there, or its artifact names anything but detector data."""
    from mlflow_plugins.registry import load_pyfunc

    try:
        return load_pyfunc(uri, loader_modules=(SERVING,))
    except ValueError as exc:
        raise ParamError("model", uri, "a registered model that loads", problem=str(exc)) from None


def main(argv: Sequence[str] | None = None) -> int:
    try:
        values = parse_params(PARAMS, argv, prog=PROG, description=__doc__.splitlines()[0])
        if values["data_path"] is None:
            raise ParamError("data_path", "", "a path to an existing MLGWSC-1 strain file (HDF5)")
        from jax_modules.gw_data.mlgwsc import MLGWSCFormatError, load_mlgwsc

        try:
            windows = load_mlgwsc(values["data_path"], window=1.0, sample_rate=SAMPLE_RATE)
        except MLGWSCFormatError as exc:
            raise ParamError("data_path", values["data_path"], "an MLGWSC-1 strain file", problem=str(exc)) from None
        detector = load_detector(values["model"])
    except ParamError as error:
        return report_param_error(error, PROG)
    probabilities = np.asarray(detector.predict(windows.x), dtype=np.float64)
    out = Path(values["out"])
    with tempfile.NamedTemporaryFile("w", dir=out.parent, prefix=f".{out.name}.", delete=False) as tmp:
        tmp.write("start_time,probability\n")
        for start, p in zip(windows.start_times, probabilities):
            tmp.write(f"{start:.6f},{p:.6g}\n")
    os.replace(tmp.name, out)
    print(f"{len(probabilities)} windows scored by {values['model']} -> {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
