"""AUTOCAST_NOT_APPLIED: matrix-multiplying modules that ran wider than autocast asked for.

Pure: `AutocastCoverage`s in (one sampled forward inside an autocast region: each
matrix-multiplying module's output dtype), findings out. A module that ran in float32 (or
float64) there did not get the speed-up the region was written for: autocast was opened for
another device type, disabled around the module, the module is float64, or the operation has no
lower-precision kernel on this device (e.g. GRU on CPU). Information: float32 may be meant.
"""

from __future__ import annotations

from dataclasses import dataclass

from ..findings import Finding, name_list
from .once import report_once
from .rule import Rule

_WIDE = ("float32", "float64", "complex64", "complex128")


@dataclass(frozen=True)
class AutocastCoverage:
    """The dtypes matrix-multiplying modules produced in one forward inside an autocast region.

    Attributes:
        step: the optimizer step of the forward.
        requested: the dtype the region asked for, e.g. "bfloat16".
        modules: module paths, in the order they ran.
        dtypes: the dtype of each module's first floating output, e.g. "float32".
    """

    step: int
    requested: str
    modules: tuple[str, ...]
    dtypes: tuple[str, ...]


class AutocastApplied(Rule):
    """AUTOCAST_NOT_APPLIED, once per run, naming the modules that ran wide."""

    name, accepts = "autocast_applied", (AutocastCoverage,)

    def init(self) -> frozenset:
        return frozenset()

    def update(self, seen: AutocastCoverage, reported: frozenset) -> tuple[list[Finding], frozenset]:
        wide = [(m, d) for m, d in zip(seen.modules, seen.dtypes) if d in _WIDE and d != seen.requested]
        if not wide:
            return [], reported
        names = [m for m, _ in wide]
        return report_once(reported, "AUTOCAST_NOT_APPLIED", seen.step, "autocast", {
            "n_modules": len(wide), "n_checked": len(seen.modules), "dtype": wide[0][1],
            "requested": seen.requested,
            "modules": name_list(names)})
