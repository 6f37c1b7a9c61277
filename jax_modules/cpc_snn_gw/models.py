"""Document 000's models assembled from a ModelConfig: CPC(-SNN) classifiers and the AResGW-style ResNet."""

from __future__ import annotations

from typing import NamedTuple

import jax
import jax.numpy as jnp
from flax import nnx

from .config import ModelConfig
from .dain import DAIN
from .encoder import CPCEncoder
from .heads import DirectHead
from .infonce import FuturePredictor
from .lif import LIFClassifier
from .resnet import ResNet1D
from .spike_bridge import SpikeBridge


class ModelOutputs(NamedTuple):
    """One forward pass: logits (B,), and for CPC models what InfoNCE needs (else None)."""

    logits: jax.Array
    latents: jax.Array | None = None        # z (B, S, latent_dim), after L2 normalization if on
    context: jax.Array | None = None        # c (B, S, context_dim)
    predictions: jax.Array | None = None    # (K, B, S, latent_dim); only when infonce_weight > 0


def _channels_last(x: jax.Array, in_channels: int) -> jax.Array:
    """(B, C, T) strain as float32 (B, T, C)."""
    if x.ndim != 3 or x.shape[1] != in_channels:
        raise ValueError(f"x has shape {x.shape}; allowed: (batch, {in_channels}, samples)")
    return jnp.swapaxes(x.astype(jnp.float32), 1, 2)


class CPCClassifier(nnx.Module):
    """CPC encoder -> (spike bridge -> LIF SNN | [spike bridge ->] direct head) -> logit; InfoNCE
    predictor if weighted.

    The classifier reads the GRU context c, which depends on the (optionally L2-normalized)
    latents z. The predictor exists only when `cfg.infonce_weight > 0`, so a single-task model
    holds no parameter that never gets a gradient.
    """

    def __init__(self, cfg: ModelConfig, *, rngs: nnx.Rngs) -> None:
        if cfg.kind not in ("cpc", "cpc_snn"):
            raise ValueError(f"cfg.kind={cfg.kind!r} is not allowed here; allowed: 'cpc', 'cpc_snn'")
        self.config = cfg
        self.encoder = CPCEncoder(cfg.in_channels, cfg.encoder_widths, cfg.encoder_strides,
                                  latent_dim=cfg.latent_dim, context_dim=cfg.context_dim,
                                  l2_normalize=cfg.l2_normalize, rngs=rngs)
        self.predictor = FuturePredictor(cfg.context_dim, cfg.latent_dim, cfg.prediction_steps, rngs=rngs) \
            if cfg.infonce_weight > 0 else None
        self.bridge = SpikeBridge(cfg.context_dim, threshold=cfg.spike_threshold, learnable=cfg.learnable_threshold,
                                  slope=cfg.surrogate_slope) if cfg.kind == "cpc_snn" or cfg.spike_bridge else None
        if cfg.kind == "cpc_snn":
            self.classifier = LIFClassifier(cfg.context_dim, cfg.snn_hidden, dt=cfg.latent_dt, tau=cfg.tau,
                                            threshold=cfg.snn_threshold, slope=cfg.surrogate_slope, rngs=rngs)
        else:
            self.classifier = DirectHead(cfg.context_dim, pool=cfg.head_pool, rngs=rngs)

    def outputs(self, x: jax.Array) -> ModelOutputs:
        """Logits, latents, context and (if weighted) InfoNCE predictions of x (B, C, T)."""
        z, c = self.encoder(_channels_last(x, self.config.in_channels))
        features = self.bridge(c) if self.bridge is not None else c
        predictions = self.predictor(c) if self.predictor is not None else None
        return ModelOutputs(self.classifier(features), z, c, predictions)

    def __call__(self, x: jax.Array) -> jax.Array:
        return self.outputs(x).logits


class AResGWClassifier(nnx.Module):
    """DAIN on the raw input -> 1-D ResNet -> pool over time -> logit (single-task baseline)."""

    def __init__(self, cfg: ModelConfig, *, rngs: nnx.Rngs) -> None:
        if cfg.kind != "aresgw":
            raise ValueError(f"cfg.kind={cfg.kind!r} is not allowed here; allowed: 'aresgw'")
        self.config = cfg
        self.dain = DAIN(cfg.in_channels, rngs=rngs)
        self.resnet = ResNet1D(cfg.in_channels, stem_width=cfg.resnet_stem_width,
                               stem_stride=cfg.resnet_stem_stride, widths=cfg.resnet_widths,
                               blocks=cfg.resnet_blocks, kernel=cfg.resnet_kernel, norm=cfg.resnet_norm,
                               rngs=rngs)
        self.head = DirectHead(self.resnet.out_width, pool=cfg.head_pool, rngs=rngs)

    def outputs(self, x: jax.Array) -> ModelOutputs:
        """Logits of x (B, C, T); no CPC terms."""
        return ModelOutputs(self.head(self.resnet(self.dain(_channels_last(x, self.config.in_channels)))))

    def __call__(self, x: jax.Array) -> jax.Array:
        return self.outputs(x).logits


Model = CPCClassifier | AResGWClassifier


def build_model(cfg: ModelConfig, seed: int) -> Model:
    """The model `cfg` describes, its parameters drawn from `seed` (same seed, same parameters)."""
    if not isinstance(cfg, ModelConfig):
        raise ValueError(f"cfg is a {type(cfg).__name__}; allowed: a ModelConfig")
    if isinstance(seed, bool) or not isinstance(seed, int) or seed < 0:
        raise ValueError(f"seed={seed!r} is not allowed; allowed: an integer >= 0")
    rngs = nnx.Rngs(seed)
    return AResGWClassifier(cfg, rngs=rngs) if cfg.kind == "aresgw" else CPCClassifier(cfg, rngs=rngs)
