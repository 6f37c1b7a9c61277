"""Eval/train mix-ups: EVAL_IN_TRAIN_MODE, EVAL_NOT_DETERMINISTIC, EVAL_UPDATES_STATISTICS,
EVAL_BEFORE_INIT.

Pure: one `EvalCheck` per evaluation (a validation epoch, or a block the user marks as
evaluation) in, findings out. Adapters collect it once per evaluation: which mode-dependent
modules were in training mode, how far two passes over one batch differ, which running
statistics the evaluation changed, which lazily initialised layers were still uninitialised.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from ..findings import Finding, name_list
from .once import report_once
from .rule import Rule



@dataclass(frozen=True)
class EvalCheck:
    """What one evaluation looked like.

    Attributes:
        step: the training step the evaluation ran at.
        where: the evaluated model (its class name): the place findings are reported at.
        train_mode: mode-dependent modules (dropout, batch norm, spectral norm, ...) that were in
            training mode during the evaluation, by path.
        stochastic: those of `train_mode` that draw random numbers in training mode (dropout):
            they already explain outputs that differ between two passes.
        max_abs_diff: the largest |difference| between two evaluation passes over one batch;
            None when no pass could be repeated.
        rel_diff: the largest difference relative to the output's largest magnitude; None
            when not checked.
        changed: running-statistic buffers (e.g. `bn.running_mean`) the evaluation changed.
        uninitialised: lazily initialised layers evaluated before their first training-mode
            forward (spectral normalization whose power iteration never ran), by path.
    """

    step: int
    where: str
    train_mode: tuple[str, ...] = ()
    stochastic: tuple[str, ...] = ()
    max_abs_diff: float | None = None
    rel_diff: float | None = None
    changed: tuple[str, ...] = ()
    uninitialised: tuple[str, ...] = ()


class EvalMode(Rule):
    """The four eval/train findings, each reported once per evaluated model.

    A symptom that a reported cause explains is not reported again: outputs that differ while a
    dropout is in training mode, or a running statistic that changed while its module was in
    training mode, are EVAL_IN_TRAIN_MODE alone (one bug, one finding, the right fix).

    Args:
        rel_tol: two passes whose outputs differ by more than this, relative to the output's
            largest magnitude, are EVAL_NOT_DETERMINISTIC (above the noise of non-deterministic
            accelerator kernels, far below what dropout does).

    Raises:
        ValueError: `rel_tol` is not a number in (0, 1).
    """

    name, accepts = "eval_mode", (EvalCheck,)

    def __init__(self, rel_tol: float = 1e-4) -> None:
        if isinstance(rel_tol, bool) or not isinstance(rel_tol, (int, float)) or not 0 < rel_tol < 1:
            raise ValueError(f"rel_tol={rel_tol!r} is out of range; allowed: a number strictly "
                             "between 0 and 1 (e.g. 1e-4)")
        self.rel_tol = float(rel_tol)

    def init(self) -> frozenset:
        return frozenset()

    def update(self, check: EvalCheck, reported: frozenset) -> tuple[list[Finding], frozenset]:
        findings: list[Finding] = []
        found: list[Finding]
        if check.uninitialised:
            found, reported = report_once(reported, "EVAL_BEFORE_INIT", check.step, check.where, {
                "n_modules": len(check.uninitialised), "modules": name_list(check.uninitialised)})
            findings += found
        if check.train_mode:
            found, reported = report_once(reported, "EVAL_IN_TRAIN_MODE", check.step, check.where, {
                "n_modules": len(check.train_mode), "modules": name_list(check.train_mode)})
            findings += found
        if _differs(check, self.rel_tol) and not check.stochastic:
            found, reported = report_once(reported, "EVAL_NOT_DETERMINISTIC", check.step, check.where, {
                "max_abs_diff": float(check.max_abs_diff), "rel_diff": float(check.rel_diff),
                "threshold": self.rel_tol})
            findings += found
        unexplained = tuple(b for b in check.changed if _owner(b) not in check.train_mode)
        if unexplained:
            found, reported = report_once(reported, "EVAL_UPDATES_STATISTICS", check.step, check.where, {
                "n_buffers": len(unexplained), "buffers": name_list(unexplained)})
            findings += found
        return findings, reported


def _differs(check: EvalCheck, rel_tol: float) -> bool:
    """Outputs differ beyond the tolerance (a NaN difference, one pass non-finite, counts)."""
    if check.rel_diff is None or check.max_abs_diff is None:
        return False
    return check.max_abs_diff > 0 and (math.isnan(check.rel_diff) or check.rel_diff > rel_tol)


def _owner(buffer: str) -> str:
    """The module holding a buffer path (`block.bn.running_mean` -> `block.bn`)."""
    return buffer.rpartition(".")[0]

