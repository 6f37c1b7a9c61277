"""fixlab's diagnostics plugin: watches training and records findings in MLflow.

Plain PyTorch: `watch(model, optimizer)`. Lightning: `GradientHealthCallback`,
`AmpNanCallback`, `NormalizationEffectCallback`. Every diagnostic returns `Finding`s.
"""

from .findings import CODES, Finding, Severity, overall_health
from .lightning import AmpNanCallback, GradientHealthCallback, NormalizationEffectCallback
from .pytorch import L2Normalize, Monitor, TrainingStopped, watch
from .thresholds import Thresholds

__all__ = ["CODES", "AmpNanCallback", "Finding", "GradientHealthCallback", "L2Normalize",
           "Monitor", "NormalizationEffectCallback", "Severity", "Thresholds", "TrainingStopped",
           "overall_health", "watch"]
