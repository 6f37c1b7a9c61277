"""Interleaved block timing: the method every benchmark here shares.

The machine is noisy (two shared cores), so a variant is never timed in one long stretch.
Instead every *round* runs each variant for one short block of steps, in a freshly shuffled
order, and a variant's cost is judged by its per-round ratio to the baseline's block of the
same round. A second, identical baseline (the *twin*) is timed the same way: the spread of its
ratio is the noise floor that every other ratio must be read against.
"""

from __future__ import annotations

import contextlib
import gc
import random
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Iterator, Mapping, Sequence

import numpy as np


def check_counts(config: object, *, positive: Sequence[str], non_negative: Sequence[str] = ()) -> None:
    """A benchmark config's counts, validated: ValueError naming the field and the bound."""
    for name in positive:
        if getattr(config, name) < 1:
            raise ValueError(f"{name}={getattr(config, name)!r} must be >= 1")
    for name in non_negative:
        if getattr(config, name) < 0:
            raise ValueError(f"{name}={getattr(config, name)!r} must be >= 0")


@dataclass(frozen=True)
class RatioStats:
    """Per-round ratios of one variant's block time to the baseline's: median and quartiles."""

    median: float
    q1: float
    q3: float
    n: int

    @classmethod
    def of(cls, ratios: np.ndarray) -> "RatioStats":
        q1, med, q3 = np.percentile(ratios, [25, 50, 75])
        return cls(float(med), float(q1), float(q3), int(ratios.size))

    def fmt(self) -> str:
        return f"{self.median:.3f}x"

    def fmt_iqr(self) -> str:
        return f"{self.q1:.3f} to {self.q3:.3f}"

    def fmt_with_iqr(self) -> str:
        return f"{self.median:.3f}x [{self.q1:.3f}, {self.q3:.3f}]"


def interleave(blocks: Mapping[str, Callable[[], None]], *, rounds: int, warmup_rounds: int,
               seed: int = 0, progress: Callable[[str], None] | None = None,
               after_block: Callable[[str], None] | None = None) -> dict[str, np.ndarray]:
    """Times every block once per round, in a shuffled order; returns seconds per timed round.

    Args:
        blocks: variant name -> a function that runs one block of that variant.
        rounds: timed rounds (the per-round ratios are their samples).
        warmup_rounds: rounds run first and discarded (allocator, caches, lazy MLflow set-up).
        seed: seeds the order of the variants within each round.
        progress: called with the variant name after each block (e.g. a tqdm update).
        after_block: called, untimed, after each block (e.g. to settle background work).

    Returns:
        variant name -> array of `rounds` block durations in seconds.
    """
    if rounds < 1 or warmup_rounds < 0:
        raise ValueError(f"rounds={rounds!r} must be >= 1 and warmup_rounds={warmup_rounds!r} >= 0")
    rng = random.Random(seed)
    names = list(blocks)
    times: dict[str, list[float]] = {n: [] for n in names}
    # Objects alive now (modules, models, MLflow) move to the permanent generation, so that the
    # collection before each block is cheap and only covers what the blocks themselves made.
    gc.collect()
    gc.freeze()
    try:
        for r in range(warmup_rounds + rounds):
            order = names[:]
            rng.shuffle(order)  # no variant always follows the same one (caches, GC, the OS)
            for name in order:
                gc.collect()  # a collection owed by an earlier block is not charged to this one
                t0 = time.perf_counter()
                blocks[name]()
                elapsed = time.perf_counter() - t0
                if after_block is not None:
                    after_block(name)
                if r >= warmup_rounds:
                    times[name].append(elapsed)
                if progress is not None:
                    progress(name)
    finally:
        gc.unfreeze()
    return {n: np.asarray(t) for n, t in times.items()}


def ratios(times: Mapping[str, np.ndarray], variant: str, baseline: str) -> RatioStats:
    """Median and quartiles of `variant`'s block time over `baseline`'s, round by round."""
    return RatioStats.of(times[variant] / times[baseline])


def per_step_ms(seconds: np.ndarray, steps: int) -> float:
    """Median block time, as milliseconds per step."""
    return float(np.median(seconds)) / steps * 1e3


def markdown_table(header: Sequence[str], rows: Sequence[Sequence[object]]) -> str:
    """A GitHub markdown table; numbers must already be formatted."""
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    lines += ["| " + " | ".join(str(c) for c in row) + " |" for row in rows]
    return "\n".join(lines)


def environment(threads: int | None = None) -> str:
    """One line describing where the numbers were measured (with torch at `threads` intra-op
    threads, the count the benchmark times with; None: as it is)."""
    import os
    import platform

    import mlflow
    import torch

    if threads is not None:
        saved = torch.get_num_threads()
        torch.set_num_threads(threads)
        try:
            return environment()
        finally:
            torch.set_num_threads(saved)
    load = ", ".join(f"{x:.1f}" for x in os.getloadavg())
    return (f"python {platform.python_version()}, torch {torch.__version__} "
            f"({torch.get_num_threads()} intra-op thread(s)), mlflow {mlflow.__version__}, "
            f"{os.cpu_count()} CPU(s), load average {load}")


@contextlib.contextmanager
def tracking_store(tracking_uri: str | None = None
                   ) -> Iterator[tuple[str, Callable[[str], str]]]:
    """A tracking store and a function that creates one run per name in it.

    Args:
        tracking_uri: an existing store to use; default: a new SQLite store in a temporary
            directory, deleted afterwards.
    """
    from mlflow import MlflowClient

    with tempfile.TemporaryDirectory(prefix="fixlab-bench-") as tmp:
        # Artifacts (the monitors' reports) go to the temporary directory too, never to ./mlruns.
        tracking_uri = tracking_uri or f"sqlite:///{Path(tmp) / 'mlflow.db'}"
        client = MlflowClient(tracking_uri=tracking_uri)
        exp_id = client.create_experiment(f"fixlab-benchmarks-{Path(tmp).name}",
                                          artifact_location=Path(tmp, "artifacts").as_uri())
        yield tracking_uri, lambda name: client.create_run(exp_id, run_name=name).info.run_id


def progress_bar(total: int, enabled: bool) -> Any:
    """A tqdm bar over timed blocks, on stderr so the printed table stays clean."""
    import sys

    from tqdm import tqdm

    return tqdm(total=total, unit="block", disable=not enabled, file=sys.stderr, leave=False)


def run_and_write(run: Callable[[], str], path: Path) -> str:
    """Run a benchmark that returns its markdown report, write it to `path`, print it; returns it."""
    text = run()
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    print(text)
    print(f"written to {path}")
    return text
