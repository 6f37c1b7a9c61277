"""Step-time overhead of `watch()` on plain PyTorch loops, against references it must beat.

    python -m benchmarks.overhead            # full mode, a few minutes
    python -m benchmarks.overhead --quick    # CI-friendly, under a minute

Variants, each on its own copy of the model (identical initial weights, same batches):

- ``plain`` and ``plain (twin)``: the bare loop, twice; twin/plain is the noise floor;
- ``watch() defaults``: `watch(model, opt)`, log_every=50, every diagnostic; target <= 1.03x;
- ``watch(every_step=True)``: every statistic on every step; target <= 1.15x;
- ``detect_anomaly()``: the loop under `torch.autograd.detect_anomaly()` (reference);
- ``naive per-param .item()``: `p.grad.norm().item()` for every parameter, every step (reference).

Each variant has three model copies, used in turn. A monitor is created once per copy before
timing and kept for the whole benchmark, as in real use: its hooks fire only when its own model
runs. Blocks are `log_every` = 50 steps long, so every timed block of `watch() defaults` holds
exactly one sampled step and its flush.
See benchmarks/README.md for the method.
"""

from __future__ import annotations

import argparse
import contextlib
import copy
import time
import warnings
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Callable, Sequence

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from .harness import (RatioStats, check_counts, environment, interleave, markdown_table, per_step_ms,
                      progress_bar, ratios, run_and_write, tracking_store)
from .models import Bench, Scale, benches, n_params

RESULTS = Path(__file__).resolve().parent / "results"
LOG_EVERY = 50  # watch()'s default; a block is a multiple of it

PLAIN, TWIN = "plain", "plain (twin)"
DEFAULTS, EVERY_STEP = "watch() defaults", "watch(every_step=True)"
ANOMALY, NAIVE = "detect_anomaly()", "naive per-param .item()"
VARIANTS = (PLAIN, TWIN, DEFAULTS, EVERY_STEP, ANOMALY, NAIVE)
TARGETS = {DEFAULTS: 1.03, EVERY_STEP: 1.15}
REFERENCES = (ANOMALY, NAIVE)


@dataclass(frozen=True)
class OverheadConfig:
    """What to measure and how long.

    Args:
        scale: model and batch sizes (see `benchmarks.models`): "full", "quick" or "tiny".
        rounds: timed rounds; each runs one block of every variant, in a shuffled order.
        warmup_rounds: rounds run and discarded after the warm-up block every copy gets.
        copies: model copies per variant (identical weights); successive blocks of a variant
            rotate through them, so that one copy's memory layout does not bias a variant.
        block_steps: training steps per block; a multiple of log_every (50) so that every
            block of `watch() defaults` holds one sampled step.
        threads: `torch.set_num_threads`, fixed for the whole run.
        seed: weights, data and the order of variants within a round.
        mlflow: the monitors record into MLflow runs on a temporary SQLite store (real use);
            False measures the monitors without a run.
        models: which of "mlp", "cnn1d", "lstm" to run.
    """

    scale: Scale = "full"
    rounds: int = 15
    warmup_rounds: int = 0
    copies: int = 3
    block_steps: int = LOG_EVERY
    threads: int = 1
    seed: int = 0
    mlflow: bool = True
    models: tuple[str, ...] = ("mlp", "cnn1d", "lstm")

    def __post_init__(self) -> None:
        check_counts(self, positive=("rounds", "copies", "block_steps", "threads"),
                     non_negative=("warmup_rounds",))


FULL = OverheadConfig()
QUICK = OverheadConfig(scale="quick", rounds=3, copies=1)


@dataclass
class ModelResult:
    """The timings of one model: seconds per block, per variant, and what the monitors found."""

    model: str
    params: int
    block_steps: int
    times: dict[str, np.ndarray]
    findings: dict[str, list[str]] = field(default_factory=dict)
    close_s: dict[str, float] = field(default_factory=dict)

    def ms(self, variant: str) -> float:
        return per_step_ms(self.times[variant], self.block_steps)

    def ratio(self, variant: str, baseline: str = PLAIN) -> RatioStats:
        return ratios(self.times, variant, baseline)


class Loop:
    """One model copy of a variant, with its own optimizer, stepping through the shared batches."""

    def __init__(self, model: nn.Module, batches: list[tuple[torch.Tensor, torch.Tensor]], *,
                 naive: bool = False, anomaly: bool = False) -> None:
        self.model = model
        self.opt = torch.optim.AdamW(model.parameters(), lr=1e-4)
        self.batches, self.naive, self.anomaly = batches, naive, anomaly
        self.monitor: Any = None
        self.stats: dict[str, float] = {}

    def block(self) -> None:
        ctx = torch.autograd.detect_anomaly() if self.anomaly else contextlib.nullcontext()
        with ctx:
            for x, y in self.batches:
                self.opt.zero_grad(set_to_none=True)
                F.cross_entropy(self.model(x), y).backward()
                if self.naive:
                    for n, p in self.model.named_parameters():
                        self.stats[n] = p.grad.norm().item()
                self.opt.step()
        if self.monitor is not None:
            drain(self.monitor)


