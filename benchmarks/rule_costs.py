"""What each check of issue 15 adds to a training step, at its default, within one run.

    python -m benchmarks rule_costs            # about 8 minutes
    python -m benchmarks rule_costs --quick    # under a minute

Variants, on model copies with identical weights and batches (the method of `overhead`):

- ``plain`` and ``plain (twin)``: the bare loop, twice; twin/plain is the noise floor;
- ``watch() without them``: `watch()` with the checks below switched off (what it cost before);
- ``+ <check>``: that one check switched back on;
- ``watch() defaults``: every check on.

Plus the evaluation check (`monitor.evaluation()`): a 20-batch evaluation pass with and without
it, interleaved the same way. The replica check runs only under DDP (see the README).
"""

from __future__ import annotations

import argparse
import contextlib
import copy
import time
import warnings
from pathlib import Path
from typing import Any, Callable, Sequence

import numpy as np
import torch

from .harness import (environment, interleave, markdown_table, per_step_ms, progress_bar, ratios,
                      run_and_write, tracking_store)
from .models import Bench, benches, n_params
from .overhead import LOG_EVERY, Loop, OverheadConfig, Variant

RESULTS = Path(__file__).resolve().parent / "results"
PLAIN, TWIN, BASE, DEFAULTS = "plain", "plain (twin)", "watch() without them", "watch() defaults"
# each check (with the code it feeds): the Monitor attribute that holds it, a path from the monitor
CHECKS = {"+ update size (UPDATES_NOT_APPLIED)": "watch.updates",
          "+ gradient reset (GRAD_NOT_RESET)": "watch.resets",
          "+ backward count (step() skipped)": "watch.steps",
          "+ autocast coverage (AUTOCAST_NOT_APPLIED)": "autocast"}
VARIANTS = (PLAIN, TWIN, BASE, *CHECKS, DEFAULTS)
EVAL_PLAIN, EVAL_TWIN, EVAL_CHECKED = "evaluation", "evaluation (twin)", "monitor.evaluation()"

FULL = OverheadConfig()
QUICK = OverheadConfig(scale="quick", rounds=3, copies=1)


class _Off:
    """A check switched off: every method the monitor calls does nothing."""

    armed, since = False, 0

    def __getattr__(self, name: str) -> Callable[..., Any]:
        from mlflow_plugins.session import StepReport

        return lambda *args, **kwargs: StepReport()


def _switch_off(monitor: Any, keep: str | None) -> None:
    for path in CHECKS.values():
        if path != keep:
            owner, _, attr = path.rpartition(".")
            holder = monitor.watch if owner else monitor
            if attr == "steps":
                holder.steps.remove()  # its hook counts every backward
            setattr(holder, attr, _Off())


def run_model(bench: Bench, cfg: OverheadConfig, uri: str, new_run: Callable[[str], str],
              progress: Callable[[str], None]) -> dict[str, Any]:
    """Step times of every variant, and evaluation-pass times with and without the check."""
    from mlflow_plugins import watch

    torch.manual_seed(cfg.seed)
    base = bench.build()
    batches = bench.batches(cfg.block_steps, cfg.seed)
    variants = {v: Variant([Loop(copy.deepcopy(base), batches) for _ in range(cfg.copies)])
                for v in VARIANTS}
    keeps = {BASE: "", DEFAULTS: None, **{v: attr for v, attr in CHECKS.items()}}
    for v, keep in keeps.items():
        for i, loop in enumerate(variants[v].loops):
            loop.monitor = watch(loop.model, loop.opt, tracking_uri=uri,
                                 run_id=new_run(f"{bench.name} {v} copy {i}"))
            if keep is not None:
                _switch_off(loop.monitor, keep)
    evals = _evaluations(base, batches[:20], uri, new_run)
    try:
        for variant in variants.values():
            variant.prime()
        times = interleave({**{v: variant.block for v, variant in variants.items()}, **evals["blocks"]},
                           rounds=cfg.rounds, warmup_rounds=cfg.warmup_rounds, seed=cfg.seed,
                           progress=progress)
    finally:
        found: dict[str, None] = {}
        for v in keeps:
            for loop in variants[v].loops:
                loop.monitor.close()
                found.update({f"{f.code} at {f.where}": None for f in loop.monitor.findings})
        evals["monitor"].close()
        found.update({f"{f.code} at {f.where}": None for f in evals["monitor"].findings})
    return {"model": bench.name, "params": n_params(base), "times": times, "findings": list(found),
            "eval_batches": min(20, len(batches))}


