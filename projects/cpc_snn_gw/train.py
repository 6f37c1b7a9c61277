"""Entry script of document 000's reproduction: `python -m projects.cpc_snn_gw.train --variant cpc_fixed`.

Parses and checks every parameter (a bad one: one line on stderr, exit code 2, no MLflow run),
opens the user's HDF5 files if given (a malformed one: the same), and calls `train_and_evaluate`.
Under `mlflow run` it logs into the run MLflow created (`MLFLOW_RUN_ID`); standalone it starts its own.
"""

from __future__ import annotations

import sys
from typing import Sequence

from projects.common.entry import run_entry
from projects.common.params import ParamError
from projects.cpc_snn_gw.config import PARAMS, CpcGwConfig

PROG = "cpc_snn_gw"


def check_inputs(config: CpcGwConfig) -> None:
    """Read the user's MLGWSC-1 files once, so a malformed one is a parameter error, not a failed run."""
    if not config.data_path:
        return
    from jax_modules.gw_data.mlgwsc import MLGWSCFormatError, load_mlgwsc

    try:
        windows = load_mlgwsc(config.data_path, config.injections_path, max_windows=1)
    except MLGWSCFormatError as exc:
        name = "injections_path" if config.injections_path and config.injections_path in str(exc) else "data_path"
        raise ParamError(name, getattr(config, name), "an MLGWSC-1 HDF5 file", problem=str(exc)) from None
    if len(windows) == 0:
        raise ParamError("data_path", config.data_path, "an MLGWSC-1 file with at least one window")


def main(argv: Sequence[str] | None = None) -> int:
    def load_runner():  # JAX, Flax and MLflow take seconds to load: only for a good config
        from projects.cpc_snn_gw.experiment import train_and_evaluate
        return train_and_evaluate

    return run_entry(argv, prog=PROG, description=__doc__.splitlines()[0], params=PARAMS,
                     make_config=CpcGwConfig.from_params, check_inputs=check_inputs, load_runner=load_runner)


if __name__ == "__main__":
    sys.exit(main())
