"""Framework-neutral analysis: host-side summaries in, findings out. Imports no framework.

Every check is a `Rule` (`init`, `update`); `RuleSet` runs them and holds their states.
"""

from .amp import AmpSkips, AmpStep
from .autocast import AutocastApplied, AutocastCoverage
from .builtin import builtin_rules
from .eval_mode import EvalCheck, EvalMode
from .grad_health import GradientHealth, GradPresence
from .grad_reset import GradientsReset, GradReset
from .metric_rule import MetricRule, MetricValue
from .metrics import grad_metrics, probe_metrics
from .nonfinite import Nonfinite, NonfiniteEvent
from .norm_effect import NormEffect, NormProbe
from .replicas import ReplicaCheck, ReplicaSync
from .rule import Rule, RuleSet
from .snapshot import GradFlow, GradSnapshot
from .updates import UpdatesApplied, UpdateSnapshot

__all__ = ["AmpSkips", "AmpStep", "AutocastApplied", "AutocastCoverage", "EvalCheck", "EvalMode", "GradReset", "GradientsReset",
           "UpdateSnapshot", "UpdatesApplied", "GradFlow", "GradPresence", "GradSnapshot", "GradientHealth",
           "MetricRule", "MetricValue", "Nonfinite", "NonfiniteEvent", "NormEffect", "NormProbe",
           "ReplicaCheck", "ReplicaSync", "Rule", "RuleSet", "builtin_rules", "grad_metrics", "probe_metrics"]
