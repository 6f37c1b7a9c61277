"""Training-step time of `CVKANNet` under each precision mode, as ratios to fp32 with a noise floor.

Document 003 chose its precision modes partly for speed ("selective AMP"). `step_times` measures
that within one process, the way `benchmarks/` does: every mode trains its own copy of the
network (same seed, same batch) in short blocks of steps, the modes take turns round by round
(order shuffled each round), and a second, identical fp32 arm is timed like every other mode.
Its ratio to fp32 is the noise floor: what "no difference" looks like on this machine at this
moment (two identical loops here differ by up to ~8 %). A ratio within the floor's distance
from 1 is not a measured speed-up.

A training run calls it once and logs `StepTiming.metrics()`:
`speed/step_ms/<mode>`, `speed/ratio/<mode>_over_fp32` and `speed/noise_floor`.

Each step is a plain loop, no Trainer: forward, `loss_and_metrics`, backward, Adam step.
- fp32: no autocast.
- fp16: `torch.autocast(device, float16)` around forward and loss, `torch.amp.GradScaler`.
- bf16: `torch.autocast(device, bfloat16)` around forward and loss.
- bf16_real_only: the network built with `precision_mode="bf16_real_only"` (bfloat16 autocast
  inside its real sub-networks only), no outer autocast.
"""

from __future__ import annotations

import contextlib
import dataclasses
import functools
import gc
import random
import time
from dataclasses import dataclass
from typing import Callable, Mapping, Sequence

import numpy as np
import torch

from lightning_modules.cvkan.data.splits import ArraySplits
from lightning_modules.cvkan.data.stft import StftConfig
from lightning_modules.cvkan.model import CVKANConfig, CVKANNet
from lightning_modules.cvkan.objective import loss_and_metrics
from lightning_modules.cvkan.precision import PRECISION_MODES

__all__ = ["REFERENCE", "TWIN", "StepTiming", "EpochTiming", "make_train_step", "step_times", "interleaved",
           "feature_mode_epochs"]

REFERENCE = "fp32"
TWIN = "fp32 (twin)"  # the second, identical fp32 arm; twin/fp32 is the noise floor

Batch = tuple[torch.Tensor, torch.Tensor]


def _check_mode(mode: str) -> str:
    if mode not in PRECISION_MODES:
        raise ValueError(f"mode {mode!r} is not allowed; allowed: {list(PRECISION_MODES)}")
    return mode


@dataclass(frozen=True)
class StepTiming:
    """The result of `step_times`.

    Args:
        seconds: mode -> median seconds per training step (over rounds; every requested mode
            and the reference fp32).
        noise_floor: median over rounds of the twin fp32 arm's block time over fp32's.
        block_seconds: arm -> seconds of each timed block, round by round (the modes and
            `TWIN`); the per-round ratios come from these.
        rounds: timed rounds.
        steps_per_block: training steps per block.
        threads: torch intra-op threads during the timing.
    """

    seconds: dict[str, float]
    noise_floor: float
    block_seconds: Mapping[str, tuple[float, ...]]
    rounds: int
    steps_per_block: int
    threads: int

    def ratio(self, mode: str, reference: str = REFERENCE) -> float:
        """Median over rounds of `mode`'s block time over `reference`'s block of the same round."""
        for name in (mode, reference):
            if name not in self.block_seconds:
                raise ValueError(f"mode {name!r} was not timed; timed: {list(self.seconds)}")
        return float(np.median(np.asarray(self.block_seconds[mode])
                               / np.asarray(self.block_seconds[reference])))

    def metrics(self) -> dict[str, float]:
        """MLflow metrics: `speed/step_ms/<mode>`, `speed/ratio/<mode>_over_fp32`, `speed/noise_floor`."""
        out = {f"speed/step_ms/{m}": s * 1e3 for m, s in self.seconds.items()}
        out.update({f"speed/ratio/{m}_over_{REFERENCE}": self.ratio(m)
                    for m in self.seconds if m != REFERENCE})
        out["speed/noise_floor"] = self.noise_floor
        return out


