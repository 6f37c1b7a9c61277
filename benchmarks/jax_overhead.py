"""Step-time overhead of the JAX monitoring on a jitted Flax NNX train step (CPU).

    python -m benchmarks jax            # full mode, about 4 minutes
    python -m benchmarks jax --quick    # CI-friendly, under a minute

The model: a 1-D conv net (five strided Conv -> LayerNorm -> GELU stages, global average
pool, linear head; 1.6 M parameters at full scale) on (8, 2, 2048) inputs, AdamW. Variants,
each a separately compiled step with its own parameters and optimizer state (identical initial
values, the same batches):

- ``plain`` and ``plain (twin)``: the bare step, twice; twin/plain is the noise floor;
- ``monitored defaults``: `probe_norms` on the five LayerNorms, `monitored(adamw)` and
  `watch_jax(params)` at log_every=50 with `observe(...)` after every step; target <= 1.05x;
- ``in-jit statistics only``: the step of ``monitored defaults`` without `watch_jax`: what the
  statistics and probes cost inside the compiled step, apart from reading and recording them;
- ``every_step=True``: `watch_jax(every_step=True)`, one host read of every statistic per step.

Blocks are log_every = 50 steps, so each monitored block holds one full read and one flush,
and end with `jax.block_until_ready` on the parameters. See benchmarks/harness.py for the
method (interleaved blocks, shuffled order per round, medians of per-round ratios).
"""

from __future__ import annotations

import argparse
import contextlib
import os
import platform
import time
import warnings
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, Callable, Literal, Sequence

import numpy as np

from .harness import (RatioStats, check_counts, interleave, markdown_table, per_step_ms, progress_bar, ratios,
                      run_and_write, tracking_store)

RESULTS = Path(__file__).resolve().parent / "results"
LOG_EVERY = 50

PLAIN, TWIN = "plain", "plain (twin)"
DEFAULTS, IN_JIT, EVERY_STEP = "monitored defaults", "in-jit statistics only", "every_step=True"
VARIANTS = (PLAIN, TWIN, DEFAULTS, IN_JIT, EVERY_STEP)
TARGETS = {DEFAULTS: 1.05}
Scale = Literal["full", "quick", "tiny"]
# scale -> (conv widths, batch, input length)
_SIZES: dict[str, tuple[tuple[int, ...], int, int]] = {
    "full": ((32, 64, 128, 256, 512), 8, 2048),
    "quick": ((16, 32, 64, 128, 256), 4, 1024),
    "tiny": ((4, 8), 2, 64),
}


@dataclass(frozen=True)
class JaxOverheadConfig:
    """What to measure and how long.

    Args:
        scale: model and input sizes: "full" (1.6 M parameters, (8, 2, 2048) inputs),
            "quick" (0.4 M, (4, 2, 1024)) or "tiny".
        rounds: timed rounds; each runs one block of every variant, in a shuffled order.
        warmup_rounds: rounds run and discarded after the compile-and-warm-up block.
        block_steps: steps per block; a multiple of log_every (50) so that every monitored
            block holds one full read.
        seed: weights, data and the order of variants within a round.
        mlflow: the monitors record into MLflow runs on a temporary SQLite store (real use).
    """

    scale: Scale = "full"
    rounds: int = 15
    warmup_rounds: int = 1
    block_steps: int = LOG_EVERY
    seed: int = 0
    mlflow: bool = True

    def __post_init__(self) -> None:
        check_counts(self, positive=("rounds", "block_steps"), non_negative=("warmup_rounds",))
        if self.scale not in _SIZES:
            raise ValueError(f"scale={self.scale!r} is not a scale; allowed: {sorted(_SIZES)}")


FULL = JaxOverheadConfig()
QUICK = JaxOverheadConfig(scale="quick", rounds=4, warmup_rounds=0)


@dataclass
class Result:
    """Seconds per block, per variant, and what the monitors found."""

    params: int
    block_steps: int
    times: dict[str, np.ndarray]
    findings: dict[str, list[str]]

    def ms(self, variant: str) -> float:
        return per_step_ms(self.times[variant], self.block_steps)

    def ratio(self, variant: str, baseline: str = PLAIN) -> RatioStats:
        return ratios(self.times, variant, baseline)


def build_model(scale: Scale, seed: int) -> Any:
    """The conv net: Conv(k=9, stride 2) -> LayerNorm -> GELU stages, mean pool, linear head."""
    from flax import nnx
    import jax.numpy as jnp

    widths = _SIZES[scale][0]

    class ConvNet1d(nnx.Module):
        def __init__(self, rngs: nnx.Rngs) -> None:
            chans = (2, *widths)
            self.convs = nnx.List([nnx.Conv(a, b, (9,), strides=(2,), rngs=rngs)
                                   for a, b in zip(chans[:-1], chans[1:])])
            self.norms = nnx.List([nnx.LayerNorm(b, rngs=rngs) for b in widths])
            self.head = nnx.Linear(widths[-1], 2, rngs=rngs)

        def __call__(self, x: Any) -> Any:  # x: (B, 2, T)
            h = jnp.swapaxes(x, 1, 2)  # channels last: (B, T, 2)
            for conv, norm in zip(self.convs, self.norms):
                h = nnx.gelu(norm(conv(h)))
            return self.head(h.mean(axis=1))

    return ConvNet1d(nnx.Rngs(seed))


