"""claims.yaml loading and validation, verdicts, and the log -> read-back round trip."""

from __future__ import annotations

import json
import math
import textwrap
from pathlib import Path

import mlflow
import pytest

from mlflow_plugins.claims import (
    Claim,
    ClaimResult,
    claims_html,
    claims_table,
    evaluate,
    load_claims,
    log_claims,
)

GOOD = """\
document: 001_bac714bd05ae718b.txt
claims:
  - id: accuracy_before
    variant: repr_broken
    quote: "Accuracy: ~2% (stagnating)"
    figure: "~2%"
    metric: test/acc
    expect: {max: 0.05}
  - id: accuracy_after
    variant: repr_fixed
    quote: "Accuracy: Should improve to 15-40%+ (minimum)"
    figure: "15-40%"
    metric: test/acc
    expect: {min: 0.15}
  - id: loss_after
    variant: repr_fixed
    quote: "Loss: 0.5 to 1.0"
    figure: 0.5
    metric: train/loss
    expect: {min: 0.5, max: 1}
"""


@pytest.fixture(scope="module")
def tracking(module_store):
    return module_store


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "claims.yaml"
    path.write_text(textwrap.dedent(text))
    return path


def test_load_happy_path(tmp_path):
    cf = load_claims(write(tmp_path, GOOD))
    assert cf.document == "001_bac714bd05ae718b.txt"
    assert [c.id for c in cf.claims] == ["accuracy_before", "accuracy_after", "loss_after"]
    before = cf.claims[0]
    assert (before.variant, before.figure, before.metric) == ("repr_broken", "~2%", "test/acc")
    assert (before.low, before.high) == (None, 0.05)
    assert before.document == cf.document
    assert cf.claims[2].figure == "0.5"  # a bare YAML number is kept as text
    assert (cf.claims[2].low, cf.claims[2].high) == (0.5, 1.0)
    assert cf.variants == ["repr_broken", "repr_fixed"]
    assert [c.id for c in cf.for_variant("repr_fixed")] == ["accuracy_after", "loss_after"]
    assert cf.for_variant("nope") == ()
    assert [c.expected for c in cf.claims] == ["<= 0.05", ">= 0.15", "0.5 to 1"]


ONE = """\
document: d.txt
claims:
  - id: acc
    variant: v
    quote: "q"
    figure: "2%"
    metric: test/acc
    expect: {EXPECT}
"""


def one(expect: str = "{max: 0.05}", **replace: str) -> str:
    text = ONE.replace("{EXPECT}", expect)
    for old, new in replace.items():
        text = text.replace(old, new)
    return text


@pytest.mark.parametrize("text, match", [
    (": : [", r"claims\.yaml: not valid YAML at line 1"),
    ("- just\n- a list\n", r"claims\.yaml: expected a mapping with keys 'document' and 'claims'"),
    ("claims: []\n", r"claims\.yaml: missing field 'document'"),
    ("document: d\nclaims: {}\n", r"claims\.yaml: 'claims' must be a list"),
    ("document: d\nclaims: []\nextra: 1\n", r"unknown top-level key\(s\) \['extra'\]"),
    ("document: d\nclaims: [3]\n", r"claims\[0\]: expected a mapping"),
    (one(**{"    metric: test/acc\n": ""}), r"claim 'acc': missing field 'metric'"),
    (one(**{"  - id: acc\n": "  - variant_: x\n"}), r"claims\[0\]: unknown key\(s\) \['variant_'\]"),
    (one(**{"id: acc": "id: Acc-1"}), r"claim 'Acc-1': field 'id'='Acc-1' is invalid; allowed: \[a-z0-9_\]\+"),
    (one(**{"variant: v": "variant: a b"}), r"claim 'acc': field 'variant'='a b' is invalid"),
    (one(**{'quote: "q"': 'quote: ""'}), r"claim 'acc': field 'quote'='' is invalid; allowed: a non-empty string"),
    (one(**{"    expect: {max: 0.05}\n": ""}), r"claim 'acc': missing field 'expect'"),
    (one("0.05"), r"claim 'acc': field 'expect'=0\.05 is not a mapping"),
    (one("{max: high}"), r"claim 'acc': field 'expect\.max'='high' is not a number; allowed: a finite number"),
    (one("{min: .nan}"), r"field 'expect\.min'=nan is not a number"),
    (one("{min: true}"), r"field 'expect\.min'=True is not a number"),
    (one("{min: 0.5, max: 0.1}"), r"claim 'acc': field 'expect' has min=0\.5 > max=0\.1; allowed: min <= max"),
    (one("{}"), r"claim 'acc': field 'expect' has no bound"),
    (one("{above: 1}"), r"claim 'acc': field 'expect' has unknown key\(s\) \['above'\]"),
])
def test_load_errors(tmp_path, text, match):
    path = write(tmp_path, text)
    with pytest.raises(ValueError, match=match) as info:
        load_claims(path)
    message = str(info.value)
    assert "\n" not in message and str(path) in message


