"""MLflow metric names and values of the analysis summaries (DESIGN.md, "MLflow conventions").

One place for every framework adapter, so PyTorch, Lightning and JAX runs log the same series.
"""

from __future__ import annotations

from typing import Iterable

from .norm_effect import NormProbe
from .snapshot import GradSnapshot


def grad_metrics(snap: GradSnapshot, per_parameter: bool) -> dict[str, float]:
    """`grad_norm/total`, and `grad_norm/<parameter>` for each parameter that had a gradient
    when `per_parameter`."""
    metrics = {"grad_norm/total": snap.total_norm}
    if per_parameter:
        metrics.update({f"grad_norm/{n}": float(v) for n, v, m in zip(snap.names, snap.l2, snap.missing)
                        if not m})
    return metrics


def probe_metrics(probes: Iterable[NormProbe]) -> dict[str, float]:
    """`norm/<module>/grad_ratio` (when measured) and `norm/<module>/magnitude_cv_in|out`."""
    metrics: dict[str, float] = {}
    for p in probes:
        if p.grad_ratio is not None:
            metrics[f"norm/{p.module}/grad_ratio"] = p.grad_ratio
        metrics[f"norm/{p.module}/magnitude_cv_in"] = p.cv_in
        metrics[f"norm/{p.module}/magnitude_cv_out"] = p.cv_out
    return metrics