def _evaluations(base: torch.nn.Module, batches: list, uri: str,
                 new_run: Callable[[str], str]) -> dict[str, Any]:
    """Blocks of one evaluation pass over `batches`: plain (twice) and inside `evaluation()`."""
    from mlflow_plugins import watch

    models = {v: copy.deepcopy(base).eval() for v in (EVAL_PLAIN, EVAL_TWIN, EVAL_CHECKED)}
    checked = models[EVAL_CHECKED]
    monitor = watch(checked, torch.optim.AdamW(checked.parameters(), 1e-4), tracking_uri=uri,
                    run_id=new_run("evaluation"))

    def block(model: torch.nn.Module, marked: bool) -> Callable[[], None]:
        def run() -> None:
            with (monitor.evaluation() if marked else contextlib.nullcontext()), torch.no_grad():
                for x, _ in batches:
                    model(x)
        return run

    return {"monitor": monitor,
            "blocks": {v: block(m, v == EVAL_CHECKED) for v, m in models.items()}}


def table(results: Sequence[dict[str, Any]], cfg: OverheadConfig) -> str:
    header = ["model", "params", "variant", "ms/step (eval: ms/pass)", "vs plain: median [IQR]",
              "vs watch() without them", "noise floor (twin/plain) [IQR]"]
    rows = []
    for r in results:
        t = r["times"]
        floor = ratios(t, TWIN, PLAIN).fmt_with_iqr()
        for v in (BASE, *CHECKS, DEFAULTS):
            rows.append([r["model"], f"{r['params'] / 1e6:.2f} M", v, f"{per_step_ms(t[v], cfg.block_steps):.2f}",
                         ratios(t, v, PLAIN).fmt_with_iqr(),
                         ratios(t, v, BASE).fmt() if v != BASE else "-", floor])
        rows.append([r["model"], "", f"{EVAL_CHECKED} ({r['eval_batches']} batches)", f"{np.median(t[EVAL_CHECKED]) * 1e3:.1f}",
                     ratios(t, EVAL_CHECKED, EVAL_PLAIN).fmt_with_iqr(), "-",
                     ratios(t, EVAL_TWIN, EVAL_PLAIN).fmt_with_iqr()])
    return markdown_table(header, rows)


def run(cfg: OverheadConfig, *, show_progress: bool = True) -> list[dict[str, Any]]:
    chosen = [b for b in benches(cfg.scale) if b.name in cfg.models]
    threads = torch.get_num_threads()
    torch.set_num_threads(cfg.threads)
    bar = progress_bar(len(chosen) * (cfg.rounds + cfg.warmup_rounds) * (len(VARIANTS) + 3), show_progress)
    try:
        with warnings.catch_warnings(), tracking_store() as (uri, new_run):
            warnings.filterwarnings("ignore", message="fixlab: ")
            results = []
            for bench in chosen:
                bar.set_description(bench.name)
                results.append(run_model(bench, cfg, uri, new_run, progress=lambda _: bar.update()))
        return results
    finally:
        bar.close()
        torch.set_num_threads(threads)


def main(argv: Sequence[str] | None = None, *, out: Path | None = None) -> str:
    parser = argparse.ArgumentParser(prog="python -m benchmarks rule_costs",
                                     description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="under a minute")
    parser.add_argument("--rounds", type=int, help="timed rounds per model")
    parser.add_argument("--models", nargs="+", choices=("mlp", "cnn1d", "lstm"))
    parser.add_argument("--no-progress", action="store_true")
    parser.add_argument("--out", type=Path, help="markdown file (default benchmarks/results/"
                        "rule_costs.md, or rule_costs_quick.md with --quick)")
    args = parser.parse_args(argv)
    cfg = QUICK if args.quick else FULL
    if args.rounds:
        cfg = OverheadConfig(**{**cfg.__dict__, "rounds": args.rounds})
    if args.models:
        cfg = OverheadConfig(**{**cfg.__dict__, "models": tuple(args.models)})
    path = out or args.out or RESULTS / ("rule_costs_quick.md" if args.quick else "rule_costs.md")

    def measure() -> str:
        t0 = time.perf_counter()
        results = run(cfg, show_progress=not args.no_progress)
        findings = [f"- {r['model']}: {', '.join(r['findings']) or 'none'}" for r in results]
        return "\n".join([
            f"# Cost of each issue-15 check ({cfg.scale} mode)", "",
            f"`python -m benchmarks rule_costs{' --quick' if args.quick else ''}`: {cfg.rounds} "
            f"timed rounds of {cfg.block_steps}-step blocks (log_every = {LOG_EVERY}: one sampled "
            f"step per block), variants shuffled each round, medians of per-round ratios. "
            f"{time.perf_counter() - t0:.0f} s in all.",
            f"Environment: {environment(cfg.threads)}", "", table(results, cfg), "",
            "Findings on these healthy models (each would be a false alarm):", *findings, ""])

    return run_and_write(measure, path)


if __name__ == "__main__":
    main()
