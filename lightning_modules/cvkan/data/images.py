"""Image data as token sequences: scikit-learn's digits (offline default) and CIFAR-10's binary format.

An image (H, W, C) becomes tokens either by rows (H tokens of W*C values) or by non-overlapping
p x p patches ((H/p)*(W/p) tokens of p*p*C values, row-major), pixel values scaled to [0, 1].
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from lightning_modules.cvkan.data.errors import file_error
from lightning_modules.cvkan.data.splits import ArraySplits, stratified_split

__all__ = ["TOKENIZATIONS", "CIFAR10_RECORD", "CIFAR10_CLASSES", "image_tokens", "digits_splits",
           "read_cifar10_bin", "cifar10_splits"]

TOKENIZATIONS = ("rows", "patches")
CIFAR10_RECORD = 1 + 3072
CIFAR10_CLASSES = ("airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck")
_CIFAR_ALLOWED = ("CIFAR-10 binary files (data_batch_1.bin ... data_batch_5.bin, test_batch.bin): records of "
                  "1 label byte (0-9) + 3072 pixel bytes (1024 R, 1024 G, 1024 B, row-major 32x32)")


def image_tokens(images: np.ndarray, tokens: str = "rows", patch: int = 2) -> np.ndarray:
    """Float32 tokens (n, n_tokens, features) of images (n, H, W, C) already scaled to [0, 1].

    Raises:
        ValueError: an unknown `tokens`, or a `patch` that does not divide H and W.
    """
    if tokens not in TOKENIZATIONS:
        raise ValueError(f"tokens={tokens!r} is not allowed; allowed: {', '.join(TOKENIZATIONS)}")
    n, h, w, c = images.shape
    if tokens == "rows":
        return np.ascontiguousarray(images.reshape(n, h, w * c), dtype=np.float32)
    if not (isinstance(patch, int) and patch > 0 and h % patch == 0 and w % patch == 0):
        raise ValueError(f"patch={patch!r} is not allowed for {h}x{w} images; allowed: a positive integer "
                         "dividing both sides")
    p = images.reshape(n, h // patch, patch, w // patch, patch, c).transpose(0, 1, 3, 2, 4, 5)
    return np.ascontiguousarray(p.reshape(n, (h // patch) * (w // patch), patch * patch * c), dtype=np.float32)


def digits_splits(*, tokens: str = "rows", patch: int = 2, seed: int = 0, val_fraction: float = 0.15,
                  test_fraction: float = 0.15) -> ArraySplits:
    """scikit-learn's 1797 handwritten digits (8x8, 10 classes; shipped with it) as token splits.

    Rows give (n, 8, 8) inputs, 2x2 patches (n, 16, 4); a seeded stratified split.
    """
    from sklearn.datasets import load_digits

    digits = load_digits()
    images = (digits.images / 16.0).reshape(-1, 8, 8, 1)
    x, y = image_tokens(images, tokens, patch), digits.target.astype(np.int64)
    tr, va, te = stratified_split(y, seed=seed, val_fraction=val_fraction, test_fraction=test_fraction)
    return ArraySplits(x[tr], y[tr], x[va], y[va], x[te], y[te], n_classes=10,
                       meta={"source": "sklearn.datasets.load_digits", "tokens": tokens})


def read_cifar10_bin(path: str | os.PathLike) -> tuple[np.ndarray, np.ndarray]:
    """Images uint8 (n, 32, 32, 3) and labels int64 (n,) of one CIFAR-10 binary file.

    Raises:
        DataFileError: (a ValueError, one line) the file is missing, empty, not a whole number of
            3073-byte records, or holds a label above 9.
    """
    path = Path(path)
    if not path.is_file():
        raise file_error(path, "no such file", _CIFAR_ALLOWED)
    raw = np.fromfile(path, dtype=np.uint8)
    if raw.size == 0 or raw.size % CIFAR10_RECORD:
        raise file_error(path, f"size {raw.size} bytes is not a positive multiple of {CIFAR10_RECORD} "
                         "(truncated, or another format)", _CIFAR_ALLOWED)
    records = raw.reshape(-1, CIFAR10_RECORD)
    labels = records[:, 0].astype(np.int64)
    if labels.max() > 9:
        bad = int(np.argmax(labels > 9))
        raise file_error(path, f"record {bad} has label {labels[bad]}", _CIFAR_ALLOWED)
    images = records[:, 1:].reshape(-1, 3, 32, 32).transpose(0, 2, 3, 1)
    return np.ascontiguousarray(images), labels


def cifar10_splits(root: str | os.PathLike, *, tokens: str = "patches", patch: int = 4, seed: int = 0,
                   val_fraction: float = 0.1, max_train: int | None = None) -> ArraySplits:
    """CIFAR-10 from its binary files in `root`: the official test batch, val carved from training.

    Args:
        root: folder with `data_batch_*.bin` (one or more) and `test_batch.bin`.
        tokens / patch: see `image_tokens` (4x4 patches: (n, 64, 48); rows: (n, 32, 96)).
        seed: seeds the stratified train/val split (and the `max_train` subset).
        val_fraction: share of the training files held out for validation.
        max_train: keep about this many training+validation images (a seeded stratified subset).

    Raises:
        DataFileError: a file is missing or malformed (see `read_cifar10_bin`).
    """
    root = Path(root)
    train_files = sorted(root.glob("data_batch_*.bin"))
    if not train_files:
        raise file_error(root, "has no data_batch_*.bin", _CIFAR_ALLOWED)
    parts = [read_cifar10_bin(f) for f in train_files]
    images, labels = np.concatenate([p[0] for p in parts]), np.concatenate([p[1] for p in parts])
    test_images, test_labels = read_cifar10_bin(root / "test_batch.bin")
    if not 0 < val_fraction < 1:
        raise ValueError(f"val_fraction={val_fraction!r} is out of range; allowed: (0, 1)")
    if max_train is not None and max_train < len(labels):
        if max_train < 2:
            raise ValueError(f"max_train={max_train!r} is not allowed; allowed: None or an integer >= 2")
        _, keep = _two_way(labels, seed + 1, max_train / len(labels))
        images, labels = images[keep], labels[keep]
    tr, va = _two_way(labels, seed, val_fraction)
    x = image_tokens(images / np.float32(255), tokens, patch)
    x_test = image_tokens(test_images / np.float32(255), tokens, patch)
    return ArraySplits(x[tr], labels[tr], x[va], labels[va], x_test, test_labels, n_classes=10,
                       meta={"source": str(root), "classes": list(CIFAR10_CLASSES), "tokens": tokens})


def _two_way(labels: np.ndarray, seed: int, val_fraction: float) -> tuple[np.ndarray, np.ndarray]:
    """Sorted (train, val) indices, stratified and seeded."""
    rng = np.random.default_rng(seed)
    train, val = [], []
    for c in np.unique(labels):
        idx = rng.permutation(np.flatnonzero(labels == c))
        n_val = round(len(idx) * val_fraction)
        val.append(idx[:n_val])
        train.append(idx[n_val:])
    tr, va = np.sort(np.concatenate(train)), np.sort(np.concatenate(val))
    if len(tr) == 0 or len(va) == 0:
        raise ValueError(f"{len(labels)} images are too few to split with val_fraction={val_fraction}; "
                         "allowed: enough images for a non-empty train and val split")
    return tr, va
