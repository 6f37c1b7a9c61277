"""Lightning callbacks: thin adapters around the torch watches (extra `fixlab[lightning]`)."""

from .. import _require

_require(__name__, "lightning", "torch", "lightning")

from .amp_nan import AmpNanCallback
from .gradient_health import GradientHealthCallback
from .normalization_effect import NormalizationEffectCallback

__all__ = ["AmpNanCallback", "GradientHealthCallback", "NormalizationEffectCallback"]
