"""Plain-PyTorch adapters: fused gradient stats, hooks, and `watch` (extra `fixlab[torch]`)."""

from .. import _require

_require(__name__, "torch", "torch")

from .modules import L2Normalize
from .monitor import Monitor, watch
from ..session import TrainingStopped

__all__ = ["L2Normalize", "Monitor", "TrainingStopped", "watch"]
