"""16-bit PCM WAV files: read one, bring it to a fixed rate and length, load a Speech-Commands folder.

A Speech-Commands-style folder is `<root>/<label>/*.wav` (folders starting with `_`, such as
`_background_noise_`, are skipped). When `<root>` holds `validation_list.txt` and `testing_list.txt`
(the data set's own split, paths relative to root) they define val and test; otherwise the split is
seeded and stratified.
"""

from __future__ import annotations

import os
import wave
from math import gcd
from pathlib import Path

import numpy as np
from scipy.signal import resample_poly

from lightning_modules.cvkan.data.errors import DataFileError, file_error
from lightning_modules.cvkan.data.splits import ArraySplits, check_fractions, stratified_split

__all__ = ["WAV_ALLOWED", "read_wav", "resample", "fit_length", "load_wav_clip", "speech_commands_splits"]

WAV_ALLOWED = "a RIFF/WAVE file of uncompressed 16-bit PCM samples (any rate, mono or multi-channel)"
_FOLDER_ALLOWED = "a folder <root>/<label>/*.wav of 16-bit PCM WAV files, one sub-folder per class"


def read_wav(path: str | os.PathLike) -> tuple[np.ndarray, int]:
    """Samples float32 in [-1, 1) (mono: channels averaged) and the sample rate of a 16-bit PCM WAV.

    Raises:
        DataFileError: (a ValueError, one line) missing, not RIFF/WAVE, compressed, not 16-bit,
            truncated or empty.
    """
    try:
        with wave.open(os.fspath(path), "rb") as wav:
            width, channels, rate, n = wav.getsampwidth(), wav.getnchannels(), wav.getframerate(), wav.getnframes()
            frames = wav.readframes(n)
    except FileNotFoundError:
        raise file_error(path, "no such file", WAV_ALLOWED) from None
    except (wave.Error, EOFError, OSError) as exc:
        raise file_error(path, f"not a readable WAV ({type(exc).__name__}: {exc})", WAV_ALLOWED) from None
    if width != 2:
        raise file_error(path, f"has {8 * width}-bit samples", WAV_ALLOWED)
    if n == 0 or rate <= 0:
        raise file_error(path, f"has {n} frames at {rate} Hz", WAV_ALLOWED)
    if len(frames) != n * width * channels:
        raise file_error(path, f"is truncated: header promises {n} frames, data holds "
                         f"{len(frames) // (width * channels)}", WAV_ALLOWED)
    samples = np.frombuffer(frames, dtype="<i2").reshape(n, channels).mean(axis=1)
    return (samples / 32768.0).astype(np.float32), rate


def resample(x: np.ndarray, rate: int, target_rate: int) -> np.ndarray:
    """`x` (last axis: time) from `rate` to `target_rate` Hz by polyphase filtering (float32)."""
    if rate == target_rate:
        return np.asarray(x, dtype=np.float32)
    g = gcd(rate, target_rate)
    return resample_poly(x, target_rate // g, rate // g, axis=-1).astype(np.float32)


def fit_length(x: np.ndarray, length: int, offset: int = 0) -> np.ndarray:
    """`x` cut or zero-padded to `length` samples; a shorter clip starts at `offset` (clipped to fit)."""
    if len(x) >= length:
        return np.ascontiguousarray(x[:length], dtype=np.float32)
    out = np.zeros(length, dtype=np.float32)
    start = int(np.clip(offset, 0, length - len(x)))
    out[start:start + len(x)] = x
    return out


def load_wav_clip(path: str | os.PathLike, sample_rate: int = 16000, duration_s: float = 1.0) -> np.ndarray:
    """One WAV as float32 (sample_rate * duration_s,): resampled, then cut or zero-padded at the end."""
    x, rate = read_wav(path)
    return fit_length(resample(x, rate, sample_rate), round(sample_rate * duration_s))


def _listed(root: Path, name: str) -> set[str] | None:
    path = root / name
    if not path.is_file():
        return None
    return {line.strip() for line in path.read_text().splitlines() if line.strip()}


def speech_commands_splits(root: str | os.PathLike, *, labels: list[str] | None = None, sample_rate: int = 16000,
                           duration_s: float = 1.0, seed: int = 0, val_fraction: float = 0.1,
                           test_fraction: float = 0.1, max_per_class: int | None = None) -> ArraySplits:
    """Waveform splits (n, sample_rate * duration_s, 1) float32 with int64 labels from a Speech-Commands folder.

    Args:
        root: the folder.
        labels: the classes (sub-folder names) to keep, in label order; default all, sorted.
        sample_rate / duration_s: every clip is resampled to this rate and cut or padded to this length.
        seed: seeds the split (when the folder has no lists) and the `max_per_class` subset.
        val_fraction / test_fraction: held-out shares when the folder has no lists.
        max_per_class: keep at most this many files per class (a seeded subset), for quick runs.

    Raises:
        DataFileError: the folder has no classes or files, a requested label is missing, or a WAV is malformed.
    """
    root = Path(root)
    check_fractions(val_fraction, test_fraction)
    if not root.is_dir():
        raise file_error(root, "no such folder", _FOLDER_ALLOWED)
    found = sorted(p.name for p in root.iterdir() if p.is_dir() and not p.name.startswith("_"))
    labels = found if labels is None else list(labels)
    if not labels or set(labels) - set(found):
        raise file_error(root, f"has classes {found}, wanted {labels or 'at least one'}", _FOLDER_ALLOWED)
    rng = np.random.default_rng(seed)
    files, y = [], []
    for index, label in enumerate(labels):
        paths = sorted((root / label).glob("*.wav"))
        if not paths:
            raise file_error(root / label, "has no .wav files", _FOLDER_ALLOWED)
        if max_per_class is not None and len(paths) > max_per_class:
            paths = [paths[i] for i in np.sort(rng.choice(len(paths), max_per_class, replace=False))]
        files += paths
        y += [index] * len(paths)
    x = np.stack([load_wav_clip(p, sample_rate, duration_s) for p in files])[:, :, None]
    y = np.asarray(y, dtype=np.int64)
    val_list, test_list = _listed(root, "validation_list.txt"), _listed(root, "testing_list.txt")
    if val_list is not None and test_list is not None:
        rel = np.array([p.relative_to(root).as_posix() for p in files])
        va, te = np.flatnonzero(np.isin(rel, list(val_list))), np.flatnonzero(np.isin(rel, list(test_list)))
        tr = np.setdiff1d(np.arange(len(files)), np.union1d(va, te))
        if min(len(tr), len(va), len(te)) == 0:
            raise DataFileError(f"{root}: validation_list.txt/testing_list.txt leave an empty split "
                                f"({len(tr)} train, {len(va)} val, {len(te)} test); allowed: lists naming "
                                "<label>/<file>.wav paths that leave every split non-empty", "empty split")
    else:
        tr, va, te = stratified_split(y, seed=seed, val_fraction=val_fraction, test_fraction=test_fraction)
    return ArraySplits(x[tr], y[tr], x[va], y[va], x[te], y[te], n_classes=len(labels),
                       meta={"source": str(root), "classes": labels, "sample_rate": sample_rate})
