"""Document 002 (poetry sequence autoencoders): config, curriculum, encoder/decoder, losses,
latent metrics and the LightningModule.

The data lives in `lightning_modules.poetry_ae.data`, which this package does not import.
"""

from lightning_modules.poetry_ae.autoencoder import PoetryAutoencoder, init_weights, n_params
from lightning_modules.poetry_ae.config import CELLS, DOCUMENT_PHASES, INITS, LOSSES, TEACHER_FORCING, AEConfig
from lightning_modules.poetry_ae.curriculum import Curriculum, Phase, teacher_mask
from lightning_modules.poetry_ae.decoder import RNN_CELLS, EncoderAttention, SequenceDecoder
from lightning_modules.poetry_ae.encoder import RNN_LAYERS, SequenceEncoder
from lightning_modules.poetry_ae.losses import (
    LOSS_FNS,
    hybrid_loss,
    masked_mse,
    reconstruction_loss,
    rmse,
    sequence_cosine,
    token_cosine,
)
from lightning_modules.poetry_ae.metrics import effective_dims, participation_ratio, pca_variance
from lightning_modules.poetry_ae.module import PoetryAEModule
from lightning_modules.poetry_ae.registered import RegisteredAutoencoder

__all__ = [
    "CELLS",
    "DOCUMENT_PHASES",
    "INITS",
    "LOSSES",
    "TEACHER_FORCING",
    "AEConfig",
    "Curriculum",
    "Phase",
    "teacher_mask",
    "RNN_LAYERS",
    "SequenceEncoder",
    "RNN_CELLS",
    "EncoderAttention",
    "SequenceDecoder",
    "PoetryAutoencoder",
    "init_weights",
    "n_params",
    "LOSS_FNS",
    "masked_mse",
    "rmse",
    "token_cosine",
    "sequence_cosine",
    "hybrid_loss",
    "reconstruction_loss",
    "effective_dims",
    "pca_variance",
    "participation_ratio",
    "PoetryAEModule",
    "RegisteredAutoencoder",
]
