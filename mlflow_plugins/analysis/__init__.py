"""Framework-neutral analysis: host-side summaries in, findings out. Imports no framework."""

from .amp import AmpSkips
from .grad_health import GradientHealth
from .metrics import grad_metrics, probe_metrics
from .nonfinite import Nonfinite, NonfiniteEvent
from .norm_effect import NormEffect, NormProbe
from .snapshot import GradFlow, GradSnapshot

__all__ = ["AmpSkips", "GradFlow", "GradSnapshot", "GradientHealth", "Nonfinite",
           "NonfiniteEvent", "NormEffect", "NormProbe", "grad_metrics", "probe_metrics"]
