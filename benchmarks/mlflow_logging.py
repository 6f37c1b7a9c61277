"""Per-step MLflow logging: fixlab's `Recorder` against Lightning's `MLFlowLogger`.

    python -m benchmarks.mlflow_logging            # full mode, a few minutes
    python -m benchmarks.mlflow_logging --quick    # CI-friendly, under a minute

(Also `python -m benchmarks logging`. The module is not called `logging` so that it can never
shadow the standard library's.)

Every step logs the same ~100 metrics through one of:

- ``Recorder``: `Recorder(run_id, uri).log_metrics(metrics, step)` each step (buffered), a
  flush every 50 steps (asynchronous batches), `close()` at the end (waits for every batch);
- ``Lightning MLFlowLogger``: `MLFlowLogger(run_id=..., synchronous=True).log_metrics(metrics,
  step)` each step, one synchronous `log_batch` per call.

Both write to the same temporary SQLite store, each into its own run. Two loops are measured:
logging alone (the cost of the call itself; baseline: the Recorder, with a twin Recorder for
the noise floor) and the full-scale MLP training step plus logging (baseline: the plain step,
with a twin plain loop for the noise floor). Each block is one flush interval (50 steps): the
Recorder flushes on the block's first step (the 50 steps before it), the write overlaps the
rest of the block as it overlaps the next 49 steps in real training, and the block ends waiting
for it, so every asynchronous write is charged to the block that started it. Real training
waits only once, in `close()` at the end; the benchmark calls `close()` after the last block
and checks that every point landed.
"""

from __future__ import annotations

import argparse
import contextlib
import copy
import os
import sys
import time
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, Callable, Iterator, Sequence

import numpy as np
import torch
import torch.nn.functional as F

from .harness import (RatioStats, check_counts, environment, interleave, markdown_table, per_step_ms,
                      ratios, run_and_write, tracking_store)
from .models import Scale, benches, n_params

RESULTS = Path(__file__).resolve().parent / "results"

PLAIN, PLAIN_TWIN = "plain", "plain (twin)"
RECORDER, RECORDER_TWIN = "Recorder", "Recorder (twin)"
LIGHTNING = "Lightning MLFlowLogger"


@dataclass(frozen=True)
class LoggingConfig:
    """What to measure and how long.

    Args:
        scale: size of the MLP of the training loop ("full", "quick" or "tiny").
        rounds: timed rounds; each runs one block of every variant, in a shuffled order.
        warmup_rounds: rounds run first and discarded.
        flush_every: steps per block; the Recorder flushes (and is waited for) once per block.
        n_metrics: metrics logged per step.
        threads: `torch.set_num_threads`, fixed for the whole run.
        seed: weights, data, metric values and the order of variants within a round.
        training_loop: also measure logging inside the MLP training loop.
    """

    scale: Scale = "full"
    rounds: int = 15
    warmup_rounds: int = 1
    flush_every: int = 50
    n_metrics: int = 100
    threads: int = 1
    seed: int = 0
    training_loop: bool = True

    def __post_init__(self) -> None:
        check_counts(self, positive=("rounds", "flush_every", "n_metrics", "threads"),
                     non_negative=("warmup_rounds",))


FULL = LoggingConfig()
QUICK = LoggingConfig(scale="quick", rounds=3, warmup_rounds=1)


@dataclass
class LoopResult:
    """Block times of one loop ("logging only" or the training loop), per variant."""

    loop: str
    baseline: str
    twin: str
    steps: int
    times: dict[str, np.ndarray]
    points_logged: dict[str, int]
    points_stored: dict[str, int]
    in_calls: dict[str, np.ndarray]  # seconds per block spent inside the logging calls
    waits: dict[str, np.ndarray]  # seconds per block waiting for the block's write at its end

    def ms(self, variant: str) -> float:
        return per_step_ms(self.times[variant], self.steps)

    def ratio(self, variant: str, baseline: str | None = None) -> RatioStats:
        return ratios(self.times, variant, baseline or self.baseline)


