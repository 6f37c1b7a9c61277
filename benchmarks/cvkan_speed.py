"""Document 003 (CV-KAN) speed: training-step time per precision mode, and claim 003-h (STFT features
precomputed against computed per batch).

    python -m benchmarks.cvkan_speed            # full mode, about 2.5 minutes
    python -m benchmarks.cvkan_speed --quick    # under a minute
    python -m benchmarks cvkan [--quick]

Part 1, precision: digits batches (scikit-learn's digits as 8 row tokens of 8 pixels, batch 64),
`CVKANNet` d=32, hidden=64, 3 flat layers, 10 classes; arms fp32, fp32 (twin), bf16 (autocast of
the whole step), bf16_real_only (selective AMP inside the real sub-networks) and fp16 (float16
autocast + GradScaler), each its own network from one seed, steps built by
`projects.cvkan.step_timing.make_train_step`. Also `step_times()` itself, called as a training
run calls it (rounds=8), to show what a run's `speed/*` metrics look like next to the benchmark.

Part 2, claim 003-h ("expected 2-3x speedup when using precomputed mode"): spoken digits
synthesised with espeak-ng, 1 s clips at 16 kHz, magnitude STFT tokens (n_fft 512: 63 tokens of
257 bins; full mode also n_fft 1024: 32 of 513). Arms: a whole training epoch (loader, forward,
backward, Adam) with features precomputed, the same again (twin), and with features computed per
batch in the loader; and the loader alone in the same three ways. Also
`lightning_modules.cvkan.data.time_feature_modes` (loader only, not interleaved) for the one-time
precomputation cost.

Every arm is timed in interleaved rounds (`harness.interleave`, order shuffled each round);
ratios are medians of per-round ratios with their IQR, beside the twin's noise floor.
See benchmarks/README.md for the method.
"""

from __future__ import annotations

import argparse
import time
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Callable, Sequence

import numpy as np
import torch

from .harness import (RatioStats, check_counts, environment, interleave, markdown_table, per_step_ms,
                      progress_bar, ratios, run_and_write)

RESULTS = Path(__file__).resolve().parent / "results"

FP32, TWIN = "fp32", "fp32 (twin)"
PRECISION_ARMS = (FP32, TWIN, "bf16", "bf16_real_only", "fp16")
PRECISION_NOTES = {
    "bf16": "bfloat16 autocast of the whole step",
    "bf16_real_only": "selective AMP: bfloat16 only inside the real sub-networks",
    "fp16": "float16 autocast + GradScaler",
}
PRE, PRE_TWIN, PER_BATCH = "precomputed", "precomputed (twin)", "per batch"
EPOCH, LOADER = "training epoch", "loader only"
CLAIM_003H = (2.0, 3.0)


@dataclass(frozen=True)
class SpeedConfig:
    """What to measure and how long.

    Args:
        rounds: timed rounds of the precision part (one block of every arm per round).
        block_steps: training steps per block of the precision part.
        timing_rounds: `rounds` of the `step_times()` call (a training run's setting).
        audio_rounds: timed rounds of the audio part (one epoch of every arm per round).
        warmup_rounds: discarded rounds before each part's timed ones.
        n_per_class: spoken-digit utterances per class (80 % of them in the training split).
        n_ffts: STFT window lengths to time (the note's "fast" preset is 512).
        batch_size: batch size of both parts.
        threads: `torch.set_num_threads`, fixed for the whole run.
        seed: weights, data, shuffles and the order of arms within rounds.
    """

    rounds: int = 20
    block_steps: int = 20
    timing_rounds: int = 8
    audio_rounds: int = 20
    warmup_rounds: int = 1
    n_per_class: int = 40
    n_ffts: tuple[int, ...] = (512, 1024)
    batch_size: int = 64
    threads: int = 1
    seed: int = 0

    def __post_init__(self) -> None:
        check_counts(self, positive=("rounds", "block_steps", "timing_rounds", "audio_rounds", "n_per_class",
                                     "batch_size", "threads"), non_negative=("warmup_rounds",))
        if not self.n_ffts:
            raise ValueError("n_ffts=() must name at least one window length")


