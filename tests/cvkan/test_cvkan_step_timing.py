"""`projects.cvkan.step_timing.step_times` and the table code of `benchmarks.cvkan_speed`.

No timing thresholds: only that every requested mode is timed, the numbers are usable, the
caller's RNG and thread count survive, and bad input is refused by name.
"""

from __future__ import annotations

import math
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))  # `benchmarks` is not installed


from projects.cvkan import step_timing as st  # noqa: E402
from lightning_modules.cvkan.model import CVKANConfig  # noqa: E402

CONFIG = CVKANConfig(n_features=8, seq_len=8, d=8, hidden=16, n_layers=1, n_classes=10)


@pytest.fixture(scope="module")
def batch():
    g = torch.Generator().manual_seed(0)
    return torch.rand(16, 8, 8, generator=g), torch.randint(0, 10, (16,), generator=g)


def _finite_positive(x: float) -> bool:
    return math.isfinite(x) and x > 0


def test_every_requested_mode_is_timed_with_a_noise_floor(batch):
    modes = ("fp32", "fp16", "bf16", "bf16_real_only")
    t = st.step_times(CONFIG, batch, modes, rounds=2, steps_per_block=2, warmup=1)
    assert set(t.seconds) == set(modes)
    assert all(_finite_positive(s) for s in t.seconds.values()), t.seconds
    assert _finite_positive(t.noise_floor)
    assert set(t.block_seconds) == {*modes, st.TWIN}
    assert all(len(v) == 2 for v in t.block_seconds.values())
    assert t.ratio("fp32") == pytest.approx(1.0)
    assert _finite_positive(t.ratio("bf16_real_only"))
    # the floor is the twin's per-round ratio, the same statistic as every other ratio
    assert t.noise_floor == pytest.approx(t.ratio(st.TWIN))
    metrics = t.metrics()
    assert set(metrics) == ({f"speed/step_ms/{m}" for m in modes}
                            | {f"speed/ratio/{m}_over_fp32" for m in modes if m != "fp32"}
                            | {"speed/noise_floor"})
    assert metrics["speed/step_ms/fp16"] == pytest.approx(t.seconds["fp16"] * 1e3)
    assert all(_finite_positive(v) for v in metrics.values()), metrics


def test_fp32_is_timed_even_when_not_requested(batch):
    t = st.step_times(CONFIG, batch, ("bf16_real_only",), rounds=1, steps_per_block=1, warmup=0)
    assert set(t.seconds) == {"fp32", "bf16_real_only"}
    assert "speed/ratio/bf16_real_only_over_fp32" in t.metrics()


def test_global_rng_and_threads_are_unchanged(batch):
    torch.manual_seed(1234)
    threads = torch.get_num_threads()
    before = torch.get_rng_state()
    expected = torch.rand(3)  # what the caller would draw next
    torch.set_rng_state(before)
    st.step_times(CONFIG, batch, ("fp32", "bf16"), rounds=1, steps_per_block=1, warmup=1, threads=1)
    assert torch.equal(torch.get_rng_state(), before)
    assert torch.equal(torch.rand(3), expected)
    assert torch.get_num_threads() == threads


def test_each_mode_starts_from_the_same_weights(batch):
    with torch.random.fork_rng():
        steps = [st.make_train_step(CONFIG, mode, seed=3) for mode in ("fp32", "bf16_real_only")]
        losses = [float(step(batch)) for step in steps]
    # same seed, same batch: fp32 and bf16-in-the-real-parts agree to bfloat16 precision
    assert losses[0] == pytest.approx(losses[1], rel=2e-2)


@pytest.mark.parametrize("modes", [("fp32", "fp8"), ("int8",)])
def test_unknown_mode_is_refused_by_name(batch, modes):
    bad = [m for m in modes if m not in ("fp32",)][0]
    with pytest.raises(ValueError, match=repr(bad)):
        st.step_times(CONFIG, batch, modes, rounds=1, steps_per_block=1, warmup=0)


@pytest.mark.parametrize("kwargs", [{"rounds": 0}, {"steps_per_block": 0}, {"warmup": -1}, {"threads": 0}])
def test_counts_out_of_range_are_refused(batch, kwargs):
    name = next(iter(kwargs))
    with pytest.raises(ValueError, match=name):
        st.step_times(CONFIG, batch, ("fp32",), **kwargs)