class _Logging:
    """One variant's logger, kept for the whole benchmark, and the step it has reached."""

    def __init__(self, kind: str, run_id: str, uri: str, flush_every: int) -> None:
        self.kind, self.run_id, self.flush_every = kind, run_id, flush_every
        self.step = 0
        self.in_calls_s: list[float] = []  # per block: time spent inside the logging calls
        self.wait_s: list[float] = []  # per block: time waiting for the block's write at its end
        self._in_calls = 0.0
        if kind == "recorder":
            from mlflow_plugins.recording import Recorder

            self.recorder: Any = Recorder(run_id, uri)
        else:
            from lightning.pytorch.loggers import MLFlowLogger

            self.logger: Any = MLFlowLogger(tracking_uri=uri, run_id=run_id, synchronous=True)
            _ = self.logger.experiment  # resolves the run once, as Trainer set-up does

    def log(self, metrics: dict[str, float]) -> None:
        t0 = time.perf_counter()
        if self.kind == "recorder":
            self.recorder.log_metrics(metrics, self.step)
            # The first step of a block flushes the 50 steps before it, so the asynchronous
            # write overlaps the rest of the block, as it overlaps the next 49 steps in training.
            if self.step % self.flush_every == 0:
                self.recorder.flush()
        else:
            self.logger.log_metrics(metrics, self.step)
        self._in_calls += time.perf_counter() - t0
        self.step += 1

    def end_block(self) -> None:
        """Waits, inside the block's timing, for the asynchronous write the block started."""
        t0 = time.perf_counter()
        if self.kind == "recorder":
            self.recorder.wait_flushed()  # what the block sent, not the steps logged since
        self.wait_s.append(time.perf_counter() - t0)
        self.in_calls_s.append(self._in_calls)
        self._in_calls = 0.0

    def close(self) -> None:
        if self.kind == "recorder":
            self.recorder.close()


def _metric_steps(n_steps: int, n_metrics: int, seed: int) -> list[dict[str, float]]:
    """The metrics of each step of a block, built up front: both loggers get the same dicts."""
    rng = np.random.default_rng(seed)
    values = rng.standard_normal((n_steps, n_metrics))
    return [{f"train/metric_{j:03d}": float(v) for j, v in enumerate(row)} for row in values]


@contextlib.contextmanager
def _restoring_tracking_uri() -> Iterator[None]:
    """Lightning's logger sets MLflow's global tracking URI; put the caller's back afterwards."""
    import mlflow

    previous = os.environ.get("MLFLOW_TRACKING_URI")  # set_tracking_uri mirrors itself here
    try:
        yield
    finally:
        mlflow.set_tracking_uri(previous)


def _stored_points(uri: str, run_id: str, n_metrics: int) -> int:
    from mlflow import MlflowClient

    client = MlflowClient(tracking_uri=uri)
    return sum(len(client.get_metric_history(run_id, f"train/metric_{j:03d}"))
               for j in range(n_metrics))


