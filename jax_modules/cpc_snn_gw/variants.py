"""Document 000's four compared variants, and the ablation and progressive stages built from the fix."""

from __future__ import annotations

from dataclasses import dataclass, replace

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
    # Not in the document: the AResGW-style ResNet at half width with a fifth stage (receptive field
    # about 2240 samples, wider than the 1 s window; twice the baseline's training throughput on a
    # CPU), at the rate fresh training windows every epoch allow (projects.cpc_snn_gw, issue 14).
    "gw_best": Variant(ModelConfig(kind="aresgw", resnet_stem_width=16, resnet_widths=(16, 32, 64, 128, 128)),
                       learning_rate=1e-3),
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


def ablation_variants() -> dict[str, Variant]:
    """`cpc_fixed`, each of the document's four fixes reverted alone, and `cpc_original`.

    The fixes: latent 64 -> 256, L2 normalization removed, lr 1e-4 -> 5e-5, multi-task -> single-task.
    """
    fixed = VARIANTS["cpc_fixed"]
    model, original = fixed.model, VARIANTS["cpc_original"]
    return {
        "fixed": fixed,
        "latent_64": Variant(replace(model, latent_dim=original.model.latent_dim), fixed.learning_rate),
        "l2_normalize": Variant(replace(model, l2_normalize=True), fixed.learning_rate),
        "lr_1e-4": Variant(model, original.learning_rate),
        "multi_task": Variant(replace(model, infonce_weight=original.model.infonce_weight), fixed.learning_rate),
        "original": original,
    }


def progressive_variants(infonce_weight: float) -> dict[str, Variant]:
    """The document's phase 2 from `cpc_fixed`: add the spike bridge, then the LIF SNN classifier,
    then InfoNCE as an auxiliary loss of weight `infonce_weight`; one more part per stage."""
    fixed = VARIANTS["cpc_fixed"]
    snn = replace(fixed.model, kind="cpc_snn")
    return {
        "cpc": fixed,
        "spike_bridge": Variant(replace(fixed.model, spike_bridge=True), fixed.learning_rate),
        "snn": Variant(snn, fixed.learning_rate),
        "snn_infonce": Variant(replace(snn, infonce_weight=infonce_weight), fixed.learning_rate),
    }
