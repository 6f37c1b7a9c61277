"""ModelConfig validation and the document's four variants."""

from __future__ import annotations

import pytest

from jax_modules.cpc_snn_gw import ModelConfig, VARIANTS, variant_config, variant_learning_rate


@pytest.mark.parametrize("field, value, message", [
    ("kind", "transformer", "kind='transformer' is not allowed; allowed: 'cpc_snn', 'cpc', 'aresgw'"),
    ("latent_dim", 0, "latent_dim=0 is out of range"),
    ("latent_dim", 64.0, "latent_dim=64.0 is out of range"),
    ("tau", -0.02, "tau=-0.02 is out of range"),
    ("tau", float("inf"), "tau=inf is out of range"),
    ("infonce_weight", -1.0, "infonce_weight=-1.0 is out of range"),
    ("surrogate_slope", 0.0, "surrogate_slope=0.0 is out of range"),
    ("l2_normalize", 1, "l2_normalize=1 is not allowed; allowed: True or False"),
    ("snn_hidden", (), "snn_hidden=\\(\\) is not allowed"),
    ("encoder_strides", (4, 2), "encoder_strides=\\(4, 2\\) has 2 entries"),
    ("head_pool", "sum", "head_pool='sum' is not allowed"),
    ("resnet_norm", "batch", "resnet_norm='batch' is not allowed"),
])
def test_bad_field_names_field_and_range(field: str, value: object, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        ModelConfig(**{field: value})


def test_infonce_needs_a_cpc_kind() -> None:
    with pytest.raises(ValueError, match="infonce_weight > 0 needs a CPC encoder"):
        ModelConfig(kind="aresgw", infonce_weight=1.0)


def test_lists_become_tuples_and_config_stays_hashable() -> None:
    cfg = ModelConfig(snn_hidden=[64, 32], encoder_widths=[8, 8, 8, 8])
    assert cfg.snn_hidden == (64, 32) and cfg.encoder_widths == (8, 8, 8, 8)
    assert hash(cfg) == hash(ModelConfig(snn_hidden=(64, 32), encoder_widths=(8, 8, 8, 8)))


def test_latent_step_is_total_stride_over_sample_rate() -> None:
    cfg = ModelConfig(encoder_strides=(4, 2, 2, 2), sample_rate=2048.0)
    assert cfg.encoder_stride == 32
    assert cfg.latent_dt == pytest.approx(32 / 2048)


def test_variants_match_the_document() -> None:
    original, simplified = variant_config("cpc_original"), variant_config("cpc_simplified")
    baseline, fixed = variant_config("aresgw_baseline"), variant_config("cpc_fixed")
    assert (original.kind, original.latent_dim, original.l2_normalize) == ("cpc_snn", 64, True)
    assert original.infonce_weight > 0 and simplified.infonce_weight > 0
    assert (simplified.kind, simplified.latent_dim, simplified.l2_normalize) == ("cpc", 64, True)
    assert (baseline.kind, baseline.infonce_weight) == ("aresgw", 0.0)
    assert (fixed.kind, fixed.latent_dim, fixed.l2_normalize, fixed.infonce_weight) == ("cpc", 256, False, 0.0)
    assert {n: variant_learning_rate(n) for n in VARIANTS} == {
        "cpc_original": 1e-4, "cpc_simplified": 1e-4, "aresgw_baseline": 5e-5, "cpc_fixed": 5e-5,
        "gw_best": 1e-3}  # gw_best is not the document's: fresh data every epoch trains at a higher rate


def test_unknown_variant_lists_known_ones() -> None:
    with pytest.raises(ValueError, match="variant='cpc' is not known; allowed: 'cpc_original'"):
        variant_config("cpc")