def run_loop(loop: str, cfg: LoggingConfig, uri: str, new_run: Callable[[str], str],
             progress: Callable[[str], None] | None = None) -> LoopResult:
    """Times one loop; `loop` is "logging only" or the name of the training model."""
    metrics = _metric_steps(cfg.flush_every, cfg.n_metrics, cfg.seed)
    train: dict[str, Callable[[int], None]] = {}
    if loop == "logging only":
        variants = {RECORDER: "recorder", RECORDER_TWIN: "recorder", LIGHTNING: "lightning"}
        baseline, twin = RECORDER, RECORDER_TWIN
    else:
        bench = next(b for b in benches(cfg.scale) if b.name == "mlp")
        torch.manual_seed(cfg.seed)
        base = bench.build()
        batches = bench.batches(cfg.flush_every, cfg.seed)
        variants = {PLAIN: None, PLAIN_TWIN: None, RECORDER: "recorder", LIGHTNING: "lightning"}
        baseline, twin = PLAIN, PLAIN_TWIN
        for v in variants:
            train[v] = _train_step(copy.deepcopy(base), batches)
    loggers = {v: _Logging(kind, new_run(f"{loop} {v}"), uri, cfg.flush_every)
               for v, kind in variants.items() if kind is not None}

    def block(v: str) -> Callable[[], None]:
        step, logger = train.get(v), loggers.get(v)

        def run_block() -> None:
            for i in range(cfg.flush_every):
                if step is not None:
                    step(i)
                if logger is not None:
                    logger.log(metrics[i])
            if logger is not None:
                logger.end_block()
        return run_block

    times = interleave({v: block(v) for v in variants}, rounds=cfg.rounds,
                       warmup_rounds=cfg.warmup_rounds, seed=cfg.seed, progress=progress)
    for lg in loggers.values():
        lg.close()
    logged = {v: lg.step * cfg.n_metrics for v, lg in loggers.items()}
    in_calls = {v: np.asarray(lg.in_calls_s[cfg.warmup_rounds:]) for v, lg in loggers.items()}
    waits = {v: np.asarray(lg.wait_s[cfg.warmup_rounds:]) for v, lg in loggers.items()}
    stored = {v: _stored_points(uri, lg.run_id, cfg.n_metrics) for v, lg in loggers.items()}
    label = (loop if loop == "logging only"
             else f"{loop} training step ({n_params(base) / 1e6:.1f} M)")
    return LoopResult(label, baseline, twin, cfg.flush_every, times, logged, stored, in_calls,
                      waits)


def _train_step(model: torch.nn.Module, batches: list[tuple[torch.Tensor, torch.Tensor]]
                ) -> Callable[[int], None]:
    opt = torch.optim.AdamW(model.parameters(), lr=1e-4)

    def step(i: int) -> None:
        x, y = batches[i % len(batches)]
        opt.zero_grad(set_to_none=True)
        F.cross_entropy(model(x), y).backward()
        opt.step()
    return step


def run(cfg: LoggingConfig, *, show_progress: bool = True,
        tracking_uri: str | None = None) -> list[LoopResult]:
    """Runs both loops with a fixed thread count; restores the thread count after.

    The loggers write into runs at `tracking_uri` (default: a temporary SQLite store).
    """
    loops = ["logging only"] + (["mlp"] if cfg.training_loop else [])
    threads = torch.get_num_threads()
    torch.set_num_threads(cfg.threads)
    from tqdm import tqdm

    n_variants = {"logging only": 3, "mlp": 4}
    bar = tqdm(total=sum(n_variants[lp] for lp in loops) * (cfg.rounds + cfg.warmup_rounds),
               unit="block", disable=not show_progress, file=sys.stderr, leave=False)
    try:
        with _restoring_tracking_uri(), tracking_store(tracking_uri) as (uri, new_run):
            results = []
            for loop in loops:
                bar.set_description(loop)
                results.append(run_loop(loop, cfg, uri, new_run, progress=lambda _: bar.update()))
        return results
    finally:
        bar.close()
        torch.set_num_threads(threads)


def table(results: Sequence[LoopResult]) -> str:
    header = ["loop", "variant", "ms/step", "inside logging calls", "waiting at block end",
              "ratio to baseline", "IQR of ratio", "noise floor (twin/baseline) [IQR]",
              "metric points stored/logged"]
    rows = []
    for r in results:
        floor = r.ratio(r.twin).fmt_with_iqr()
        for v in r.times:
            if v == r.twin:
                continue
            s = r.ratio(v)
            logged = v in r.points_logged
            rows.append([r.loop, v + (" (baseline)" if v == r.baseline else ""),
                         f"{r.ms(v):.3f}",
                         f"{per_step_ms(r.in_calls[v], r.steps):.3f}" if logged else "-",
                         f"{per_step_ms(r.waits[v], r.steps):.3f}" if logged else "-",
                         "1 (baseline)" if v == r.baseline else s.fmt(),
                         "-" if v == r.baseline else s.fmt_iqr(), floor,
                         f"{r.points_stored[v]}/{r.points_logged[v]}" if logged else "-"])
    return markdown_table(header, rows)