def test_benchmark_tables_are_well_formed():
    """The benchmark's table code on small hand-made timings (the measurement itself takes ~15 s)."""
    from benchmarks import cvkan_speed as bench
    from lightning_modules.cvkan.data import FeatureTiming

    rng = np.random.default_rng(0)
    rounds = 4
    times = {arm: 0.01 * (1 + 0.05 * rng.random(rounds)) for arm in bench.PRECISION_ARMS}
    times["fp16"] = times["fp16"] * 3
    timing = st.StepTiming({m: 0.002 for m in ("fp32", "bf16", "bf16_real_only", "fp16")}, 1.01,
                           {m: (0.01, 0.011) for m in ("fp32", st.TWIN, "bf16", "bf16_real_only", "fp16")},
                           2, 5, 1)
    losses = {a: (1.0, 0, 24) for a in bench.PRECISION_ARMS}
    losses["fp16"] = (float("nan"), 7, 24)
    precision = bench.PrecisionResult(times, 5, 1234, timing, 0.5, losses, 19)
    audio_times = {f"{part}: {arm}": 0.1 * (1 + 0.05 * rng.random(rounds))
                   for part in (bench.EPOCH, bench.LOADER) for arm in (bench.PRE, bench.PRE_TWIN, bench.PER_BATCH)}
    audio_times[f"{bench.LOADER}: {bench.PER_BATCH}"] *= 20
    # epochs: per batch 1 % slower than precomputed, the twin 2 % (a floor wider than the effect)
    audio_times[f"{bench.EPOCH}: {bench.PER_BATCH}"] = audio_times[f"{bench.EPOCH}: {bench.PRE}"] * 1.01
    audio_times[f"{bench.EPOCH}: {bench.PRE_TWIN}"] = audio_times[f"{bench.EPOCH}: {bench.PRE}"] * 1.02
    audio = [bench.AudioResult(512, (63, 257), 80, 2, audio_times, FeatureTiming(0.02, 0.001, 0.02, 3, 80), 0.01)]
    text = bench.report(precision, audio, bench.QUICK, elapsed_s=1.0, quick=True)

    rows = [[c.strip() for c in line.strip().strip("|").split("|")] for line in text.splitlines()
            if line.startswith("| ") and not line.startswith("| mode") and not line.startswith("| n_fft")]
    precision_rows = [r for r in rows if r[0] in ("bf16", "bf16_real_only", "fp16")]
    assert [r[0] for r in precision_rows] == ["bf16", "bf16_real_only", "fp16"]
    assert all(len(r) == 7 for r in precision_rows)
    fp16 = precision_rows[2]
    assert float(fp16[4].split("x")[0]) == pytest.approx(3.0, rel=0.1)
    assert fp16[6].startswith("1.000x (1.010x)")
    audio_rows = [r for r in rows if r[0] == "512"]
    assert len(audio_rows) == 3 and all(len(r) == 8 for r in audio_rows)
    epoch, loader, sequential = audio_rows
    assert epoch[7].startswith("no: ") and "within the noise floor" in epoch[7]
    assert loader[7].startswith("beyond it: ")
    assert sequential[5] == "20.000x"
    assert "pays for itself after" in text and "Environment: " in text
    assert "fp16 nan (7 of 24 steps non-finite)" in text


def test_feature_mode_epochs_times_both_modes_with_a_floor_and_restores_the_rng():
    from lightning_modules.cvkan.data import ArraySplits, StftConfig

    rng = np.random.default_rng(0)
    waves = [rng.standard_normal((n, 512, 1)).astype(np.float32) for n in (12, 4, 4)]
    labels = [np.arange(len(w), dtype=np.int64) % 2 for w in waves]
    splits = ArraySplits(waves[0], labels[0], waves[1], labels[1], waves[2], labels[2], n_classes=2)
    state = torch.get_rng_state()
    timing = st.feature_mode_epochs(splits, CVKANConfig(d=4, hidden=8, n_layers=1), StftConfig(n_fft=64),
                                    batch_size=4, rounds=2)
    assert torch.equal(torch.get_rng_state(), state)
    metrics = timing.metrics()
    assert set(metrics) == {"audio/stft_epoch_speedup", "audio/stft_noise_floor", "audio/epoch_s_precomputed",
                            "audio/epoch_s_per_batch"}
    assert all(_finite_positive(v) for v in metrics.values()) and timing.rounds == 2