def make_train_step(config: CVKANConfig, mode: str, *, device: str | torch.device = "cpu", seed: int = 0,
                    lr: float | None = None) -> Callable[[Batch], torch.Tensor]:
    """A fresh network (weights from `seed`) and Adam, and a function running one training step
    of it on a batch `(x, y)` under precision `mode`; the step returns the loss (detached).

    The network's own `precision_mode` is taken from `mode` ("bf16_real_only") or set to fp32
    (the other modes: any autocast is outside it). Building the network draws from torch's
    global RNG; save and restore its state if that matters (`step_times` does).

    Raises:
        ValueError: an unknown mode (named).
    """
    _check_mode(mode)
    device = torch.device(device)
    net_cfg = dataclasses.replace(config, precision_mode="bf16_real_only" if mode == "bf16_real_only" else "fp32")
    torch.manual_seed(seed)
    net = CVKANNet(net_cfg).to(device).train()
    opt = torch.optim.Adam(net.parameters(), lr=config.lr if lr is None else lr)
    dtype = {"fp16": torch.float16, "bf16": torch.bfloat16}.get(mode)
    scaler = torch.amp.GradScaler(device.type) if mode == "fp16" else None
    task = config.task

    def step(batch: Batch) -> torch.Tensor:
        opt.zero_grad(set_to_none=True)
        ctx = torch.autocast(device.type, dtype=dtype) if dtype is not None else contextlib.nullcontext()
        with ctx:
            loss, _ = loss_and_metrics(net, batch, task)
        if scaler is not None:
            scaler.scale(loss).backward()
            scaler.step(opt)
            scaler.update()
        else:
            loss.backward()
            opt.step()
        return loss.detach()

    return step


def _repeat(step: Callable[[Batch], torch.Tensor], batch: Batch, n: int) -> None:
    for _ in range(n):
        step(batch)


def interleaved(blocks: Mapping[str, Callable[[], None]], *, rounds: int, seed: int = 0,
                sync: Callable[[], None] | None = None) -> dict[str, tuple[float, ...]]:
    """Seconds of each block, round by round: every round runs every block once, in an order
    shuffled by a private generator seeded `seed`; garbage collection is off while a block runs
    (young generations are collected between blocks, untimed). `sync` (e.g. CUDA's) ends each block."""
    order_rng = random.Random(seed)
    times: dict[str, list[float]] = {name: [] for name in blocks}
    was_enabled = gc.isenabled()
    gc.collect()
    gc.disable()
    try:
        for _ in range(rounds):
            order = list(blocks)
            order_rng.shuffle(order)
            for name in order:
                t0 = time.perf_counter()
                blocks[name]()
                if sync is not None:
                    sync()
                times[name].append(time.perf_counter() - t0)
                gc.collect(1)
    finally:
        if was_enabled:
            gc.enable()
    return {name: tuple(t) for name, t in times.items()}


@dataclass(frozen=True)
class EpochTiming:
    """Training-epoch seconds with STFT features precomputed and per batch (claim 003-h)."""

    precomputed_s: float
    per_batch_s: float
    speedup: float       # median per-round per-batch / precomputed
    noise_floor: float   # median per-round precomputed twin / precomputed
    rounds: int

    def metrics(self) -> dict[str, float]:
        return {"audio/stft_epoch_speedup": self.speedup, "audio/stft_noise_floor": self.noise_floor,
                "audio/epoch_s_precomputed": self.precomputed_s, "audio/epoch_s_per_batch": self.per_batch_s}


def feature_mode_epochs(waveforms: ArraySplits, config: CVKANConfig, stft: StftConfig = StftConfig(), *,
                        batch_size: int = 64, rounds: int = 5, seed: int = 0, threads: int | None = 1
                        ) -> EpochTiming:
    """One training epoch of `CVKANNet` (fp32) on STFT tokens of `waveforms`, features precomputed
    against computed per batch in the loader, interleaved round by round, with a second precomputed
    arm as the noise floor. `config` gives the network (its n_features/seq_len are set from the STFT).
    torch's RNG state and thread count are restored."""
    from lightning_modules.cvkan.data import audio_feature_data

    tokens = (stft.n_frames(waveforms.x_train.shape[1]), stft.n_bins)
    net_cfg = dataclasses.replace(config, n_features=tokens[1], seq_len=tokens[0], precision_mode="fp32")
    arms = {"pre": True, "twin": True, "per_batch": False}
    rng_state, old_threads = torch.get_rng_state(), torch.get_num_threads()
    try:
        if threads is not None:
            torch.set_num_threads(threads)
        data = {a: audio_feature_data(waveforms, stft, precompute=pre, batch_size=batch_size, seed=seed)
                for a, pre in arms.items()}
        steps = {a: make_train_step(net_cfg, REFERENCE, seed=seed) for a in arms}

        def epoch(arm: str) -> None:
            for batch in data[arm].train_dataloader():
                steps[arm](batch)

        for arm in arms:  # untimed warm-up epoch of every arm
            epoch(arm)
        blocks = interleaved({a: functools.partial(epoch, a) for a in arms}, rounds=rounds, seed=seed)
    finally:
        torch.set_num_threads(old_threads)
        torch.set_rng_state(rng_state)
    pre, twin, per = (np.asarray(blocks[a]) for a in arms)
    return EpochTiming(float(np.median(pre)), float(np.median(per)), float(np.median(per / pre)),
                       float(np.median(twin / pre)), rounds)


