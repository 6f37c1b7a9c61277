"""Entry script of document 001's reproduction: `python -m projects.repr_gradflow.train --variant fixed`.

Parses and checks every parameter (a bad one: one line on stderr, exit code 2, no MLflow run),
builds the config, and calls `train_and_evaluate`. Under `mlflow run` it logs into the run
MLflow created (`MLFLOW_RUN_ID`); standalone it starts its own.
"""

from __future__ import annotations

import sys
from typing import Sequence

from projects.common.params import ParamError, parse_params, report_param_error
from projects.repr_gradflow.config import PARAMS, ReprGradflowConfig, check_inputs

PROG = "repr_gradflow"


def main(argv: Sequence[str] | None = None) -> int:
    try:
        values = parse_params(PARAMS, argv, prog=PROG, description=__doc__.splitlines()[0])
        config = ReprGradflowConfig.from_params(values)
        check_inputs(config)
    except ParamError as error:
        return report_param_error(error, PROG)
    # Imported only now: torch, Lightning and MLflow take seconds to load.
    from projects.repr_gradflow.experiment import train_and_evaluate

    print(train_and_evaluate(config).text())
    return 0


if __name__ == "__main__":
    sys.exit(main())