def make_step(graphdef: Any, tx: Any) -> Callable[..., Any]:
    """The functional train step of the contract: merge, loss, grads, `nnx.pop` intermediates."""
    import jax
    import optax
    from flax import nnx

    def loss_fn(params: Any, rest: Any, x: Any, y: Any) -> Any:
        model = nnx.merge(graphdef, params, rest)
        loss = optax.softmax_cross_entropy_with_integer_labels(model(x), y).mean()
        return loss, ({"loss": loss}, nnx.pop(model, nnx.Intermediate))

    @jax.jit
    def step(params: Any, opt_state: Any, rest: Any, x: Any, y: Any) -> Any:
        (_, (metrics, inter)), grads = jax.value_and_grad(loss_fn, has_aux=True)(
            params, rest, x, y)
        updates, opt_state = tx.update(grads, opt_state, params)
        return optax.apply_updates(params, updates), opt_state, metrics, inter

    return step


class _Loop:
    """One variant: its compiled step, parameters, optimizer state and (maybe) monitor."""

    def __init__(self, variant: str, cfg: JaxOverheadConfig, batches: list[tuple[Any, Any]],
                 uri: str | None, new_run: Callable[[str], str | None]) -> None:
        import optax
        from flax import nnx

        from mlflow_plugins.jax import monitored, probe_norms, watch_jax

        model = build_model(cfg.scale, cfg.seed)
        self.monitored = variant not in (PLAIN, TWIN)
        if self.monitored:
            probe_norms(model)
        self.graphdef, self.params, self.rest = nnx.split(model, nnx.Param, ...)
        tx = optax.adamw(1e-4)
        if self.monitored:
            tx = monitored(tx, log_every=LOG_EVERY)
        self.opt_state = tx.init(self.params)
        self.step_fn = make_step(self.graphdef, tx)
        self.batches, self.step = batches, 0
        self.monitor = (watch_jax(self.params, log_every=LOG_EVERY,
                                  every_step=variant == EVERY_STEP,
                                  tracking_uri=uri, run_id=new_run(variant))
                        if variant in (DEFAULTS, EVERY_STEP) else None)

    def block(self) -> None:
        import jax
        from flax import nnx

        for x, y in self.batches:
            before = self.params
            self.params, self.opt_state, _, inter = self.step_fn(
                self.params, self.opt_state, self.rest, x, y)
            if self.monitor is not None:
                self.monitor.observe(self.step, self.opt_state, intermediates=inter,
                                     locate=lambda b=before, x=x: (
                                         nnx.merge(self.graphdef, b, self.rest), (x,)))
            self.step += 1
        jax.block_until_ready(self.params)
        if self.monitor is not None and self.monitor.session.report.recorder is not None:
            self.monitor.session.report.recorder.close()  # the block's logging is charged to it

    def close(self) -> list[str]:
        if self.monitor is None:
            return []
        self.monitor.close()
        return [f"{f.code} ({f.severity.value}) at {f.where}" for f in self.monitor.findings]


def _batches(cfg: JaxOverheadConfig) -> list[tuple[Any, Any]]:
    import jax
    import jax.numpy as jnp

    _, batch, length = _SIZES[cfg.scale]
    key = jax.random.key(cfg.seed + 1)
    xs = jax.random.normal(key, (cfg.block_steps, batch, 2, length), jnp.float32)
    ys = jnp.arange(cfg.block_steps * batch).reshape(cfg.block_steps, batch) % 2
    return [(xs[i], ys[i]) for i in range(cfg.block_steps)]


def run(cfg: JaxOverheadConfig, *, show_progress: bool = True,
        tracking_uri: str | None = None) -> Result:
    """Compiles and warms every variant, then times them in interleaved blocks."""
    import jax

    progress = progress_bar((cfg.rounds + cfg.warmup_rounds) * len(VARIANTS), show_progress)
    try:
        with warnings.catch_warnings(), contextlib.ExitStack() as stack:
            warnings.filterwarnings("ignore", message="fixlab: ")
            uri, new_run = (stack.enter_context(tracking_store(tracking_uri)) if cfg.mlflow
                            else (None, lambda name: None))
            batches = _batches(cfg)
            loops = {v: _Loop(v, cfg, batches, uri, new_run) for v in VARIANTS}
            for loop in loops.values():  # compile and warm up, untimed
                loop.block()
            times = interleave({v: loop.block for v, loop in loops.items()}, rounds=cfg.rounds,
                               warmup_rounds=cfg.warmup_rounds, seed=cfg.seed,
                               progress=lambda _: progress.update())
            n_params = sum(int(x.size) for x in jax.tree.leaves(loops[PLAIN].params))
            findings = {v: loops[v].close() for v in VARIANTS if loops[v].monitor is not None}
        return Result(n_params, cfg.block_steps, times, findings)
    finally:
        progress.close()