class Variant:
    """A variant's model copies; successive blocks rotate through them.

    Each copy has its own memory layout, which can make identical loops differ by a few
    percent for the whole run; rotating spreads that offset over every variant alike.
    """

    def __init__(self, loops: list[Loop]) -> None:
        self.loops, self._next = loops, 0

    def prime(self) -> None:
        for loop in self.loops:
            loop.block()

    def block(self) -> None:
        self.loops[self._next].block()
        self._next = (self._next + 1) % len(self.loops)


def drain(monitor: Any) -> None:
    """Waits for the monitor's asynchronous MLflow batches, inside the block's timing.

    Real training never waits here (only `close()` does); waiting charges every bit of logging
    work a block started to that block instead of letting it spill into the next variant's.
    """
    recorder = monitor.session.report.recorder
    if recorder is not None:
        recorder.close()  # flush + wait; the Recorder stays usable


def run_model(bench: Bench, cfg: OverheadConfig, uri: str | None,
              new_run: Callable[[str], str | None],
              progress: Callable[[str], None] | None = None) -> ModelResult:
    """Times every variant on one model; the monitors record into new runs at `uri`."""
    from mlflow_plugins import watch

    torch.manual_seed(cfg.seed)
    base = bench.build()
    batches = bench.batches(cfg.block_steps, cfg.seed)
    variants = {v: Variant([Loop(copy.deepcopy(base), batches, naive=v == NAIVE,
                                   anomaly=v == ANOMALY) for _ in range(cfg.copies)])
                for v in VARIANTS}
    result = ModelResult(bench.name, n_params(base), cfg.block_steps, {})
    monitored = {DEFAULTS: {}, EVERY_STEP: {"every_step": True}}
    for v, kwargs in monitored.items():
        for i, loop in enumerate(variants[v].loops):
            loop.monitor = watch(loop.model, loop.opt, tracking_uri=uri,
                                 run_id=new_run(f"{bench.name} {v} copy {i}"), **kwargs)
    try:
        for variant in variants.values():  # warm-up: one untimed block on every copy
            variant.prime()
        result.times = interleave({v: variant.block for v, variant in variants.items()},
                                  rounds=cfg.rounds, warmup_rounds=cfg.warmup_rounds,
                                  seed=cfg.seed, progress=progress)
    finally:
        for v in monitored:
            t0 = time.perf_counter()
            found: dict[str, None] = {}
            for loop in variants[v].loops:
                loop.monitor.close()
                found.update({f"{f.code} ({f.severity.value}) at {f.where}": None
                              for f in loop.monitor.findings})
            result.close_s[v] = (time.perf_counter() - t0) / cfg.copies
            result.findings[v] = list(found)
    return result


def run(cfg: OverheadConfig, *, show_progress: bool = True,
        tracking_uri: str | None = None) -> list[ModelResult]:
    """Runs every model of `cfg` with a fixed thread count; restores the thread count after.

    With `cfg.mlflow`, the monitors record into runs at `tracking_uri` (default: a temporary
    SQLite store).
    """
    chosen = [b for b in benches(cfg.scale) if b.name in cfg.models]
    if len(chosen) != len(cfg.models):
        known = [b.name for b in benches(cfg.scale)]
        raise ValueError(f"models={cfg.models!r} names unknown models; allowed: {known}")
    threads = torch.get_num_threads()
    torch.set_num_threads(cfg.threads)
    bar = progress_bar(len(chosen) * (cfg.rounds + cfg.warmup_rounds) * len(VARIANTS),
                        show_progress)  # counts timed and warm-up rounds, not the priming
    try:
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", message="Anomaly Detection has been enabled")
            # Findings are collected from `monitor.findings`; their warnings would only
            # interleave with the progress bar.
            warnings.filterwarnings("ignore", message="fixlab: ")
            results = []
            with contextlib.ExitStack() as stack:
                uri, new_run = (stack.enter_context(tracking_store(tracking_uri)) if cfg.mlflow
                                else (None, lambda name: None))
                for bench in chosen:
                    bar.set_description(bench.name)
                    results.append(run_model(bench, cfg, uri, new_run,
                                             progress=lambda _: bar.update()))
        return results
    finally:
        bar.close()
        torch.set_num_threads(threads)


