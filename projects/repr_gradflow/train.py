"""Entry script of document 001's reproduction: `python -m projects.repr_gradflow.train --variant fixed`.

Parses and checks every parameter (a bad one: one line on stderr, exit code 2, no MLflow run),
builds the config, and calls `train_and_evaluate`. Under `mlflow run` it logs into the run
MLflow created (`MLFLOW_RUN_ID`); standalone it starts its own.
"""

from __future__ import annotations

import sys
from typing import Sequence

from projects.common.entry import run_entry
from projects.repr_gradflow.config import PARAMS, ReprGradflowConfig, check_inputs

PROG = "repr_gradflow"


def main(argv: Sequence[str] | None = None) -> int:
    def load_runner():  # torch, Lightning and MLflow take seconds to load: only for a good config
        from projects.repr_gradflow.experiment import train_and_evaluate
        return train_and_evaluate

    return run_entry(argv, prog=PROG, description=__doc__.splitlines()[0], params=PARAMS,
                     make_config=ReprGradflowConfig.from_params, check_inputs=check_inputs,
                     load_runner=load_runner)


if __name__ == "__main__":
    sys.exit(main())
