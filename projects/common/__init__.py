"""What every project's entry script shares: parameter checking and MLflow run handling.

`params` imports only the standard library and is loaded eagerly, so a bad parameter is
reported before anything heavy is imported; the MLflow helpers of `tracking` load on first use.
"""

from __future__ import annotations

import importlib
from typing import Any

from projects.common.params import (
    EXIT_BAD_PARAM,
    Param,
    ParamError,
    choice,
    integer,
    optional_file,
    parse_params,
    real,
    report_param_error,
)

_LAZY = {name: "projects.common.tracking" for name in (
    "RUN_ID_ENV", "fixlab_tags", "tracked_run", "log_params_once",
    "set_tags_now")}

__all__ = [
    "EXIT_BAD_PARAM",
    "Param",
    "ParamError",
    "choice",
    "integer",
    "optional_file",
    "parse_params",
    "real",
    "report_param_error",
    *_LAZY,
]


def __getattr__(name: str) -> Any:
    if name not in _LAZY:
        raise AttributeError(f"module 'projects.common' has no attribute {name!r}")
    value = getattr(importlib.import_module(_LAZY[name]), name)
    globals()[name] = value
    return value
