"""Step-time cost of `watch()` under DDP: two CPU processes, gloo, the replica check included.

    python -m benchmarks ddp            # about 3 minutes
    python -m benchmarks ddp --quick    # under a minute

Each rank wraps three copies of the MLP in DDP: ``plain``, ``plain (twin)`` (the noise floor)
and ``watch() defaults`` (the replica check at every log step: one all-reduce). Both ranks run
the same shuffled order of blocks (one seed), so every collective pairs up; rank zero reports
the medians of per-round ratios, the method of `overhead`.
"""

from __future__ import annotations

import argparse
import copy
import os
import socket
import tempfile
import time
from pathlib import Path
from typing import Sequence

import numpy as np
import torch
import torch.distributed as dist
import torch.multiprocessing as mp
import torch.nn.functional as F

from .harness import environment, interleave, markdown_table, per_step_ms, ratios, run_and_write
from .models import benches, n_params
from .overhead import LOG_EVERY

RESULTS = Path(__file__).resolve().parent / "results"
PLAIN, TWIN, WATCHED = "plain DDP", "plain DDP (twin)", "DDP + watch() defaults"


def _rank(rank: int, port: int, scale: str, rounds: int, out: str) -> None:
    from mlflow_plugins import watch

    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port))
    torch.set_num_threads(1)
    dist.init_process_group("gloo", rank=rank, world_size=2)
    try:
        bench = next(b for b in benches(scale) if b.name == "mlp")
        torch.manual_seed(0)
        base = bench.build()
        batches = bench.batches(LOG_EVERY, seed=rank)  # each rank its own shard
        models = {v: torch.nn.parallel.DistributedDataParallel(copy.deepcopy(base))
                  for v in (PLAIN, TWIN, WATCHED)}
        opts = {v: torch.optim.AdamW(m.parameters(), 1e-4) for v, m in models.items()}
        monitor = watch(models[WATCHED], opts[WATCHED])

        def block(v: str):
            def run() -> None:
                for x, y in batches:
                    opts[v].zero_grad()
                    F.cross_entropy(models[v](x), y).backward()
                    opts[v].step()
            return run

        blocks = {v: block(v) for v in models}
        for run in blocks.values():
            run()  # warm-up
        times = interleave(blocks, rounds=rounds, warmup_rounds=0, seed=0)
        monitor.close()
        if rank == 0:
            np.savez(out, params=n_params(base), findings=[f.code for f in monitor.findings],
                     **{v.replace(" ", "_"): t for v, t in times.items()})
    finally:
        dist.destroy_process_group()


def main(argv: Sequence[str] | None = None, *, out: Path | None = None) -> str:
    parser = argparse.ArgumentParser(prog="python -m benchmarks ddp", description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="under a minute")
    parser.add_argument("--out", type=Path)
    args = parser.parse_args(argv)
    scale, rounds = ("quick", 5) if args.quick else ("full", 15)
    path = out or args.out or RESULTS / ("ddp_overhead_quick.md" if args.quick else "ddp_overhead.md")

    def measure() -> str:
        t0 = time.perf_counter()
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
        with tempfile.TemporaryDirectory() as tmp:
            result = Path(tmp) / "times.npz"
            mp.spawn(_rank, args=(port, scale, rounds, str(result)), nprocs=2, join=True)
            saved = np.load(result)
            times = {v: saved[v.replace(" ", "_")] for v in (PLAIN, TWIN, WATCHED)}
            params, findings = int(saved["params"]), list(saved["findings"])
        rows = [["mlp", f"{params / 1e6:.2f} M", v, f"{per_step_ms(times[v], LOG_EVERY):.2f}",
                 ratios(times, v, PLAIN).fmt_with_iqr(), ratios(times, TWIN, PLAIN).fmt_with_iqr()]
                for v in (WATCHED,)]
        return "\n".join([
            f"# watch() under DDP ({scale} mode)", "",
            f"`python -m benchmarks ddp{' --quick' if args.quick else ''}`: 2 processes (gloo, one "
            f"thread each), {rounds} rounds of {LOG_EVERY}-step blocks (one log step, one replica "
            f"check per block), shuffled the same way on both ranks, medians of per-round ratios "
            f"on rank zero. {time.perf_counter() - t0:.0f} s in all.",
            f"Environment: {environment(1)}", "",
            markdown_table(["model", "params", "variant", "ms/step", "vs plain DDP: median [IQR]",
                            "noise floor (twin/plain) [IQR]"], rows), "",
            f"Findings on rank zero (healthy, so each would be a false alarm): {', '.join(findings) or 'none'}", ""])

    return run_and_write(measure, path)


if __name__ == "__main__":
    main()
