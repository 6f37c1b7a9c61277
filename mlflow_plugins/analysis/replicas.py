"""Replica sync: REPLICAS_DIVERGED, data-parallel processes that hold different parameters.

Pure: an adapter reduces one checksum row per parameter across the ranks (its max and its min,
one collective) and hands them over as a `ReplicaCheck`; the rule names the parameters whose
replicas differ. Correct DDP keeps every rank's parameters bit-identical (each rank applies the
same all-reduced gradient with the same optimizer), so any difference above rounding noise is a
bug: a forward that bypasses the wrapper, clipping or a scheduler step on one rank only,
training under `no_sync()` for good.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from ..findings import Finding, name_list
from .once import report_once
from .rule import Rule

REPLICAS = "replicas"  # where the finding is: the model's copies, not one module

# Relative tolerance on the checksums (|max - min| over ranks / the parameter's L2 norm).
# Measured (tests/test_ddp_replicas.py, 2 gloo ranks on CPU): correct DDP, with and without
# no_sync() accumulation, plain and Lightning, keeps the replicas bit-identical (all-gathered
# parameters differ by exactly 0), so their checksums are equal and the spread is 0. The
# checksums accumulate in float64: the same values summed in another order (another thread
# count or device) differ by < 1e-13 of the norm, where float32 accumulation differed by up to
# 9e-5 on a 4M-element tensor. One float32 ulp on every element moves a checksum by <= 6e-8 of
# the norm, so 1e-6 (~16 ulp of coherent drift) leaves room for rounding on mixed hardware,
# while the planted bugs differ by 9.4e-3 to 0.24 at their first check (a forward through
# `.module`, clipping or a scheduler step on rank 0 only, no_sync() for good, a re-initialised
# head). A difference confined to a few elements of a large tensor can stay below it.
DEFAULT_TOLERANCE = 1e-6


@dataclass(frozen=True)
class ReplicaCheck:
    """One parameter checksum per parameter, reduced across the data-parallel ranks.

    Attributes:
        step: the optimizer step after which the ranks' parameters were compared.
        world_size: the number of ranks compared.
        names: parameter paths, in model order.
        high: per-parameter maximum over ranks of each checksum, shape (n, k); column 0 is the
            parameter's L2 norm, the others are bounded by it (e.g. sum / sqrt(numel)).
        low: the minimum over ranks, same shape.
        steps: (fewest, most) optimizer steps any rank had taken, when the adapter compares
            them: different counts mean one rank stepped more often.
    """

    step: int
    world_size: int
    names: tuple[str, ...]
    high: np.ndarray
    low: np.ndarray
    steps: tuple[int, int] | None = None

    def rel_diff(self) -> np.ndarray:
        """Per parameter, the largest spread of a checksum over ranks relative to its L2 norm:
        0 when every rank holds the same values; NaN where a checksum is not finite (that is
        NONFINITE's to report)."""
        high = np.asarray(self.high, np.float64).reshape(len(self.names), -1)
        low = np.asarray(self.low, np.float64).reshape(len(self.names), -1)
        with np.errstate(invalid="ignore", over="ignore"):
            spread = np.max(high - low, axis=1)
            scale = np.maximum(np.abs(high[:, 0]), np.abs(low[:, 0]))
            finite = np.all(np.isfinite(high) & np.isfinite(low), axis=1)
            rel = np.where(spread == 0, 0.0,
                           np.divide(spread, scale, out=np.full(len(spread), np.inf), where=scale > 0))
        return np.where(finite, rel, np.nan)


class ReplicaSync(Rule):
    """REPLICAS_DIVERGED, once per run: the first parameters (in model order) whose replicas differ.

    A check of one process (`world_size` 1) never reports: single-process runs are unaffected.

    Args:
        tolerance: a parameter differs when its checksums' spread over ranks exceeds this
            fraction of its L2 norm (see `DEFAULT_TOLERANCE` for why 1e-6).

    Raises:
        ValueError: `tolerance` is not a number in [0, 1).

    Example:
        >>> rules = RuleSet([ReplicaSync()])
        >>> rules.observe(ReplicaCheck(0, 2, ("fc.weight",), np.array([[2.0, 1.0]]),
        ...                            np.array([[1.0, 1.0]])))[0].code
        'REPLICAS_DIVERGED'
    """

    name, accepts = "replica_sync", (ReplicaCheck,)

    def __init__(self, tolerance: float = DEFAULT_TOLERANCE) -> None:
        if isinstance(tolerance, bool) or not isinstance(tolerance, (int, float)) \
                or not math.isfinite(tolerance) or not 0 <= tolerance < 1:
            raise ValueError(f"tolerance={tolerance!r} is not allowed; allowed: a number in [0, 1), "
                             f"e.g. {DEFAULT_TOLERANCE:g}")
        self.tolerance = float(tolerance)

    def init(self) -> frozenset:
        return frozenset()

    def update(self, check: ReplicaCheck, reported: frozenset) -> tuple[list[Finding], frozenset]:
        if check.world_size < 2 or ("REPLICAS_DIVERGED", REPLICAS) in reported:
            return [], reported
        rel = check.rel_diff()
        differ = np.flatnonzero(rel > self.tolerance)  # NaN compares False
        if differ.size == 0:
            return [], reported
        names = [check.names[i] for i in differ]
        evidence = {"n_differ": len(names), "world_size": int(check.world_size),
                    "max_rel_diff": float(np.max(rel[differ])),
                    "params": name_list(names),
                    "n_params": len(check.names)}
        if check.steps is not None and check.steps[0] != check.steps[1]:
            evidence["rank_steps"] = f"{check.steps[0]} to {check.steps[1]}"
        return report_once(reported, "REPLICAS_DIVERGED", check.step, REPLICAS, evidence)