FULL = SpeedConfig()
QUICK = SpeedConfig(rounds=4, block_steps=5, timing_rounds=3, audio_rounds=3, n_per_class=10, n_ffts=(512,))


def _model_config(n_features: int, seq_len: int):
    from lightning_modules.cvkan.model import CVKANConfig

    return CVKANConfig(n_features=n_features, seq_len=seq_len, d=32, hidden=64, n_layers=3, n_classes=10)


@dataclass
class PrecisionResult:
    times: dict[str, np.ndarray]
    block_steps: int
    params: int
    timing: object  # projects.cvkan.step_timing.StepTiming
    timing_s: float
    losses: dict[str, tuple[float, int, int]]  # arm -> (mean loss of the last epoch, non-finite, steps)
    n_batches: int

    def ms(self, arm: str) -> float:
        return per_step_ms(self.times[arm], self.block_steps)

    def ratio(self, arm: str) -> RatioStats:
        return ratios(self.times, arm, FP32)


@dataclass
class AudioResult:
    n_fft: int
    tokens: tuple[int, int]
    n_train: int
    batches: int
    times: dict[str, np.ndarray]  # "<EPOCH|LOADER>: <arm>" -> seconds per round
    features: object  # lightning_modules.cvkan.data.FeatureTiming
    precompute_s: float  # median of 3 calls of precomputed_stft (all splits)

    def s(self, part: str, arm: str) -> float:
        return float(np.median(self.times[f"{part}: {arm}"]))

    def ratio(self, part: str, arm: str) -> RatioStats:
        return ratios(self.times, f"{part}: {arm}", f"{part}: {PRE}")


def run_precision(cfg: SpeedConfig, progress: Callable[[str], None] | None = None) -> PrecisionResult:
    """Part 1: every precision arm on the same digits batch, interleaved."""
    from lightning_modules.cvkan.data import digits_splits
    from lightning_modules.cvkan.model import CVKANNet, n_params
    from projects.cvkan.step_timing import make_train_step, step_times

    splits = digits_splits(tokens="rows", seed=cfg.seed)
    x, y = torch.from_numpy(splits.x_train), torch.from_numpy(splits.y_train)
    n = len(x) // cfg.batch_size * cfg.batch_size  # full batches only: every step has the same size
    batches = list(zip(x[:n].split(cfg.batch_size), y[:n].split(cfg.batch_size)))
    model_cfg = _model_config(x.shape[2], x.shape[1])
    steps = {arm: make_train_step(model_cfg, FP32 if arm == TWIN else arm, seed=cfg.seed) for arm in PRECISION_ARMS}
    # Each arm walks the training batches in the same order (a network trained on one batch for
    # hundreds of steps would memorize it, and its vanishing gradients are not a training step).
    losses: dict[str, list[torch.Tensor]] = {arm: [] for arm in PRECISION_ARMS}

    def block(arm: str) -> Callable[[], None]:
        def run() -> None:
            done = losses[arm]
            for _ in range(cfg.block_steps):
                done.append(steps[arm](batches[len(done) % len(batches)]))
        return run

    for arm in PRECISION_ARMS:  # untimed warm-up step on every network
        block(arm)()
    times = interleave({arm: block(arm) for arm in PRECISION_ARMS}, rounds=cfg.rounds,
                       warmup_rounds=cfg.warmup_rounds, seed=cfg.seed, progress=progress)
    t0 = time.perf_counter()
    timing = step_times(model_cfg, batches[0], ("fp32", "bf16", "bf16_real_only", "fp16"),
                        rounds=cfg.timing_rounds, seed=cfg.seed, threads=None)
    timing_s = time.perf_counter() - t0
    summary = {}
    for arm, arm_losses in losses.items():
        values = torch.stack(arm_losses)
        finite = torch.isfinite(values)
        summary[arm] = (float(values[-len(batches):].nanmean()), int((~finite).sum()), len(values))
    return PrecisionResult(times, cfg.block_steps, n_params(CVKANNet(model_cfg)), timing, timing_s, summary,
                           len(batches))


