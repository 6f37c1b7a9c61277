"""The synthetic task of the note's hierarchical experiment: does a sequence hide the signal pattern?

Every sequence has `seq_len` tokens of `n_features` values. Noise tokens are standard normal. Half
the sequences (label 1) carry the signal: `pattern_len` consecutive tokens at a uniformly drawn
position are a fixed pattern plus noise, rescaled to unit variance per value so that token
magnitudes alone do not give it away; the other half (label 0) are pure noise. The pattern is drawn
from the seed, so every split shares it.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

from lightning_modules.cvkan.data.splits import ArraySplits, stratified_split

__all__ = ["SignalNoiseConfig", "generate_signal_noise", "signal_noise_splits"]


@dataclass(frozen=True)
class SignalNoiseConfig:
    """Size and difficulty of the task; `noise` is the pattern tokens' noise std before rescaling."""

    n_samples: int = 4000
    seq_len: int = 16
    n_features: int = 32
    pattern_len: int = 4
    noise: float = 0.5
    seed: int = 0

    def __post_init__(self) -> None:
        if not (isinstance(self.n_samples, int) and self.n_samples >= 2 and self.n_samples % 2 == 0):
            raise ValueError(f"n_samples={self.n_samples!r} is not allowed; allowed: an even integer >= 2 "
                             "(balanced classes)")
        if not (isinstance(self.seq_len, int) and isinstance(self.pattern_len, int)
                and 1 <= self.pattern_len <= self.seq_len):
            raise ValueError(f"seq_len={self.seq_len!r}, pattern_len={self.pattern_len!r} are not allowed; "
                             "allowed: integers with 1 <= pattern_len <= seq_len")
        if not (isinstance(self.n_features, int) and self.n_features >= 1) or not self.noise >= 0:
            raise ValueError(f"n_features={self.n_features!r}, noise={self.noise!r} are not allowed; allowed: "
                             "n_features >= 1, noise >= 0")

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def generate_signal_noise(config: SignalNoiseConfig = SignalNoiseConfig()) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """x float32 (n, seq_len, n_features), labels int64 (n,) with n/2 of each, signal start (n,) (-1: none)."""
    rng = np.random.default_rng(config.seed)
    pattern = rng.standard_normal((config.pattern_len, config.n_features))
    n = config.n_samples
    y = rng.permutation(np.repeat(np.array([0, 1], dtype=np.int64), n // 2))
    x = rng.standard_normal((n, config.seq_len, config.n_features))
    start = np.where(y == 1, rng.integers(0, config.seq_len - config.pattern_len + 1, n), -1)
    scale = 1.0 / np.sqrt(1.0 + config.noise ** 2)
    for i in np.flatnonzero(y == 1):
        block = slice(start[i], start[i] + config.pattern_len)
        x[i, block] = (pattern + config.noise * x[i, block]) * scale
    return x.astype(np.float32), y, start.astype(np.int64)


def signal_noise_splits(config: SignalNoiseConfig = SignalNoiseConfig(), *, val_fraction: float = 0.15,
                        test_fraction: float = 0.15) -> ArraySplits:
    """The task as a seeded stratified train/val/test split (two classes); `meta["start"]` per split."""
    x, y, start = generate_signal_noise(config)
    tr, va, te = stratified_split(y, seed=config.seed, val_fraction=val_fraction, test_fraction=test_fraction)
    return ArraySplits(x[tr], y[tr], x[va], y[va], x[te], y[te], n_classes=2, meta={
        "source": "synthetic signal/noise", "start": {"train": start[tr], "val": start[va], "test": start[te]},
        **config.to_dict()})