def versus_table(results: Sequence[LoopResult]) -> str:
    header = ["loop", "Recorder ms/step", "MLFlowLogger ms/step", "logging cost per step "
              "(variant - plain), Recorder / MLFlowLogger", "MLFlowLogger / Recorder, median "
              "[IQR]", "noise floor [IQR]"]
    rows = []
    for r in results:
        cost = "-"
        if r.baseline == PLAIN:
            cost = f"{r.ms(RECORDER) - r.ms(PLAIN):.3f} / {r.ms(LIGHTNING) - r.ms(PLAIN):.3f} ms"
        rows.append([r.loop, f"{r.ms(RECORDER):.3f}", f"{r.ms(LIGHTNING):.3f}", cost,
                     r.ratio(LIGHTNING, RECORDER).fmt_with_iqr(),
                     r.ratio(r.twin).fmt_with_iqr()])
    return markdown_table(header, rows)


def report(results: Sequence[LoopResult], cfg: LoggingConfig, elapsed_s: float) -> str:
    threads = torch.get_num_threads()
    torch.set_num_threads(cfg.threads)
    env = environment()
    torch.set_num_threads(threads)
    return "\n".join([
        f"# MLflow logging per step ({cfg.scale} mode)",
        "",
        f"`python -m benchmarks.mlflow_logging{' --quick' if cfg.scale == 'quick' else ''}`: "
        f"{cfg.n_metrics} metrics per step, SQLite store in a temporary directory. "
        f"{cfg.rounds} timed rounds (+{cfg.warmup_rounds} warm-up) of {cfg.flush_every}-step "
        f"blocks per variant, order shuffled each round. The Recorder flushes on each block's "
        f"first step and the block ends waiting for that asynchronous write (so all of it is "
        f"charged); `close()` after the last block. All times are ms per step (medians over "
        f"blocks): 'inside logging calls' is the time the training thread spends in "
        f"`log_metrics`/`flush` (Recorder) or `log_metrics` (Lightning); 'waiting at block end' "
        f"is the part of the Recorder's write still running when the block's steps were done. "
        f"{elapsed_s:.0f} s in all.",
        f"Environment: {env}",
        "",
        table(results),
        "",
        "Recorder against Lightning's MLFlowLogger (per-round ratio of block times):",
        "",
        versus_table(results),
        "",
    ])


def main(argv: Sequence[str] | None = None, *, out: Path | None = None) -> str:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.mlflow_logging",
                                     description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="CI-friendly: under a minute")
    parser.add_argument("--rounds", type=int, help="timed rounds per loop")
    parser.add_argument("--threads", type=int, help="torch.set_num_threads (default 1)")
    parser.add_argument("--no-training-loop", action="store_true",
                        help="only the logging-only loop")
    parser.add_argument("--no-progress", action="store_true")
    parser.add_argument("--out", type=Path, help="markdown file (default benchmarks/results/"
                        "logging.md, or logging_quick.md with --quick)")
    args = parser.parse_args(argv)
    cfg = QUICK if args.quick else FULL
    cfg = replace(cfg, **{k: v for k, v in (("rounds", args.rounds), ("threads", args.threads))
                          if v is not None}, training_loop=not args.no_training_loop)
    t0 = time.perf_counter()
    path = out or args.out or RESULTS / ("logging_quick.md" if args.quick else "logging.md")
    return run_and_write(lambda: report(run(cfg, show_progress=not args.no_progress), cfg,
                                        time.perf_counter() - t0), path)


if __name__ == "__main__":
    main()