def step_times(config: CVKANConfig, batch: Batch, modes: Sequence[str] = ("fp32", "bf16_real_only"), *,
               rounds: int = 10, steps_per_block: int = 5, warmup: int = 3, seed: int = 0,
               threads: int | None = 1) -> StepTiming:
    """Median seconds per training step of `CVKANNet` under each precision mode, on the same batch.

    fp32 is always timed (it is the reference), and twice: a second, identical arm gives the
    noise floor. After `warmup` untimed steps on every arm, each of `rounds` rounds runs one block
    of `steps_per_block` steps of every arm, in an order shuffled each round (seeded by `seed`,
    with a private generator). Each arm has its own network, built from `seed`.

    Takes about (2 + len(modes)) * (warmup + rounds * steps_per_block) steps: 2 to 5 s with the
    defaults on a digits-size batch (64 x 8 tokens x 8 features, d=32, hidden=64, 3 layers) on
    one thread. torch's global RNG state and thread count are the same afterwards; garbage
    collection is off while blocks run (young generations are collected between blocks, untimed).

    Args:
        config: the architecture, task and learning rate (its `precision_mode` is ignored: see
            `make_train_step`).
        batch: inputs and targets, on the device to time on.
        modes: precision modes to time ("fp32", "fp16", "bf16", "bf16_real_only").
        rounds: timed rounds (the per-round ratios are their samples).
        steps_per_block: training steps per timed block.
        warmup: untimed steps per arm before the first round.
        seed: the networks' initial weights and the order of arms within rounds.
        threads: `torch.set_num_threads` during the timing (restored after); None keeps the
            current count. One thread (the default) keeps ratios stable on a shared machine.

    Raises:
        ValueError: an unknown mode (named), or counts out of range.
    """
    modes = list(dict.fromkeys(_check_mode(m) for m in modes))
    for name, value, low in (("rounds", rounds, 1), ("steps_per_block", steps_per_block, 1), ("warmup", warmup, 0)):
        if not (isinstance(value, int) and not isinstance(value, bool) and value >= low):
            raise ValueError(f"{name}={value!r} is not allowed; allowed: an integer >= {low}")
    if threads is not None and not (isinstance(threads, int) and threads >= 1):
        raise ValueError(f"threads={threads!r} is not allowed; allowed: None or an integer >= 1")
    arms = [REFERENCE, TWIN, *(m for m in modes if m != REFERENCE)]
    cuda = batch[0].device.type == "cuda"

    rng_state = torch.get_rng_state()
    cuda_states = torch.cuda.get_rng_state_all() if cuda else None
    old_threads = torch.get_num_threads()
    try:
        if threads is not None:
            torch.set_num_threads(threads)
        device = batch[0].device
        steps = {a: make_train_step(config, REFERENCE if a == TWIN else a, device=device, seed=seed)
                 for a in arms}
        for step in steps.values():
            for _ in range(warmup):
                step(batch)
        if cuda:
            torch.cuda.synchronize()
        sync = torch.cuda.synchronize if cuda else None
        blocks = interleaved({a: functools.partial(_repeat, steps[a], batch, steps_per_block) for a in arms},
                             rounds=rounds, seed=seed, sync=sync)
        used_threads = torch.get_num_threads()
    finally:
        torch.set_num_threads(old_threads)
        torch.set_rng_state(rng_state)
        if cuda_states is not None:
            torch.cuda.set_rng_state_all(cuda_states)
    block_seconds = blocks
    seconds = {m: float(np.median(block_seconds[m])) / steps_per_block for m in [REFERENCE, *modes]}
    floor = float(np.median(np.asarray(block_seconds[TWIN]) / np.asarray(block_seconds[REFERENCE])))
    return StepTiming(seconds, floor, block_seconds, rounds, steps_per_block, used_threads)
