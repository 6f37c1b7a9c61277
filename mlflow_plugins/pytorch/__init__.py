"""Plain-PyTorch adapters: fused gradient statistics, hooks, and `watch`."""

from .modules import L2Normalize
from .monitor import Monitor, watch
from ..session import TrainingStopped

__all__ = ["L2Normalize", "Monitor", "TrainingStopped", "watch"]
