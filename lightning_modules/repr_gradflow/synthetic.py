"""The offline default task: 60-class time series told apart by short, class-specific motifs.

Document 001 trained on 500 samples of 60 classes (about 8 a class) and does not ship its data.
This generator stands in for it with a task where *learned* temporal features matter: each
class owns a multi-channel motif (a Gabor burst per channel: its own frequency, phase, sign,
timing and width) that appears once per sample, stretched and scaled, at a random position in
a long sequence of coloured (AR(1)) noise, beside class-agnostic distractor bursts drawn from
the same family. The motif covers a small part of the sequence, so a representation has to
learn which local patterns matter and attention has to learn where they are; a fixed random
representation, pooled over the whole sequence, mostly sees noise and distractors.

Everything is drawn from one `numpy.random.Generator` seeded by `seed`, so a config always
produces the same arrays.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

__all__ = ["MotifTaskConfig", "generate_motif_task"]


@dataclass(frozen=True)
class MotifTaskConfig:
    """What `generate_motif_task` draws. Every field is part of the cache key.

    Args:
        n_samples: number of sequences (document 001: 500).
        n_classes: number of classes (document 001: 60); labels are balanced.
        seq_len: time steps per sequence (T).
        n_channels: channels per time step (C).
        motif_len: time steps of a class motif before stretching.
        noise_std: stationary standard deviation of the AR(1) background.
        noise_ar: AR(1) coefficient of the background (0 is white noise).
        n_distractors: class-agnostic bursts added to every sequence.
        stretch: a motif is time-stretched by a factor in [1 - stretch, 1 + stretch].
        seed: seeds the motifs, the labels and every sample.
    """

    n_samples: int = 500
    n_classes: int = 60
    seq_len: int = 128
    n_channels: int = 3
    motif_len: int = 24
    noise_std: float = 0.3
    noise_ar: float = 0.7
    n_distractors: int = 0
    stretch: float = 0.15
    seed: int = 0

    def __post_init__(self) -> None:
        for name, minimum in (("n_samples", 1), ("n_classes", 2), ("seq_len", 8),
                              ("n_channels", 1), ("motif_len", 4), ("n_distractors", 0)):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
                raise ValueError(f"{name}={value!r} is out of range; allowed: an integer >= {minimum}")
        if self.motif_len * (1 + self.stretch) >= self.seq_len:
            raise ValueError(f"motif_len={self.motif_len!r} is too long for seq_len={self.seq_len!r}; "
                             "allowed: motif_len * (1 + stretch) < seq_len")
        if not 0.0 <= self.noise_ar < 1.0:
            raise ValueError(f"noise_ar={self.noise_ar!r} is out of range; allowed: 0 <= noise_ar < 1")
        if not 0.0 <= self.stretch < 0.5:
            raise ValueError(f"stretch={self.stretch!r} is out of range; allowed: 0 <= stretch < 0.5")
        if not self.noise_std >= 0.0:
            raise ValueError(f"noise_std={self.noise_std!r} is out of range; allowed: >= 0")

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def _gabor_bank(rng: np.random.Generator, count: int, length: int, n_channels: int) -> np.ndarray:
    """`count` multi-channel Gabor bursts, shape (count, length, n_channels), peak |value| 1."""
    t = np.arange(length, dtype=np.float64)[None, :, None]
    shape = (count, 1, n_channels)
    freq = rng.uniform(0.04, 0.25, shape)                 # cycles per step
    phase = rng.uniform(0.0, 2 * np.pi, shape)
    sign = rng.choice([-1.0, 1.0], shape)
    gain = rng.uniform(0.5, 1.0, shape)
    centre = rng.uniform(0.3, 0.7, shape) * length        # channels peak at different times
    width = rng.uniform(length / 8, length / 4, shape)
    bursts = sign * gain * np.exp(-0.5 * ((t - centre) / width) ** 2) * np.cos(2 * np.pi * freq * t + phase)
    return bursts / np.abs(bursts).max(axis=(1, 2), keepdims=True)


def _place(x: np.ndarray, burst: np.ndarray, rng: np.random.Generator, stretch: float,
           amplitude: float) -> None:
    """Add `burst` (L, C) to `x` (T, C) in place: stretched, scaled, at a random start."""
    length = burst.shape[0]
    factor = rng.uniform(1.0 - stretch, 1.0 + stretch)
    new_len = max(2, int(round(length * factor)))
    src = np.linspace(0.0, length - 1, new_len)
    grid = np.arange(length)
    warped = np.stack([np.interp(src, grid, burst[:, c]) for c in range(burst.shape[1])], axis=1)
    start = rng.integers(0, x.shape[0] - new_len + 1)
    x[start:start + new_len] += amplitude * warped


def generate_motif_task(config: MotifTaskConfig) -> tuple[np.ndarray, np.ndarray]:
    """The task's arrays for `config`.

    Returns:
        `X` float32 of shape (n_samples, seq_len, n_channels) and `y` int64 of shape
        (n_samples,), labels balanced over the classes and shuffled.
    """
    rng = np.random.default_rng(config.seed)
    motifs = _gabor_bank(rng, config.n_classes, config.motif_len, config.n_channels)
    y = rng.permutation(np.arange(config.n_samples) % config.n_classes).astype(np.int64)

    n, t, c = config.n_samples, config.seq_len, config.n_channels
    # AR(1) background with stationary std noise_std, started from its stationary law.
    innovations = rng.normal(0.0, config.noise_std * np.sqrt(1 - config.noise_ar ** 2), (n, t, c))
    x = np.empty((n, t, c))
    x[:, 0] = rng.normal(0.0, config.noise_std, (n, c))
    for step in range(1, t):
        x[:, step] = config.noise_ar * x[:, step - 1] + innovations[:, step]

    for i in range(n):
        for _ in range(config.n_distractors):
            distractor = _gabor_bank(rng, 1, config.motif_len, c)[0]
            _place(x[i], distractor, rng, config.stretch, rng.uniform(0.8, 1.2))
        _place(x[i], motifs[y[i]], rng, config.stretch, rng.uniform(0.8, 1.2))
    return x.astype(np.float32), y
