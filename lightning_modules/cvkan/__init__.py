"""Document 003 (complex-valued KAN): the polarizing network, its stacks, heads and LightningModule.

The data lives in `lightning_modules.cvkan.data`, which this package does not import.
"""

from lightning_modules.cvkan.aggregation import AGGREGATIONS, TokenAggregation
from lightning_modules.cvkan.heads import ClassifyHead, ComplexEmbedding, ForecastHead
from lightning_modules.cvkan.model import CVKANConfig, CVKANNet, n_params
from lightning_modules.cvkan.module import CVKANModule
from lightning_modules.cvkan.norms import NORM_TYPES, ComplexLayerNorm, ComplexRMSNorm, make_norm
from lightning_modules.cvkan.objective import loss_and_metrics
from lightning_modules.cvkan.polar import MagnitudeExp, PolarizingBlock
from lightning_modules.cvkan.polar_ops import log_magnitude, polar_features, pooled_features, recompose
from lightning_modules.cvkan.polarization import block_magnitude_cvs, magnitude_cv, token_magnitudes
from lightning_modules.cvkan.precision import (
    PRECISION_MODES,
    real_autocast_dtype,
    trainer_precision,
    trainer_precision_name,
)
from lightning_modules.cvkan.realnet import RealNet
from lightning_modules.cvkan.stacks import FlatStack, HierarchicalStack, level_sizes

__all__ = [
    "AGGREGATIONS",
    "NORM_TYPES",
    "PRECISION_MODES",
    "TokenAggregation",
    "ComplexEmbedding",
    "ClassifyHead",
    "ForecastHead",
    "CVKANConfig",
    "CVKANNet",
    "CVKANModule",
    "n_params",
    "ComplexLayerNorm",
    "ComplexRMSNorm",
    "make_norm",
    "loss_and_metrics",
    "MagnitudeExp",
    "PolarizingBlock",
    "log_magnitude",
    "polar_features",
    "pooled_features",
    "recompose",
    "magnitude_cv",
    "token_magnitudes",
    "block_magnitude_cvs",
    "trainer_precision",
    "trainer_precision_name",
    "real_autocast_dtype",
    "RealNet",
    "FlatStack",
    "HierarchicalStack",
    "level_sizes",
]