def test_load_duplicate_id(tmp_path):
    text = GOOD.replace("id: accuracy_after", "id: accuracy_before")
    with pytest.raises(ValueError, match=r"claim 'accuracy_before': duplicate id"):
        load_claims(write(tmp_path, text))


def test_load_missing_file(tmp_path):
    with pytest.raises(ValueError, match=r"nope\.yaml: claims file does not exist"):
        load_claims(tmp_path / "nope.yaml")


def test_evaluate_verdicts():
    low = Claim("lo", "v", "q", "15%", "acc", low=0.15, high=None)
    high = Claim("hi", "v", "q", "2%", "acc", low=None, high=0.05)
    band = Claim("band", "v", "q", "0.5-1", "loss", low=0.5, high=1.0)
    absent = Claim("absent", "v", "q", "1", "val/f1", low=0.0, high=None)
    nan = Claim("nan", "v", "q", "1", "bad", low=0.0, high=None)
    results = evaluate([low, high, band, absent, nan],
                       {"acc": 0.15, "loss": 1.5, "bad": math.nan})
    assert [(r.claim.id, r.measured, r.verdict) for r in results] == [
        ("lo", 0.15, "reproduced"),          # bounds are inclusive
        ("hi", 0.15, "not reproduced"),
        ("band", 1.5, "not reproduced"),
        ("absent", None, "not measured"),
        ("nan", None, "not measured"),
    ]
    assert evaluate([band], {"loss": 0.5})[0].verdict == "reproduced"


def test_claim_needs_a_valid_range():
    with pytest.raises(ValueError, match=r"claim 'c': low and high are both None"):
        Claim("c", "v", "q", "1", "m", low=None, high=None)
    with pytest.raises(ValueError, match=r"claim 'c': low=2.0 > high=1.0; allowed: low <= high"):
        Claim("c", "v", "q", "1", "m", low=2.0, high=1.0)


def test_claims_html_escapes_and_colors():
    claim = Claim("c", "v", "<b>x</b> & y", "~2%", "acc", low=None, high=0.05)
    fragment = claims_html([ClaimResult(claim, 0.01, "reproduced"),
                            ClaimResult(claim, None, "not measured")])
    assert fragment.startswith('<table class="fixlab-claims">')
    assert "&lt;b&gt;x&lt;/b&gt; &amp; y" in fragment and "<b>x" not in fragment
    assert "not measured" in fragment and "&lt;= 0.05" in fragment


def test_log_claims_requires_a_run(tracking):
    with pytest.raises(ValueError, match="no MLflow run is active"):
        log_claims([])


def test_log_then_table_round_trip(tmp_path, tracking):
    cf = load_claims(write(tmp_path, GOOD))
    mlflow.set_experiment("repr")
    with mlflow.start_run(run_name="broken", tags={"fixlab.variant": "repr_broken"}) as broken:
        log_claims(evaluate(cf.for_variant("repr_broken"), {"test/acc": 0.02}))
    with mlflow.start_run(run_name="fixed", tags={"fixlab.variant": "repr_fixed"}) as fixed:
        # a claim of another variant is skipped with a warning
        with pytest.warns(UserWarning, match=r"skipped claims of other variants: \['accuracy_before'\]"):
            log_claims(evaluate(cf.claims, {"test/acc": 0.10}))

    run = mlflow.get_run(fixed.info.run_id)
    assert run.data.metrics == {"claims/accuracy_after/measured": 0.10}
    assert run.data.tags["fixlab.claim.accuracy_after"] == "not reproduced"
    assert run.data.tags["fixlab.claim.loss_after"] == "not measured"
    assert "fixlab.claim.accuracy_before" not in run.data.tags
    stored = json.loads(mlflow.artifacts.load_text(f"runs:/{fixed.info.run_id}/fixlab/claims.json"))
    assert [c["id"] for c in stored["claims"]] == ["accuracy_after", "loss_after"]

    rows = claims_table("repr", tracking_uri=tracking)
    assert [(r["run_name"], r["variant"], r["claim"], r["figure"], r["expected"], r["measured"],
             r["verdict"]) for r in rows] == [
        ("broken", "repr_broken", "accuracy_before", "~2%", "<= 0.05", 0.02, "reproduced"),
        ("fixed", "repr_fixed", "accuracy_after", "15-40%", ">= 0.15", 0.10, "not reproduced"),
        ("fixed", "repr_fixed", "loss_after", "0.5", "0.5 to 1", None, "not measured"),
    ]
    assert rows[0]["run_id"] == broken.info.run_id
    assert rows[0]["document"] == "001_bac714bd05ae718b.txt"


def test_table_unknown_experiment_lists_existing(tracking):
    mlflow.set_experiment("exists")
    with pytest.raises(ValueError, match=r"experiment 'missing' does not exist; existing "
                                         r"experiments: \[.*'exists'.*\]"):
        claims_table("missing")
