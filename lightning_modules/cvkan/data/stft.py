"""STFT features of waveform clips: magnitude (float32) or complex (complex64) tokens, one per frame.

A clip (length,) becomes (frames, n_fft // 2 + 1) tokens: a periodic Hann window, frames every
`hop_length` samples over the clip reflect-padded by n_fft // 2 at both ends (torch.stft's
`center=True`), so frames = 1 + length // hop_length. The note's "fast" preset is n_fft 512 (257
bins). One numpy implementation serves both modes, so precomputed and per-batch features are
identical.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

from lightning_modules.cvkan.data.cache import ArrayCache, through_cache
from lightning_modules.cvkan.data.splits import SPLITS, ArraySplits

__all__ = ["FEATURE_KINDS", "CACHE_NAME", "StftConfig", "stft_features", "precomputed_stft"]

FEATURE_KINDS = ("magnitude", "complex")
CACHE_NAME = "cvkan_stft"


@dataclass(frozen=True)
class StftConfig:
    """n_fft (window length), hop_length (default n_fft // 2) and the token kind."""

    n_fft: int = 512
    hop_length: int | None = None
    kind: str = "magnitude"

    def __post_init__(self) -> None:
        if not (isinstance(self.n_fft, int) and self.n_fft >= 2):
            raise ValueError(f"n_fft={self.n_fft!r} is not allowed; allowed: an integer >= 2")
        if self.hop_length is not None and not (isinstance(self.hop_length, int) and 1 <= self.hop_length <= self.n_fft):
            raise ValueError(f"hop_length={self.hop_length!r} is not allowed; allowed: None or an integer in "
                             f"[1, n_fft={self.n_fft}]")
        if self.kind not in FEATURE_KINDS:
            raise ValueError(f"kind={self.kind!r} is not allowed; allowed: {', '.join(FEATURE_KINDS)}")

    @property
    def hop(self) -> int:
        return self.hop_length or self.n_fft // 2

    @property
    def n_bins(self) -> int:
        return self.n_fft // 2 + 1

    def n_frames(self, length: int) -> int:
        """Tokens per clip of `length` samples."""
        return 1 + length // self.hop

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def stft_features(waveforms: np.ndarray, config: StftConfig = StftConfig()) -> np.ndarray:
    """Tokens (n, frames, n_bins) of clips (n, length) or (n, length, 1): float32 magnitude or complex64.

    Raises:
        ValueError: clips shorter than n_fft // 2 + 1 samples (reflect padding needs more), or multi-channel.
    """
    x = np.asarray(waveforms, dtype=np.float32)
    if x.ndim == 3:
        if x.shape[2] != 1:
            raise ValueError(f"waveforms have shape {x.shape}; allowed: (n, length) or (n, length, 1)")
        x = x[:, :, 0]
    pad = config.n_fft // 2
    if x.ndim != 2 or x.shape[1] <= pad:
        raise ValueError(f"waveforms have shape {x.shape}; allowed: (n, length) with length > {pad}")
    padded = np.pad(x, ((0, 0), (pad, pad)), mode="reflect")
    frames = sliding_window_view(padded, config.n_fft, axis=1)[:, ::config.hop, :]
    window = (0.5 - 0.5 * np.cos(2 * np.pi * np.arange(config.n_fft) / config.n_fft)).astype(np.float32)
    spectrum = np.fft.rfft(frames * window, axis=-1)
    if config.kind == "complex":
        return spectrum.astype(np.complex64)
    return np.abs(spectrum).astype(np.float32)


def precomputed_stft(waveforms: ArraySplits, config: StftConfig = StftConfig(), *, cache: ArrayCache | None = None,
                     source_key: dict[str, Any] | None = None, batch_size: int = 256) -> ArraySplits:
    """The feature splits of waveform splits, computed once (in batches of `batch_size` clips).

    With `cache` and `source_key` (what the waveforms depend on, e.g. their data set's config), the
    features are cached under both keys; without a `source_key` nothing is cached.
    """
    def build() -> dict[str, np.ndarray]:
        arrays = {}
        for split in SPLITS:
            x, y = waveforms.split(split)
            arrays[f"x_{split}"] = np.concatenate([stft_features(x[i:i + batch_size], config)
                                                   for i in range(0, len(x), batch_size)])
            arrays[f"y_{split}"] = y
        return arrays

    def check(arrays: dict[str, np.ndarray]) -> None:
        dtype = np.complex64 if config.kind == "complex" else np.float32
        for split in SPLITS:
            x, y = waveforms.split(split)
            want = (len(x), config.n_frames(x.shape[1]), config.n_bins)
            got = arrays.get(f"x_{split}")
            if got is None or got.shape != want or got.dtype != dtype:
                raise ValueError(f"arrays {sorted(arrays)} do not fit: expected x_{split} {np.dtype(dtype)} {want}")

    key = None if source_key is None else {"source": source_key, "stft": config.to_dict()}
    arrays, hit = through_cache(cache if key else None, CACHE_NAME, key or {}, build, check)
    return ArraySplits.from_arrays(arrays, n_classes=waveforms.n_classes, from_cache=hit,
                                   meta={**waveforms.meta, "features": config.to_dict()})
