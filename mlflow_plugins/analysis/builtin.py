"""The built-in rules, configured by one `Thresholds`."""

from __future__ import annotations

from ..thresholds import Thresholds
from .amp import AmpSkips
from .grad_health import GradientHealth
from .nonfinite import Nonfinite
from .norm_effect import NormEffect
from .rule import Rule


def builtin_rules(thresholds: Thresholds) -> list[Rule]:
    """Every built-in code's rule: gradient health, non-finite values, AMP skips, normalization."""
    return [GradientHealth(thresholds), Nonfinite(), AmpSkips(thresholds), NormEffect(thresholds)]
