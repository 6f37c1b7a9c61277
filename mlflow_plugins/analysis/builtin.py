"""The built-in rules, configured by one `Thresholds`."""

from __future__ import annotations

from ..thresholds import Thresholds
from .amp import AmpSkips
from .autocast import AutocastApplied
from .eval_mode import EvalMode
from .grad_health import GradientHealth
from .grad_reset import GradientsReset
from .nonfinite import Nonfinite
from .norm_effect import NormEffect
from .replicas import ReplicaSync
from .rule import Rule
from .updates import UpdatesApplied


def builtin_rules(thresholds: Thresholds) -> list[Rule]:
    """Every built-in code's rule: gradient health, updates applied, gradients reset, non-finite
    values, AMP skips, autocast coverage, normalization, replica sync (data-parallel runs only),
    eval/train mix-ups (evaluations the adapters mark)."""
    return [GradientHealth(thresholds), UpdatesApplied(thresholds), GradientsReset(), Nonfinite(),
            AmpSkips(thresholds), AutocastApplied(), NormEffect(thresholds),
            ReplicaSync(), EvalMode()]
