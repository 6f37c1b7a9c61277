"""Lightning callbacks: thin adapters around the torch watches (extra `fixlab[lightning]`)."""

from .. import _require

_require(__name__, "lightning", "torch", "lightning")

from .amp_nan import AmpNanCallback
from .eval_mode import EvalModeCallback
from .gradient_health import GradientHealthCallback
from .normalization_effect import NormalizationEffectCallback

__all__ = ["AmpNanCallback", "EvalModeCallback", "GradientHealthCallback", "NormalizationEffectCallback"]