def table(results: Sequence[ModelResult]) -> str:
    """The overhead table: one row per (model, non-baseline variant)."""
    header = ["model", "params", "variant", "plain ms/step", "variant ms/step", "median ratio",
              "IQR of ratio", "noise floor (twin/plain) [IQR]", "target", "met"]
    rows = []
    for r in results:
        floor = r.ratio(TWIN).fmt_with_iqr()
        for v in (DEFAULTS, EVERY_STEP, *REFERENCES):
            s = r.ratio(v)
            target = TARGETS.get(v)
            rows.append([r.model, f"{r.params / 1e6:.2f} M", v, f"{r.ms(PLAIN):.2f}",
                         f"{r.ms(v):.2f}", s.fmt(), s.fmt_iqr(), floor,
                         f"<= {target:.2f}x" if target else "reference",
                         _met(s, target) if target else "-"])
    return markdown_table(header, rows)


def _met(s: RatioStats, target: float) -> str:
    """"yes" when the median ratio is at most the target; flagged when the IQR straddles it."""
    verdict = "yes" if s.median <= target else "no"
    return f"{verdict} (IQR straddles)" if s.q1 <= target < s.q3 else verdict


def _faster(s: RatioStats) -> str:
    """Plugin/reference ratio: "yes" (faster), "no" (slower), or a tie within the IQR."""
    if s.q3 < 1:
        return "yes"
    if s.q1 > 1:
        return "no"
    return "tie (IQR spans 1)"


def versus_table(results: Sequence[ModelResult]) -> str:
    """The plugin against the references: per-round ratio of the plugin's block to theirs."""
    header = ["model", "variant", *(f"vs {ref}" for ref in REFERENCES),
              *(f"faster than {ref}" for ref in REFERENCES)]
    rows = []
    for r in results:
        for v in (DEFAULTS, EVERY_STEP):
            stats = [r.ratio(v, ref) for ref in REFERENCES]
            rows.append([r.model, v, *(s.fmt_with_iqr() for s in stats),
                         *(_faster(s) for s in stats)])
    return markdown_table(header, rows)


def report(results: Sequence[ModelResult], cfg: OverheadConfig, elapsed_s: float) -> str:
    """The markdown document written to results/overhead.md."""
    mode = cfg.scale
    findings = [f"- {r.model} / {v}: {', '.join(fs) if fs else 'none'}"
                for r in results for v, fs in r.findings.items()]
    closes = ", ".join(f"{r.model} {v}: {s:.2f} s" for r in results for v, s in r.close_s.items())
    return "\n".join([
        f"# watch() overhead ({mode} mode)",
        "",
        f"`python -m benchmarks.overhead{' --quick' if cfg.scale == 'quick' else ''}"
        f"{'' if cfg.mlflow else ' --no-mlflow'}`: "
        f"{cfg.rounds} timed rounds of {cfg.block_steps}-step blocks per variant, order "
        f"shuffled each round, after one warm-up block on each of the {cfg.copies} model "
        f"cop{'y' if cfg.copies == 1 else 'ies'} per variant"
        f"{f' and {cfg.warmup_rounds} discarded round(s)' if cfg.warmup_rounds else ''}; "
        f"ratios are medians of per-round ratios to the same round's plain block. MLflow "
        f"recording: "
        f"{'on (temporary SQLite store)' if cfg.mlflow else 'off'}. {elapsed_s:.0f} s in all.",
        f"Environment: {environment(cfg.threads)}",
        "",
        table(results),
        "",
        "The plugin against the references (per-round ratio plugin/reference, median [IQR]; "
        "below 1 means the plugin is faster; a tie when the IQR spans 1):",
        "",
        versus_table(results),
        "",
        "Findings the monitors raised (the models are healthy by construction, so each one "
        "deserves a look as a possible false alarm):",
        *findings,
        "",
        f"`Monitor.close()` per monitor (findings, tags, report artifacts; not in the step times): "
        f"{closes}.",
        "",
    ])


def main(argv: Sequence[str] | None = None, *, out: Path | None = None) -> str:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.overhead",
                                     description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="CI-friendly: under a minute")
    parser.add_argument("--rounds", type=int, help="timed rounds per model")
    parser.add_argument("--threads", type=int, help="torch.set_num_threads (default 1)")
    parser.add_argument("--models", nargs="+", choices=("mlp", "cnn1d", "lstm"))
    parser.add_argument("--no-mlflow", action="store_true",
                        help="monitors without an MLflow run (no recording)")
    parser.add_argument("--no-progress", action="store_true")
    parser.add_argument("--out", type=Path, help="markdown file (default benchmarks/results/"
                        "overhead.md, or overhead_quick.md with --quick)")
    args = parser.parse_args(argv)
    cfg = QUICK if args.quick else FULL
    cfg = replace(cfg, **{k: v for k, v in (("rounds", args.rounds), ("threads", args.threads))
                          if v is not None},
                  **({"models": tuple(args.models)} if args.models else {}),
                  mlflow=not args.no_mlflow)
    t0 = time.perf_counter()
    path = out or args.out or RESULTS / ("overhead_quick.md" if args.quick else "overhead.md")
    return run_and_write(lambda: report(run(cfg, show_progress=not args.no_progress), cfg,
                                        time.perf_counter() - t0), path)


if __name__ == "__main__":
    main()