def _audio_waveforms(cfg: SpeedConfig):
    from lightning_modules.cvkan.data import SpokenDigitsConfig, spoken_digits_splits

    return spoken_digits_splits(SpokenDigitsConfig(n_per_class=cfg.n_per_class, seed=cfg.seed))


def run_audio(cfg: SpeedConfig, waveforms, n_fft: int,
              progress: Callable[[str], None] | None = None) -> AudioResult:
    """Part 2 for one STFT window: training epochs and loader passes, precomputed against per batch."""
    from lightning_modules.cvkan.data import StftConfig, audio_feature_data, precomputed_stft, time_feature_modes
    from projects.cvkan.step_timing import make_train_step

    stft = StftConfig(n_fft=n_fft)
    length = waveforms.x_train.shape[1]
    tokens = (stft.n_frames(length), stft.n_bins)
    model_cfg = _model_config(tokens[1], tokens[0])
    modules = {arm: audio_feature_data(waveforms, stft, precompute=arm != PER_BATCH, batch_size=cfg.batch_size,
                                       seed=cfg.seed)
               for arm in (PRE, PRE_TWIN, PER_BATCH)}
    loaders = {f"{LOADER}: {arm}": audio_feature_data(waveforms, stft, precompute=arm != PER_BATCH,
                                                      batch_size=cfg.batch_size, seed=cfg.seed)
               for arm in (PRE, PRE_TWIN, PER_BATCH)}
    steps = {arm: make_train_step(model_cfg, FP32, seed=cfg.seed) for arm in modules}

    def epoch(arm: str) -> Callable[[], None]:
        def run() -> None:
            for batch in modules[arm].train_dataloader():
                steps[arm](batch)
        return run

    def loader_pass(name: str) -> Callable[[], None]:
        def run() -> None:
            for _ in loaders[name].train_dataloader():
                pass
        return run

    blocks = {**{f"{EPOCH}: {arm}": epoch(arm) for arm in modules},
              **{name: loader_pass(name) for name in loaders}}
    for arm in modules:  # untimed warm-up step on every network
        steps[arm](next(iter(modules[arm].train_dataloader())))
    times = interleave(blocks, rounds=cfg.audio_rounds, warmup_rounds=cfg.warmup_rounds, seed=cfg.seed,
                       progress=progress)
    features = time_feature_modes(waveforms, stft, batch_size=cfg.batch_size, epochs=3, seed=cfg.seed)
    precompute = []
    for _ in range(3):  # the one-time cost, repeated: a single call varies several-fold here
        t0 = time.perf_counter()
        precomputed_stft(waveforms, stft)
        precompute.append(time.perf_counter() - t0)
    n_train = len(waveforms.x_train)
    return AudioResult(n_fft, tokens, n_train, -(-n_train // cfg.batch_size), times, features,
                       float(np.median(precompute)))


def run(cfg: SpeedConfig, *, show_progress: bool = True) -> tuple[PrecisionResult, list[AudioResult]]:
    """Both parts with a fixed thread count; restores the thread count and torch's RNG after."""
    threads, rng = torch.get_num_threads(), torch.get_rng_state()
    torch.set_num_threads(cfg.threads)
    n_audio = 6 * len(cfg.n_ffts) * (cfg.audio_rounds + cfg.warmup_rounds)
    bar = progress_bar(len(PRECISION_ARMS) * (cfg.rounds + cfg.warmup_rounds) + n_audio, show_progress)
    try:
        bar.set_description("precision")
        precision = run_precision(cfg, progress=lambda _: bar.update())
        bar.set_description("espeak-ng")
        waveforms = _audio_waveforms(cfg)
        audio = []
        for n_fft in cfg.n_ffts:
            bar.set_description(f"stft {n_fft}")
            audio.append(run_audio(cfg, waveforms, n_fft, progress=lambda _: bar.update()))
        return precision, audio
    finally:
        bar.close()
        torch.set_num_threads(threads)
        torch.set_rng_state(rng)


def precision_table(r: PrecisionResult) -> str:
    """Part 1: one row per precision arm but fp32."""
    header = ["mode", "what", "fp32 ms/step", "mode ms/step", "mode/fp32 median [IQR]",
              "noise floor fp32 twin/fp32 [IQR]", "step_times(): ratio (its floor)"]
    floor = r.ratio(TWIN).fmt_with_iqr()
    t = r.timing
    rows = []
    for arm in PRECISION_ARMS[2:]:
        rows.append([arm, PRECISION_NOTES[arm], f"{r.ms(FP32):.2f}", f"{r.ms(arm):.2f}",
                     r.ratio(arm).fmt_with_iqr(), floor, f"{t.ratio(arm):.3f}x ({t.noise_floor:.3f}x)"])
    return markdown_table(header, rows)


def _verdict(s: RatioStats, floor: RatioStats) -> str:
    low, high = CLAIM_003H
    if s.q3 < low:
        spread = max(abs(floor.q1 - 1), abs(floor.q3 - 1), abs(floor.median - 1))
        within = abs(s.median - 1) <= spread
        return f"no: {s.median:.2f}x" + (" (within the noise floor)" if within else "")
    if s.q1 > high:
        return f"beyond it: {s.median:.2f}x"
    return f"yes: {s.median:.2f}x" if low <= s.median <= high else f"IQR overlaps 2-3x: {s.median:.2f}x"


def audio_table(results: Sequence[AudioResult]) -> str:
    """Part 2: training epochs and loader passes, per STFT window."""
    header = ["n_fft", "tokens", "what", "precomputed s/epoch", "per batch s/epoch",
              "per batch/precomputed median [IQR]", "noise floor twin/precomputed [IQR]", "claim 2-3x"]
    rows = []
    for r in results:
        shape = f"{r.tokens[0]} x {r.tokens[1]}"
        for part, what in ((EPOCH, "training epoch: loader + forward + backward + Adam"),
                           (LOADER, "loader only (feature batches)")):
            s, floor = r.ratio(part, PER_BATCH), r.ratio(part, PRE_TWIN)
            rows.append([r.n_fft, shape, what, f"{r.s(part, PRE):.3f}", f"{r.s(part, PER_BATCH):.3f}",
                         s.fmt_with_iqr(), floor.fmt_with_iqr(), _verdict(s, floor)])
        f = r.features
        rows.append([r.n_fft, shape, "`time_feature_modes` (loader only, sequential, mean of 3 epochs)",
                     f"{f.precomputed_epoch_s:.3f}", f"{f.per_batch_epoch_s:.3f}", f"{f.epoch_speedup:.3f}x",
                     "-", "-"])
    return markdown_table(header, rows)


def _precompute_lines(results: Sequence[AudioResult]) -> list[str]:
    lines = []
    for r in results:
        saved = r.s(EPOCH, PER_BATCH) - r.s(EPOCH, PRE)
        pays = (f"pays for itself after {r.precompute_s / saved:.1f} epoch(s) of training"
                if saved > 0 else "never pays for itself in training time here")
        lines.append(f"- n_fft {r.n_fft}: precomputing the features of all {r.n_train} training + val + test clips "
                     f"once takes {r.precompute_s:.3f} s (median of 3 calls of `precomputed_stft`; "
                     f"`time_feature_modes` measured {r.features.precompute_s:.3f} s in one call, data module "
                     f"included); at {saved * 1e3:.1f} ms saved per training epoch (medians) it {pays}.")
    return lines


def report(precision: PrecisionResult, audio: Sequence[AudioResult], cfg: SpeedConfig, elapsed_s: float,
           quick: bool) -> str:
    """The markdown document written to results/cvkan_speed.md."""
    a0 = audio[0]
    losses = ", ".join(f"{k} {m:.3f}" + (f" ({bad} of {n} steps non-finite)" if bad else "")
                       for k, (m, bad, n) in precision.losses.items())
    return "\n".join([
        f"# CV-KAN (document 003) speed ({'quick' if quick else 'full'} mode)",
        "",
        f"`python -m benchmarks.cvkan_speed{' --quick' if quick else ''}`: interleaved rounds "
        f"(order shuffled each round, {cfg.warmup_rounds} discarded round(s) first); ratios are medians "
        f"of per-round ratios [IQR], beside a twin arm's noise floor. {elapsed_s:.0f} s in all.",
        f"Environment: {environment(cfg.threads)}",
        "",
        "## Precision modes: training step on digits batches",
        "",
        f"Batches of {cfg.batch_size} x 8 row tokens x 8 pixels (scikit-learn digits, the {precision.n_batches} "
        f"full training batches in turn, the same sequence for every arm), `CVKANNet` d=32, hidden=64, "
        f"3 flat layers, 10 classes ({precision.params} parameters), Adam lr 1e-3; plain loop (forward, "
        f"`loss_and_metrics`, backward, step), no Trainer. {cfg.rounds} rounds of {cfg.block_steps}-step "
        f"blocks per arm. Mean loss over each arm's last {precision.n_batches} steps: {losses}. Last column: "
        f"`projects.cvkan.step_timing.step_times(rounds={cfg.timing_rounds}, steps_per_block="
        f"{precision.timing.steps_per_block})` on the first batch, as a training run calls it, "
        f"{precision.timing_s:.1f} s.",
        "",
        precision_table(precision),
        "",
        "## Claim 003-h: STFT features precomputed against computed per batch",
        "",
        f"Spoken digits synthesised with espeak-ng: {a0.n_train} training clips of 1 s at 16 kHz "
        f"({cfg.n_per_class} per class in all splits), magnitude STFT tokens, batch {cfg.batch_size} "
        f"({a0.batches} batches per epoch), loader in the main process (num_workers=0, as "
        f"`CVKANDataModule` builds it); the network as above with n_features = bins, fp32. "
        f"{cfg.audio_rounds} rounds; each round runs one epoch of every arm. "
        "The note's claim: \"Expected 2-3x speedup when using precomputed mode\".",
        "",
        audio_table(audio),
        "",
        *_precompute_lines(audio),
        "",
    ])


def main(argv: Sequence[str] | None = None, *, out: Path | None = None) -> str:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.cvkan_speed",
                                     description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="CI-friendly: under a minute")
    parser.add_argument("--rounds", type=int, help="timed rounds of both parts")
    parser.add_argument("--threads", type=int, help="torch.set_num_threads (default 1)")
    parser.add_argument("--no-progress", action="store_true")
    parser.add_argument("--out", type=Path, help="markdown file (default benchmarks/results/"
                        "cvkan_speed.md, or cvkan_speed_quick.md with --quick)")
    args = parser.parse_args(argv)
    cfg = QUICK if args.quick else FULL
    if args.rounds is not None:
        cfg = replace(cfg, rounds=args.rounds, audio_rounds=args.rounds)
    if args.threads is not None:
        cfg = replace(cfg, threads=args.threads)
    t0 = time.perf_counter()
    path = out or args.out or RESULTS / ("cvkan_speed_quick.md" if args.quick else "cvkan_speed.md")

    def measure() -> str:
        precision, audio = run(cfg, show_progress=not args.no_progress)
        return report(precision, audio, cfg, time.perf_counter() - t0, args.quick)

    return run_and_write(measure, path)


if __name__ == "__main__":
    main()
