"""Document 000's four compared variants: model config and learning rate of each."""

from __future__ import annotations

from dataclasses import dataclass

from .config import ModelConfig


@dataclass(frozen=True)
class Variant:
    """A named model configuration with the learning rate the document trained it with."""

    model: ModelConfig
    learning_rate: float


VARIANTS: dict[str, Variant] = {
    # CPC(64), L2-normalized latents -> spike bridge -> LIF SNN; BCE + InfoNCE.
    "cpc_original": Variant(ModelConfig(kind="cpc_snn", latent_dim=64, l2_normalize=True,
                                        infonce_weight=1.0), learning_rate=1e-4),
    # CPC(64), L2-normalized, InfoNCE kept -> direct classifier.
    "cpc_simplified": Variant(ModelConfig(kind="cpc", latent_dim=64, l2_normalize=True,
                                          infonce_weight=1.0), learning_rate=1e-4),
    # DAIN + ResNet, single-task BCE.
    "aresgw_baseline": Variant(ModelConfig(kind="aresgw"), learning_rate=5e-5),
    # CPC(256), no L2, single-task BCE -> direct classifier.
    "cpc_fixed": Variant(ModelConfig(kind="cpc", latent_dim=256, l2_normalize=False,
                                     infonce_weight=0.0), learning_rate=5e-5),
}


def _variant(name: str) -> Variant:
    if name not in VARIANTS:
        raise ValueError(f"variant={name!r} is not known; allowed: {', '.join(map(repr, VARIANTS))}")
    return VARIANTS[name]


def variant_config(name: str) -> ModelConfig:
    """The ModelConfig of a document-000 variant ("cpc_original", "cpc_simplified", ...)."""
    return _variant(name).model


def variant_learning_rate(name: str) -> float:
    """The learning rate document 000 used for a variant (1e-4 before the fix, 5e-5 after)."""
    return _variant(name).learning_rate
