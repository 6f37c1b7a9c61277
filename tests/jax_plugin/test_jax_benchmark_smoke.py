"""`python -m benchmarks jax` on tiny sizes: a table with every variant and sane ratios.

No timing thresholds: the target lives in benchmarks/results/jax_overhead.md.
"""

from __future__ import annotations

import re
import sys
from pathlib import Path

import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))  # `benchmarks` is not installed

from benchmarks import jax_overhead  # noqa: E402

_RATIO = re.compile(r"^(\d+\.\d+)x")


def _ratio(cell: str) -> float:
    match = _RATIO.match(cell)
    assert match, f"not a ratio: {cell!r}"
    return float(match.group(1))


def test_table_has_every_variant():
    """The report of a run, from block times (running the variants compiles five steps: that
    path is `python -m benchmarks jax --quick`'s)."""
    rng = np.random.default_rng(0)
    base = rng.uniform(1.0, 1.2, size=6)
    times = {v: base * f for v, f in zip(jax_overhead.VARIANTS, (1.0, 1.01, 1.03, 1.02, 1.4))}
    result = jax_overhead.Result(1_900_000, 50, times, {jax_overhead.DEFAULTS: [],
                                                        jax_overhead.EVERY_STEP: ["X (info) at y"]})
    cfg = jax_overhead.JaxOverheadConfig(scale="tiny", rounds=6, mlflow=False)
    text = jax_overhead.report(result, cfg, elapsed_s=1.0)
    rows = [[c.strip() for c in line.strip().strip("|").split("|")]
            for line in text.splitlines() if line.startswith("| 1.90 M")]
    assert [r[1] for r in rows] == [jax_overhead.DEFAULTS, jax_overhead.IN_JIT,
                                    jax_overhead.EVERY_STEP]
    assert [_ratio(r[4]) for r in rows] == [1.03, 1.02, 1.4]
    assert {_ratio(r[6]) for r in rows} == {1.01}  # the twin: the noise floor of every row
    assert [r[7:] for r in rows] == [["<= 1.05x", "yes"], ["reference", "-"], ["reference", "-"]]
    assert "- monitored defaults: none" in text and "- every_step=True: X (info) at y" in text


def test_rejects_a_bad_config():
    with pytest.raises(ValueError, match="rounds=0 must be >= 1"):
        jax_overhead.JaxOverheadConfig(rounds=0)
    with pytest.raises(ValueError, match="scale='huge' is not a scale"):
        jax_overhead.JaxOverheadConfig(scale="huge")
