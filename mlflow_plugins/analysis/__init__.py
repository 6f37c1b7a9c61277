"""Framework-neutral analysis: host-side summaries in, findings out. Imports no framework.

Every check is a `Rule` (`init`, `update`); `RuleSet` runs them and holds their states.
"""

from .amp import AmpSkips, AmpStep
from .builtin import builtin_rules
from .grad_health import GradientHealth, GradPresence
from .metric_rule import MetricRule, MetricValue
from .metrics import grad_metrics, probe_metrics
from .nonfinite import Nonfinite, NonfiniteEvent
from .norm_effect import NormEffect, NormProbe
from .rule import Rule, RuleSet
from .snapshot import GradFlow, GradSnapshot

__all__ = ["AmpSkips", "AmpStep", "GradFlow", "GradPresence", "GradSnapshot", "GradientHealth",
           "MetricRule", "MetricValue", "Nonfinite", "NonfiniteEvent", "NormEffect", "NormProbe",
           "Rule", "RuleSet", "builtin_rules", "grad_metrics", "probe_metrics"]
