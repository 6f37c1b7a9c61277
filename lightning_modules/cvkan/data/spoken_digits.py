"""Spoken digits synthesised offline with espeak-ng: the audio domain's default data set.

Each utterance is one of "zero".."nine" spoken by a *speaker* (an espeak-ng voice plus a voice variant,
e.g. `en-gb-scotland+f3`) at a drawn rate (words per minute) and pitch, trimmed of silence,
resampled to 16 kHz, scaled to a drawn peak, placed at a drawn offset in a 1 s clip (as in Speech
Commands) and mixed with white noise at a drawn SNR. Speakers are split disjointly between train,
val and test (as Speech Commands splits by speaker), each class equally often in every split.
Every draw comes from the seed, and espeak-ng's output is deterministic for its version (part of
the cache key), so a seed gives identical arrays.
"""

from __future__ import annotations

import shutil
import subprocess
import tempfile
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

import numpy as np

from lightning_modules.cvkan.data.cache import ArrayCache, through_cache
from lightning_modules.cvkan.data.splits import SPLITS, ArraySplits, check_fractions
from lightning_modules.cvkan.data.wav import fit_length, read_wav, resample

__all__ = ["DIGITS", "VOICES", "VARIANTS", "CACHE_NAME", "SpokenDigitsConfig", "espeak_version",
           "synthesize", "spoken_digits_splits"]

DIGITS = ("zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine")
VOICES = ("en", "en-us", "en-gb-x-rp", "en-gb-scotland", "en-029", "en-gb-x-gbclan", "en-gb-x-gbcwmd")
VARIANTS = ("m1", "m2", "m3", "m4", "m5", "m6", "m7", "f1", "f2", "f3", "f4", "f5", "klatt", "klatt2", "klatt3")
CACHE_NAME = "cvkan_spoken_digits"


@dataclass(frozen=True)
class SpokenDigitsConfig:
    """What the synthesised data set depends on (its cache key, with the espeak-ng version).

    n_per_class utterances of each digit, split by speaker into train/val/test with the given fractions.
    """

    n_per_class: int = 40
    seed: int = 0
    sample_rate: int = 16000
    duration_s: float = 1.0
    rate_wpm: tuple[int, int] = (130, 210)
    pitch: tuple[int, int] = (20, 80)
    peak: tuple[float, float] = (0.3, 0.9)
    snr_db: tuple[float, float] = (10.0, 30.0)
    val_fraction: float = 0.1
    test_fraction: float = 0.1

    def __post_init__(self) -> None:
        check_fractions(self.val_fraction, self.test_fraction)
        if not (isinstance(self.n_per_class, int) and self.n_per_class >= 3):
            raise ValueError(f"n_per_class={self.n_per_class!r} is not allowed; allowed: an integer >= 3 "
                             "(one utterance per split at least)")
        for name in ("rate_wpm", "pitch", "peak", "snr_db"):
            low, high = getattr(self, name)
            if not low <= high:
                raise ValueError(f"{name}={(low, high)!r} is not allowed; allowed: a (low, high) pair, low <= high")
        if not (80 <= self.rate_wpm[0] and self.rate_wpm[1] <= 450 and 0 <= self.pitch[0] and self.pitch[1] <= 99):
            raise ValueError(f"rate_wpm={self.rate_wpm!r}, pitch={self.pitch!r} are out of range; allowed: rates "
                             "in [80, 450] words per minute, pitches in [0, 99] (espeak-ng's ranges)")
        if self.sample_rate <= 0 or self.duration_s <= 0:
            raise ValueError(f"sample_rate={self.sample_rate!r}, duration_s={self.duration_s!r} are not allowed; "
                             "allowed: both positive")

    @property
    def length(self) -> int:
        """Samples per clip."""
        return round(self.sample_rate * self.duration_s)

    def split_counts(self) -> dict[str, int]:
        """Utterances of each class in each split."""
        n_val = max(1, round(self.n_per_class * self.val_fraction))
        n_test = max(1, round(self.n_per_class * self.test_fraction))
        return {"train": self.n_per_class - n_val - n_test, "val": n_val, "test": n_test}

    def to_dict(self) -> dict[str, Any]:
        return {k: list(v) if isinstance(v, tuple) else v for k, v in asdict(self).items()}


@lru_cache(maxsize=1)
def _espeak() -> str:
    exe = shutil.which("espeak-ng")
    if exe is None:
        raise RuntimeError("espeak-ng was not found on PATH; allowed: install it (apt-get install espeak-ng) or "
                           "load recordings with speech_commands_splits(root)")
    return exe


def espeak_version() -> str:
    """The installed espeak-ng's version line (its output is only reproducible within one version)."""
    out = subprocess.run([_espeak(), "--version"], capture_output=True, text=True, check=True).stdout
    return " ".join(out.split()[:4])


