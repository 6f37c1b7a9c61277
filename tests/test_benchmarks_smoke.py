"""The benchmarks' code path on tiny sizes: tables with the expected rows and sane ratios.

No timing thresholds: the targets live in benchmarks/results/, measured by
`python -m benchmarks.overhead` and `python -m benchmarks.mlflow_logging` (benchmarks/README.md).
"""

from __future__ import annotations

import math
import re
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # `benchmarks` is not installed

from benchmarks import jax_overhead, mlflow_logging, overhead  # noqa: E402

_RATIO = re.compile(r"^(\d+\.\d+)x")


def _rows(markdown: str, first_cells: set[str]) -> list[list[str]]:
    """Body rows of every table in `markdown` whose first cell is one of `first_cells`."""
    rows = [[c.strip() for c in line.strip().strip("|").split("|")]
            for line in markdown.splitlines() if line.startswith("| ")]
    return [r for r in rows if r[0] in first_cells]


def _ratio(cell: str) -> float:
    match = _RATIO.match(cell)
    assert match, f"not a ratio: {cell!r}"
    return float(match.group(1))


def _finite_positive(value: float) -> bool:
    return math.isfinite(value) and value > 0


def test_overhead_tables_have_every_model_and_variant():
    # Without MLflow recording (its path is the logging test's): each Monitor.close() would
    # render a report, about a second apiece.
    cfg = overhead.OverheadConfig(scale="tiny", rounds=2, warmup_rounds=1, copies=2,
                                  block_steps=3, mlflow=False)
    results = overhead.run(cfg, show_progress=False)
    text = overhead.report(results, cfg, elapsed_s=0.0)

    header = ["model", "params", "variant", "plain ms/step", "variant ms/step", "median ratio",
              "IQR of ratio", "noise floor (twin/plain) [IQR]", "target", "met"]
    assert "| " + " | ".join(header) + " |" in text
    rows = [r for r in _rows(text, {"mlp", "cnn1d", "lstm"}) if len(r) == len(header)]
    assert {(r[0], r[2]) for r in rows} == {
        (m, v) for m in ("mlp", "cnn1d", "lstm")
        for v in (overhead.DEFAULTS, overhead.EVERY_STEP, overhead.ANOMALY, overhead.NAIVE)}
    for r in rows:
        assert _finite_positive(float(r[3])) and _finite_positive(float(r[4])), r
        assert _finite_positive(_ratio(r[5])) and _finite_positive(_ratio(r[7])), r
        assert r[9].split(" (")[0] in {"yes", "no", "-"}
    versus = [r for r in _rows(text, {"mlp", "cnn1d", "lstm"}) if len(r) == 6]
    assert len(versus) == 6 and all(_finite_positive(_ratio(c)) for r in versus for c in r[2:4])


def test_overhead_rejects_a_bad_config():
    with pytest.raises(ValueError, match="rounds=0"):
        overhead.OverheadConfig(rounds=0)
    with pytest.raises(ValueError, match="models=.*allowed"):
        overhead.run(overhead.OverheadConfig(scale="tiny", rounds=1, models=("gpt",)),
                     show_progress=False)


def test_logging_tables_compare_recorder_and_lightning(tracking_uri):
    cfg = mlflow_logging.LoggingConfig(scale="tiny", rounds=2, warmup_rounds=1, flush_every=4,
                                       n_metrics=10)
    results = mlflow_logging.run(cfg, show_progress=False, tracking_uri=tracking_uri)
    text = mlflow_logging.report(results, cfg, elapsed_s=0.0)

    loops = {"logging only", "mlp training step (0.0 M)"}
    rows = [r for r in _rows(text, loops) if len(r) == 9]
    assert {(r[0], r[1]) for r in rows} == {
        ("logging only", "Recorder (baseline)"), ("logging only", "Lightning MLFlowLogger"),
        ("mlp training step (0.0 M)", "plain (baseline)"),
        ("mlp training step (0.0 M)", "Recorder"),
        ("mlp training step (0.0 M)", "Lightning MLFlowLogger")}
    for r in rows:  # loop, variant, ms/step, in calls, waiting, ratio, IQR, floor, points
        assert _finite_positive(float(r[2])), r
        assert _finite_positive(_ratio(r[7])), r
        if r[1] != "plain (baseline)":  # every point logged reached the store
            assert _finite_positive(float(r[3])) and float(r[4]) >= 0, r
            stored, logged = r[8].split("/")
            assert stored == logged == str((cfg.rounds + cfg.warmup_rounds) * 4 * 10)
        if "baseline" not in r[1]:
            assert _finite_positive(_ratio(r[5])), r
    versus = [r for r in _rows(text, loops) if len(r) == 6]
    assert len(versus) == 2 and all(_finite_positive(_ratio(r[4])) for r in versus)


def test_jax_overhead_table_has_every_variant():
    cfg = jax_overhead.JaxOverheadConfig(scale="tiny", rounds=2, warmup_rounds=0, block_steps=50, mlflow=False)
    text = jax_overhead.report(jax_overhead.run(cfg, show_progress=False), cfg, 0.0)
    rows = [r for r in (line.strip().strip("|").split("|") for line in text.splitlines() if line.startswith("| "))
            if len(r) > 5 and "x" in r[4]]
    assert len(rows) == 3, text
    for r in rows:
        assert _finite_positive(_ratio(r[4].strip())) and _finite_positive(_ratio(r[6].strip())), r


def test_rule_costs_table_has_every_check_and_the_evaluation_row():
    from benchmarks import rule_costs

    cfg = overhead.OverheadConfig(scale="tiny", rounds=2, copies=1, block_steps=3, models=("mlp",))
    results = rule_costs.run(cfg, show_progress=False)
    text = rule_costs.table(results, cfg)
    rows = _rows(text, {"mlp"})
    variants = [r[2] for r in rows]
    assert variants == [rule_costs.BASE, *rule_costs.CHECKS, rule_costs.DEFAULTS,
                        f"{rule_costs.EVAL_CHECKED} (3 batches)"]
    assert all(_finite_positive(_ratio(r[4])) and _finite_positive(_ratio(r[6])) for r in rows)
    assert results[0]["findings"] == []  # healthy: a finding here would be a false alarm