def table(result: Result) -> str:
    """One row per non-baseline variant: ms per step, ratio to plain, noise floor, target."""
    header = ["params", "variant", "plain ms/step", "variant ms/step", "median ratio",
              "IQR of ratio", "noise floor (twin/plain) [IQR]", "target", "met"]
    floor = result.ratio(TWIN).fmt_with_iqr()
    rows = []
    for v in (DEFAULTS, IN_JIT, EVERY_STEP):
        s, target = result.ratio(v), TARGETS.get(v)
        rows.append([f"{result.params / 1e6:.2f} M", v, f"{result.ms(PLAIN):.2f}",
                     f"{result.ms(v):.2f}", s.fmt(), s.fmt_iqr(), floor,
                     f"<= {target:.2f}x" if target else "reference",
                     _met(s, target) if target else "-"])
    return markdown_table(header, rows)


def _met(s: RatioStats, target: float) -> str:
    """"yes" when the median ratio is at most the target; flagged when the IQR straddles it."""
    verdict = "yes" if s.median <= target else "no"
    return f"{verdict} (IQR straddles)" if s.q1 <= target < s.q3 else verdict


def environment() -> str:
    """One line describing where the numbers were measured."""
    import flax
    import jax
    import mlflow
    import optax

    load = ", ".join(f"{x:.1f}" for x in os.getloadavg())
    return (f"python {platform.python_version()}, jax {jax.__version__} "
            f"({jax.default_backend()}), flax {flax.__version__}, optax {optax.__version__}, "
            f"mlflow {mlflow.__version__}, {os.cpu_count()} CPU(s), load average {load}")


def report(result: Result, cfg: JaxOverheadConfig, elapsed_s: float) -> str:
    """The markdown document written to results/jax_overhead.md."""
    _, batch, length = _SIZES[cfg.scale]
    findings = [f"- {v}: {', '.join(fs) if fs else 'none'}" for v, fs in result.findings.items()]
    return "\n".join([
        f"# JAX monitoring overhead ({cfg.scale} mode)",
        "",
        f"`python -m benchmarks jax{' --quick' if cfg.scale == 'quick' else ''}"
        f"{'' if cfg.mlflow else ' --no-mlflow'}`: a jitted Flax NNX train step (1-D conv "
        f"net, five LayerNorms, AdamW) on ({batch}, 2, {length}) inputs. {cfg.rounds} timed "
        f"rounds of {cfg.block_steps}-step blocks per variant, order shuffled each round, after "
        f"one compile-and-warm-up block per variant"
        f"{f' and {cfg.warmup_rounds} discarded round(s)' if cfg.warmup_rounds else ''}; "
        f"blocks end with `jax.block_until_ready`; ratios are medians of per-round ratios to the "
        f"same round's plain block. MLflow recording: "
        f"{'on (temporary SQLite store)' if cfg.mlflow else 'off'}. {elapsed_s:.0f} s in all.",
        f"Environment: {environment()}",
        "",
        table(result),
        "",
        "`monitored defaults` is `probe_norms(model)` + `monitored(optax.adamw(...))` + "
        "`watch_jax(params)` with `observe(step, opt_state, intermediates=..., locate=...)` after "
        "every step: per-parameter L2 norms and status inside `jit` every step, mean |grad| every "
        "50th, the status read one step late, the full statistics once per 50 steps.",
        "",
        "Findings the monitors raised (the model is healthy by construction, so each one "
        "deserves a look as a possible false alarm):",
        *findings,
        "",
    ])



def main(argv: Sequence[str] | None = None, *, out: Path | None = None) -> str:
    parser = argparse.ArgumentParser(prog="python -m benchmarks jax",
                                     description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="CI-friendly: under a minute")
    parser.add_argument("--rounds", type=int, help="timed rounds")
    parser.add_argument("--no-mlflow", action="store_true",
                        help="monitors without an MLflow run (no recording)")
    parser.add_argument("--no-progress", action="store_true")
    parser.add_argument("--out", type=Path, help="markdown file (default benchmarks/results/"
                        "jax_overhead.md, or jax_overhead_quick.md with --quick)")
    args = parser.parse_args(argv)
    cfg = QUICK if args.quick else FULL
    cfg = replace(cfg, mlflow=not args.no_mlflow,
                  **({"rounds": args.rounds} if args.rounds is not None else {}))
    t0 = time.perf_counter()
    path = out or args.out or RESULTS / ("jax_overhead_quick.md" if args.quick else "jax_overhead.md")
    return run_and_write(lambda: report(run(cfg, show_progress=not args.no_progress), cfg,
                                        time.perf_counter() - t0), path)


if __name__ == "__main__":
    main()
