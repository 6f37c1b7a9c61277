"""Document 001 (representation gradient flow): the model, its two variants, and its data."""

from lightning_modules.repr_gradflow.datamodule import ReprGradflowDataModule, stratified_split
from lightning_modules.repr_gradflow.model import VARIANTS, ReprGradflowNet, ReprNetConfig, Variant
from lightning_modules.repr_gradflow.module import ReprGradflowModule
from lightning_modules.repr_gradflow.representation import (
    MultiScaleConv,
    RepresentationLearning,
    TemporalAttentionPooling,
)
from lightning_modules.repr_gradflow.reservoir import EchoStateReservoir
from lightning_modules.repr_gradflow.synthetic import MotifTaskConfig, generate_motif_task
from lightning_modules.repr_gradflow.user_data import DataFileError, load_npz

__all__ = [
    "VARIANTS",
    "Variant",
    "EchoStateReservoir",
    "MultiScaleConv",
    "TemporalAttentionPooling",
    "RepresentationLearning",
    "ReprNetConfig",
    "ReprGradflowNet",
    "ReprGradflowModule",
    "MotifTaskConfig",
    "generate_motif_task",
    "stratified_split",
    "load_npz",
    "DataFileError",
    "ReprGradflowDataModule",
]