def synthesize(word: str, voice: str, rate_wpm: int, pitch: int, sample_rate: int = 16000) -> np.ndarray:
    """`word` spoken by espeak-ng voice `voice` (e.g. `en-us+f3`), float32 at `sample_rate`, silence trimmed."""
    with tempfile.TemporaryDirectory(prefix="cvkan_espeak_") as tmp:
        path = Path(tmp) / "word.wav"
        result = subprocess.run([_espeak(), "-w", str(path), "-v", voice, "-s", str(rate_wpm), "-p", str(pitch),
                                 word], capture_output=True, text=True)
        if result.returncode != 0 or not path.is_file():
            raise RuntimeError(f"espeak-ng failed for word={word!r} voice={voice!r}: "
                               f"{' '.join(result.stderr.split()) or f'exit status {result.returncode}'}")
        x, rate = read_wav(path)
    x = resample(x, rate, sample_rate)
    loud = np.flatnonzero(np.abs(x) > 0.05 * np.abs(x).max())
    margin = sample_rate // 40  # keep 25 ms around the voiced part
    return x[max(loud[0] - margin, 0):loud[-1] + margin + 1] if len(loud) else x


def _plan(config: SpokenDigitsConfig) -> list[dict[str, Any]]:
    """Every utterance's draws, in a fixed order: split, label, speaker, rate, pitch, peak, SNR, offset."""
    rng = np.random.default_rng(config.seed)
    speakers = [f"{v}+{var}" for v in VOICES for var in VARIANTS]
    order = rng.permutation(len(speakers))
    n_val = max(1, round(len(speakers) * config.val_fraction))
    n_test = max(1, round(len(speakers) * config.test_fraction))
    pools = {"test": order[:n_test], "val": order[n_test:n_test + n_val], "train": order[n_test + n_val:]}
    plan = []
    for split in SPLITS:
        for label in range(len(DIGITS)):
            for _ in range(config.split_counts()[split]):
                speaker = int(rng.choice(pools[split]))
                plan.append({
                    "split": split, "label": label, "speaker": speaker, "voice": speakers[speaker],
                    "rate": int(rng.integers(config.rate_wpm[0], config.rate_wpm[1] + 1)),
                    "pitch": int(rng.integers(config.pitch[0], config.pitch[1] + 1)),
                    "peak": float(rng.uniform(*config.peak)), "snr_db": float(rng.uniform(*config.snr_db)),
                    "offset": float(rng.random()), "noise_seed": int(rng.integers(2**63 - 1)),
                })
    return plan


def _render(config: SpokenDigitsConfig, item: dict[str, Any]) -> np.ndarray:
    """One planned utterance as a float32 clip of `config.length` samples."""
    speech = synthesize(DIGITS[item["label"]], item["voice"], item["rate"], item["pitch"], config.sample_rate)
    speech = speech * np.float32(item["peak"] / max(float(np.abs(speech).max()), 1e-9))
    slack = max(config.length - len(speech), 0)
    clip = fit_length(speech, config.length, offset=round(item["offset"] * slack))
    power = float(np.mean(speech.astype(np.float64) ** 2))
    noise_std = np.sqrt(power / 10 ** (item["snr_db"] / 10))
    noise = np.random.default_rng(item["noise_seed"]).normal(0.0, noise_std, config.length)
    return (clip + noise).astype(np.float32)


def _build(config: SpokenDigitsConfig, workers: int) -> dict[str, np.ndarray]:
    plan = _plan(config)
    with ThreadPoolExecutor(max_workers=max(1, workers)) as pool:
        clips = list(pool.map(lambda item: _render(config, item), plan))
    arrays = {}
    for split in SPLITS:
        idx = [i for i, item in enumerate(plan) if item["split"] == split]
        arrays[f"x_{split}"] = np.stack([clips[i] for i in idx])[:, :, None]
        arrays[f"y_{split}"] = np.array([plan[i]["label"] for i in idx], dtype=np.int64)
        arrays[f"speaker_{split}"] = np.array([plan[i]["speaker"] for i in idx], dtype=np.int64)
    return arrays


def _checker(config: SpokenDigitsConfig):
    def check(arrays: dict[str, np.ndarray]) -> None:
        for split, n in config.split_counts().items():
            x, y = arrays.get(f"x_{split}"), arrays.get(f"y_{split}")
            want = (n * len(DIGITS), config.length, 1)
            if x is None or y is None or x.shape != want or x.dtype != np.float32 or y.shape != want[:1] \
                    or y.dtype != np.int64 or f"speaker_{split}" not in arrays:
                raise ValueError(f"arrays {sorted(arrays)} do not fit the config: expected x_{split} float32 {want}")
    return check


def spoken_digits_splits(config: SpokenDigitsConfig = SpokenDigitsConfig(), *, cache: ArrayCache | None = None,
                         workers: int = 2) -> ArraySplits:
    """Waveform splits (n, length, 1) float32, int64 labels 0..9; synthesised, or read from `cache`.

    `workers` espeak-ng processes run at once (the output does not depend on it). `meta["speakers"]`
    gives each split's speaker ids (indices into VOICES x VARIANTS), disjoint between splits.

    Raises:
        RuntimeError: espeak-ng is not installed or fails.
    """
    key = {**config.to_dict(), "espeak": espeak_version()}
    arrays, hit = through_cache(cache, CACHE_NAME, key, lambda: _build(config, workers), _checker(config))
    return ArraySplits.from_arrays(arrays, n_classes=len(DIGITS), from_cache=hit, meta={
        "source": "espeak-ng", "classes": list(DIGITS), "sample_rate": config.sample_rate,
        "speakers": {s: arrays[f"speaker_{s}"] for s in SPLITS}})
