"""Particle picking with a trained patch classifier: score every box on a grid, keep the local best.

A classifier trained on PU patches answers "is this box centred on a particle?"; picking turns it
into coordinates as Topaz does: slide the box over the micrograph (`score_micrograph`), keep the
highest-scoring boxes that are not closer than a particle's size to a better one
(`non_max_suppression`), and count the picks against the true centres (`match_picks`). The
project's picks figure (a micrograph with the true particles and the model's picks) is drawn from
these, and precision/recall of the picks is what a cryo-EM user would judge the model by, where the
patch AUC alone is not.

Pure numpy, plus torch only to call the classifier; coordinates are (row, col) pixels throughout.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Callable

import numpy as np
import torch

from lightning_modules.fixmatch_pu.data.patches import crop

__all__ = ["score_micrograph", "non_max_suppression", "PickMatch", "match_picks"]


def _is_int(value: object) -> bool:
    return isinstance(value, (int, np.integer)) and not isinstance(value, (bool, np.bool_))


def _check_points(name: str, points: np.ndarray) -> np.ndarray:
    points = np.asarray(points)
    if points.ndim != 2 or points.shape[1] != 2:
        raise ValueError(f"{name} has shape {points.shape}; allowed: (n, 2) as (row, col)")
    return points


def _axis_positions(length: int, box: int, stride: int) -> np.ndarray:
    """Centres along one axis: every `stride` pixels from the first box flush with the start, plus
    the box flush with the end when the stride skips it, so that the boxes cover the axis."""
    half = box // 2
    last = length - box + half
    positions = np.arange(half, last + 1, stride)
    return positions if positions[-1] == last else np.append(positions, last)


def _grid(shape: tuple[int, int], box: int, stride: int) -> np.ndarray:
    rows = _axis_positions(shape[0], box, stride)
    cols = _axis_positions(shape[1], box, stride)
    return np.stack(np.meshgrid(rows, cols, indexing="ij"), axis=-1).reshape(-1, 2).astype(np.int64)


def score_micrograph(score_fn: Callable[[torch.Tensor], torch.Tensor], image: np.ndarray, *, box: int,
                     stride: int, normalize: Callable[[np.ndarray], np.ndarray] | None = None,
                     batch_size: int = 256) -> tuple[np.ndarray, np.ndarray]:
    """The classifier's particle probability for every box on a regular grid over `image`.

    Candidate centres lie every `stride` pixels along each axis, each box fully inside the image;
    where the stride does not land on the last position, the box flush with the far edge is added,
    so the boxes cover the image whenever `stride <= box`. Patches are cut with the data module's
    `crop` (the same centring as training), passed through `normalize` (e.g. the training set's
    fitted `ConsistentNormalizer`; it sees one batch at a time, so it must not depend on the batch),
    and handed to `score_fn` as CPU float32 tensors (B, 1, box, box) under `torch.no_grad()`.

    Args:
        score_fn: patches to logits, (B,) or (B, 1); put a model in eval mode and move tensors to
            its device inside this function.
        image: the micrograph, (height, width).
        box: patch size in pixels, the size the classifier was trained on.
        stride: grid spacing in pixels.
        normalize: applied to each (B, box, box) batch of patches before scoring.
        batch_size: patches per `score_fn` call.

    Returns:
        centres (n, 2) int64 as (row, col), and probabilities (n,) float32 (sigmoid of the logits).

    Raises:
        ValueError: a non-2-D image, a box that does not fit, a stride or batch size below 1, or
            logits of the wrong shape.

    Example:
        >>> centres, probs = score_micrograph(lambda x: model(x).squeeze(1), image, box=48, stride=4,
        ...                                   normalize=normalizer)
    """
    image = np.asarray(image)
    if image.ndim != 2:
        raise ValueError(f"image has shape {image.shape}; allowed: a 2-D micrograph (height, width)")
    limit = min(image.shape)
    if not (_is_int(box) and 1 <= box <= limit):
        raise ValueError(f"box={box!r} is not allowed for an image of shape {image.shape}; "
                         f"allowed: an integer in [1, {limit}]")
    if not (_is_int(stride) and stride >= 1):
        raise ValueError(f"stride={stride!r} is not allowed; allowed: an integer >= 1")
    if not (_is_int(batch_size) and batch_size >= 1):
        raise ValueError(f"batch_size={batch_size!r} is not allowed; allowed: an integer >= 1")
    centres = _grid(image.shape, int(box), int(stride))
    probabilities = np.empty(len(centres), dtype=np.float32)
    with torch.no_grad():
        for start in range(0, len(centres), batch_size):
            patches = crop(image, centres[start:start + batch_size], box)
            if normalize is not None:
                patches = normalize(patches)
            x = torch.from_numpy(np.ascontiguousarray(patches, dtype=np.float32)).unsqueeze(1)
            logits = torch.as_tensor(score_fn(x)).detach().cpu()
            if logits.shape not in ((len(x),), (len(x), 1)):
                raise ValueError(f"score_fn returned shape {tuple(logits.shape)} for {len(x)} patches; "
                                 f"allowed: ({len(x)},) or ({len(x)}, 1) logits")
            probabilities[start:start + len(x)] = torch.sigmoid(logits.float()).reshape(-1).numpy()
    return centres, probabilities


def non_max_suppression(centres: np.ndarray, scores: np.ndarray, *, min_distance: float,
                        threshold: float | None = None, top_k: int | None = None) -> np.ndarray:
    """Indices of the kept picks, best first: greedy by descending score, each kept pick removing
    every remaining candidate closer than `min_distance` pixels (Euclidean), so kept picks are at
    least `min_distance` apart.

    Scores below `threshold` and NaN scores are dropped first; `top_k` stops after that many picks.
    Equal scores keep their input order (stable sort), so the result is deterministic.

    Raises:
        ValueError: mismatched shapes, a negative or non-finite `min_distance`, or `top_k` < 0.
    """
    centres = _check_points("centres", centres).astype(np.float64)
    scores = np.asarray(scores, dtype=np.float64)
    if scores.shape != (len(centres),):
        raise ValueError(f"scores has shape {scores.shape}; allowed: ({len(centres)},), one per centre")
    if not (math.isfinite(min_distance) and min_distance >= 0):
        raise ValueError(f"min_distance={min_distance!r} is not allowed; allowed: a finite number >= 0")
    if top_k is not None and not (_is_int(top_k) and top_k >= 0):
        raise ValueError(f"top_k={top_k!r} is not allowed; allowed: None or an integer >= 0")
    eligible = ~np.isnan(scores)
    if threshold is not None:
        eligible &= scores >= threshold
    order = np.flatnonzero(eligible)
    order = order[np.argsort(-scores[order], kind="stable")]
    limit = len(order) if top_k is None else min(int(top_k), len(order))
    suppressed = np.zeros(len(centres), dtype=bool)
    radius2 = float(min_distance) ** 2
    kept: list[int] = []
    for i in order:
        if len(kept) == limit:
            break
        if suppressed[i]:
            continue
        kept.append(int(i))
        suppressed |= np.sum((centres - centres[i]) ** 2, axis=1) < radius2
    return np.array(kept, dtype=np.int64)


@dataclass(frozen=True)
class PickMatch:
    """Picks counted against the true particles: matched picks (tp), unmatched picks (fp) and
    unmatched particles (fn).

    Undefined ratios (no picks for precision, no particles for recall) are 0.0, not NaN: an empty
    result never reads as a good one, and the numbers log to MLflow as they are.
    """

    tp: int
    fp: int
    fn: int

    def __post_init__(self) -> None:
        for name in ("tp", "fp", "fn"):
            value = getattr(self, name)
            if not (_is_int(value) and value >= 0):
                raise ValueError(f"{name}={value!r} is not allowed; allowed: an integer >= 0")

    @property
    def precision(self) -> float:
        return self.tp / (self.tp + self.fp) if self.tp + self.fp else 0.0

    @property
    def recall(self) -> float:
        return self.tp / (self.tp + self.fn) if self.tp + self.fn else 0.0

    @property
    def f1(self) -> float:
        p, r = self.precision, self.recall
        return 2 * p * r / (p + r) if p + r else 0.0


def match_picks(picked: np.ndarray, truth: np.ndarray, *, radius: float) -> PickMatch:
    """Match picks one-to-one to true centres: each pick, in the given order (pass them best first),
    takes the nearest still-unmatched true centre at most `radius` pixels away; a pick with none is a
    false positive, and true centres left over are false negatives.

    Greedy in score order, as detection benchmarks match, rather than an optimal assignment: a
    confident pick claims its particle before a weaker duplicate can.

    Raises:
        ValueError: points not of shape (n, 2), or a negative or non-finite radius.
    """
    picked = _check_points("picked", picked).astype(np.float64)
    truth = _check_points("truth", truth).astype(np.float64)
    if not (math.isfinite(radius) and radius >= 0):
        raise ValueError(f"radius={radius!r} is not allowed; allowed: a finite number >= 0")
    free = np.ones(len(truth), dtype=bool)
    tp = 0
    for point in picked:
        if not free.any():
            break
        distance2 = np.where(free, np.sum((truth - point) ** 2, axis=1), np.inf)
        nearest = int(np.argmin(distance2))
        if distance2[nearest] <= radius * radius:
            free[nearest] = False
            tp += 1
    return PickMatch(tp=tp, fp=len(picked) - tp, fn=len(truth) - tp)
