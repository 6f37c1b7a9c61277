"""Entry script of document 004's reproduction: `python -m projects.fixmatch_pu.train --variant original`.

Parses and checks every parameter (a bad one: one line on stderr, exit code 2, no MLflow run),
builds the config, and calls `train_and_evaluate`. Under `mlflow run` it logs into the run
MLflow created (`MLFLOW_RUN_ID`); standalone it starts its own.
"""

from __future__ import annotations

import sys
from typing import Sequence

from projects.common.entry import project_main


def main(argv: Sequence[str] | None = None) -> int:
    return project_main("projects.fixmatch_pu", argv, description=__doc__.splitlines()[0])


if __name__ == "__main__":
    sys.exit(main())
