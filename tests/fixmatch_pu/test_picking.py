"""Document 004's particle picking (`lightning_modules/fixmatch_pu/picking.py`): sliding-window
scoring, non-maximum suppression against a brute-force reference, and pick matching."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from lightning_modules.fixmatch_pu.data import ConsistentNormalizer, MicrographConfig, simulate_micrograph
from lightning_modules.fixmatch_pu.picking import PickMatch, match_picks, non_max_suppression, score_micrograph

BOX = 16
BLOBS = np.array([[20, 24], [24, 90], [70, 50], [100, 100], [104, 16]], dtype=np.int64)


def _blob_image(centres: np.ndarray, shape: tuple[int, int] = (128, 128), sigma: float = 2.5,
                noise: float = 0.05, seed: int = 0) -> np.ndarray:
    rows, cols = np.mgrid[:shape[0], :shape[1]]
    image = np.random.default_rng(seed).normal(scale=noise, size=shape)
    for r, c in centres:
        image += np.exp(-((rows - r) ** 2 + (cols - c) ** 2) / (2 * sigma ** 2))
    return image.astype(np.float32)


def _centre_minus_border(x: torch.Tensor) -> torch.Tensor:
    """Logits (B,): mean of the central quarter of each patch minus the mean of its one-pixel
    border, scaled; a blob centred in the box scores highest."""
    box = x.shape[-1]
    centre = x[:, 0, 3 * box // 8:5 * box // 8, 3 * box // 8:5 * box // 8].mean(dim=(1, 2))
    ring = torch.ones(box, box, dtype=torch.bool)
    ring[1:-1, 1:-1] = False
    return 20.0 * (centre - x[:, 0][:, ring].mean(dim=1))


def _centre_surround_conv(x: torch.Tensor) -> torch.Tensor:
    """Logits (B, 1) from one conv2d spanning the whole patch: a Gaussian centre minus the mean."""
    box = x.shape[-1]
    grid = torch.arange(box, dtype=torch.float32) - (box // 2)
    gauss = torch.exp(-(grid[:, None] ** 2 + grid[None, :] ** 2) / (2 * 2.5 ** 2))
    kernel = (gauss / gauss.sum() - 1.0 / box ** 2)[None, None]
    return 50.0 * torch.nn.functional.conv2d(x, kernel).reshape(-1, 1)


# --- score_micrograph ------------------------------------------------------------------------


@pytest.mark.parametrize("score_fn", [_centre_minus_border, _centre_surround_conv])
def test_scoring_then_nms_recovers_the_blobs(score_fn) -> None:
    image = _blob_image(BLOBS)
    centres, probs = score_micrograph(score_fn, image, box=BOX, stride=2)
    assert centres.dtype == np.int64 and probs.dtype == np.float32 and probs.shape == (len(centres),)
    keep = non_max_suppression(centres, probs, min_distance=BOX, top_k=len(BLOBS))
    picks = centres[keep]
    match = match_picks(picks, BLOBS, radius=BOX / 4)
    assert (match.tp, match.fp, match.fn) == (len(BLOBS), 0, 0)
    assert match.precision == match.recall == match.f1 == 1.0
    # every blob centre is on the stride-2 grid, so the best box sits exactly on it
    nearest = np.min(np.linalg.norm(picks[:, None] - BLOBS[None], axis=-1), axis=1)
    assert np.all(nearest <= 1.0)


@pytest.mark.parametrize("image", [np.zeros((64, 80), np.float32), np.full((64, 80), 3.0, np.float32)],
                         ids=["empty", "flat"])
def test_a_featureless_image_gives_no_picks_above_threshold(image) -> None:
    centres, probs = score_micrograph(_centre_minus_border, image, box=BOX, stride=4)
    np.testing.assert_allclose(probs, 0.5, atol=1e-6)  # logit 0 everywhere
    assert len(non_max_suppression(centres, probs, min_distance=BOX, threshold=0.6)) == 0


@pytest.mark.parametrize("shape,box,stride", [((50, 70), 16, 5), ((48, 48), 48, 3), ((33, 40), 7, 7),
                                              ((64, 64), 15, 1)])
def test_grid_boxes_are_inside_and_cover_the_image(shape, box, stride) -> None:
    seen: list[tuple[int, ...]] = []

    def score_fn(x: torch.Tensor) -> torch.Tensor:
        seen.append(tuple(x.shape))
        assert x.dtype == torch.float32 and not torch.is_grad_enabled()
        return x.mean(dim=(1, 2, 3))

    image = np.random.default_rng(1).normal(size=shape).astype(np.float32)
    centres, probs = score_micrograph(score_fn, image, box=box, stride=stride, batch_size=37)
    half = box // 2
    top, left = centres[:, 0] - half, centres[:, 1] - half
    assert np.all(top >= 0) and np.all(left >= 0)
    assert np.all(top + box <= shape[0]) and np.all(left + box <= shape[1])
    covered = np.zeros(shape, dtype=bool)
    for t, l in zip(top, left):
        covered[t:t + box, l:l + box] = True
    assert covered.all()
    rows, cols = np.unique(centres[:, 0]), np.unique(centres[:, 1])
    assert len(centres) == len(rows) * len(cols)  # a full grid, no duplicates
    assert np.all(np.diff(rows)[:-1] == stride) and np.all(np.diff(cols)[:-1] == stride)
    assert all(s[1:] == (1, box, box) and 1 <= s[0] <= 37 for s in seen)
    assert sum(s[0] for s in seen) == len(centres)
    means = np.array([image[t:t + box, l:l + box].mean() for t, l in zip(top, left)])
    np.testing.assert_allclose(probs, 1 / (1 + np.exp(-means)), rtol=1e-5)


def test_normalize_is_applied_to_the_patches() -> None:
    image = 5.0 + 2.0 * np.random.default_rng(2).normal(size=(40, 40)).astype(np.float32)
    normalizer = ConsistentNormalizer().fit(image)
    mean_logit = lambda x: x.mean(dim=(1, 2, 3))  # noqa: E731
    centres, raw = score_micrograph(mean_logit, image, box=8, stride=4)
    _, normalized = score_micrograph(mean_logit, image, box=8, stride=4, normalize=normalizer)
    assert raw.min() > 0.95  # un-normalized patch means near 5
    expected = [(image[r - 4:r + 4, c - 4:c + 4].mean() - normalizer.mean) / normalizer.std for r, c in centres]
    np.testing.assert_allclose(normalized, 1 / (1 + np.exp(-np.array(expected))), rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("kwargs,match", [
    (dict(box=0, stride=2), r"box=0 .*allowed: an integer in \[1, 32\]"),
    (dict(box=33, stride=2), r"box=33 .*shape \(32, 40\).*\[1, 32\]"),
    (dict(box=8.0, stride=2), r"box=8.0 "),
    (dict(box=8, stride=0), r"stride=0 .*allowed: an integer >= 1"),
    (dict(box=8, stride=True), r"stride=True "),
    (dict(box=8, stride=2, batch_size=0), r"batch_size=0 .*allowed: an integer >= 1"),
])
def test_score_micrograph_rejects_bad_arguments(kwargs, match) -> None:
    with pytest.raises(ValueError, match=match):
        score_micrograph(_centre_minus_border, np.zeros((32, 40), np.float32), **kwargs)


def test_score_micrograph_rejects_bad_images_and_logits() -> None:
    with pytest.raises(ValueError, match=r"image has shape \(2, 32, 32\).*allowed: a 2-D"):
        score_micrograph(_centre_minus_border, np.zeros((2, 32, 32)), box=8, stride=2)
    with pytest.raises(ValueError, match=r"score_fn returned shape \(\d+, 2\).*allowed"):
        score_micrograph(lambda x: torch.zeros(len(x), 2), np.zeros((32, 32)), box=8, stride=2)


def test_local_variance_picks_every_particle_of_a_simulated_micrograph() -> None:
    """A matched-filter-like score with no training: particles add CTF-filtered signal variance to
    the noise, so the log variance of a box's central half is highest on particles (snr 1.0)."""
    config = MicrographConfig(field=256, box=48, n_particles=6, snr=1.0, seed=0)
    image, truth, _ = simulate_micrograph(config)

    def log_local_variance(x: torch.Tensor) -> torch.Tensor:
        box = x.shape[-1]
        return torch.log(x[:, 0, box // 4:3 * box // 4, box // 4:3 * box // 4].var(dim=(1, 2)))

    centres, probs = score_micrograph(log_local_variance, image, box=config.box, stride=4,
                                      normalize=ConsistentNormalizer().fit(image))
    keep = non_max_suppression(centres, probs, min_distance=config.box, top_k=len(truth))
    match = match_picks(centres[keep], truth, radius=config.box / 4)
    assert len(truth) == 6
    assert (match.tp, match.fp, match.fn) == (6, 0, 0)


# --- non_max_suppression ---------------------------------------------------------------------


def _reference_nms(centres: np.ndarray, scores: np.ndarray, min_distance: float) -> list[int]:
    """Greedy NMS written the slow way: stable order by descending score, keep a candidate only if
    it is at least min_distance from every pick kept so far."""
    order = sorted(range(len(scores)), key=lambda i: -scores[i])
    kept: list[int] = []
    for i in order:
        if all(np.hypot(*(centres[i] - centres[j])) >= min_distance for j in kept):
            kept.append(i)
    return kept


@pytest.mark.parametrize("seed", range(5))
def test_nms_matches_a_brute_force_reference(seed) -> None:
    rng = np.random.default_rng(seed)
    centres = rng.integers(0, 100, size=(300, 2))
    scores = np.round(rng.random(300), 1)  # many ties
    min_distance = 9.5
    kept = non_max_suppression(centres, scores, min_distance=min_distance)
    assert kept.tolist() == _reference_nms(centres, scores, min_distance)
    assert kept.dtype == np.int64 and np.all(np.diff(scores[kept]) <= 0)
    pairwise = np.linalg.norm(centres[kept][:, None] - centres[kept][None], axis=-1)
    assert np.all(pairwise[~np.eye(len(kept), dtype=bool)] >= min_distance)
    for i in sorted(set(range(len(centres))) - set(kept.tolist())):
        close = np.linalg.norm(centres[kept] - centres[i], axis=1) < min_distance
        assert np.any(close & (scores[kept] >= scores[i]))
    top = non_max_suppression(centres, scores, min_distance=min_distance, top_k=7)
    assert top.tolist() == kept[:7].tolist()
    above = non_max_suppression(centres, scores, min_distance=min_distance, threshold=0.5)
    assert above.tolist() == [i for i in kept.tolist() if scores[i] >= 0.5]


def test_nms_edge_cases() -> None:
    centres = np.array([[0, 0], [0, 3], [0, 6], [50, 50]])
    scores = np.array([0.9, 0.9, np.nan, 0.1])
    assert non_max_suppression(centres, scores, min_distance=5).tolist() == [0, 3]  # tie: input order
    assert non_max_suppression(centres, scores, min_distance=3).tolist() == [0, 1, 3]  # 3 apart: kept
    assert non_max_suppression(centres, scores, min_distance=0).tolist() == [0, 1, 3]  # NaN never kept
    assert non_max_suppression(centres, scores, min_distance=5, top_k=0).tolist() == []
    assert non_max_suppression(np.zeros((0, 2)), np.zeros(0), min_distance=5).tolist() == []


@pytest.mark.parametrize("args,kwargs,match", [
    ((np.zeros((3, 2)), np.zeros(4)), dict(min_distance=1), r"scores has shape \(4,\); allowed: \(3,\)"),
    ((np.zeros((3, 3)), np.zeros(3)), dict(min_distance=1), r"centres has shape \(3, 3\); allowed: \(n, 2\)"),
    ((np.zeros((3, 2)), np.zeros(3)), dict(min_distance=-1), r"min_distance=-1 .*allowed: a finite number >= 0"),
    ((np.zeros((3, 2)), np.zeros(3)), dict(min_distance=float("inf")), r"min_distance=inf "),
    ((np.zeros((3, 2)), np.zeros(3)), dict(min_distance=1, top_k=-1), r"top_k=-1 .*allowed: None or an integer"),
])
def test_nms_rejects_bad_arguments(args, kwargs, match) -> None:
    with pytest.raises(ValueError, match=match):
        non_max_suppression(*args, **kwargs)


# --- match_picks -----------------------------------------------------------------------------


@pytest.mark.parametrize("picked,truth,radius,counts", [
    ([[0, 5]], [[0, 0], [0, 10]], 6, (1, 0, 1)),  # between two truths: matches only one
    ([[50, 50]], [[0, 0]], 5, (0, 1, 1)),  # outside the radius: a false positive
    ([[0, 5]], [[0, 0]], 5, (1, 0, 0)),  # exactly at the radius: a match
    ([[1, 0], [0, 1]], [[0, 0]], 5, (1, 1, 0)),  # a duplicate pick of one particle
    ([[0, 3], [0, 1]], [[0, 0], [0, 8]], 5, (1, 1, 1)),  # greedy in pick order: the first takes (0, 0)
    ([[0, 1], [0, 3]], [[0, 0], [0, 8]], 5, (2, 0, 0)),  # the other order matches both
    ([], [[0, 0], [9, 9]], 5, (0, 0, 2)),
    ([[0, 0]], [], 5, (0, 1, 0)),
])
def test_match_picks_counts(picked, truth, radius, counts) -> None:
    match = match_picks(np.array(picked).reshape(-1, 2), np.array(truth).reshape(-1, 2), radius=radius)
    assert (match.tp, match.fp, match.fn) == counts


def test_pick_match_ratios_and_undefined_ones() -> None:
    match = PickMatch(tp=3, fp=1, fn=2)
    assert match.precision == pytest.approx(0.75)
    assert match.recall == pytest.approx(0.6)
    assert match.f1 == pytest.approx(2 * 0.75 * 0.6 / 1.35)
    empty = PickMatch(tp=0, fp=0, fn=0)
    assert (empty.precision, empty.recall, empty.f1) == (0.0, 0.0, 0.0)
    with pytest.raises(ValueError, match=r"fp=-1 is not allowed; allowed: an integer >= 0"):
        PickMatch(tp=0, fp=-1, fn=0)


@pytest.mark.parametrize("picked,truth,radius,match", [
    (np.zeros(3), np.zeros((1, 2)), 1, r"picked has shape \(3,\); allowed: \(n, 2\)"),
    (np.zeros((1, 2)), np.zeros((1, 3)), 1, r"truth has shape \(1, 3\)"),
    (np.zeros((1, 2)), np.zeros((1, 2)), -2, r"radius=-2 .*allowed: a finite number >= 0"),
])
def test_match_picks_rejects_bad_arguments(picked, truth, radius, match) -> None:
    with pytest.raises(ValueError, match=match):
        match_picks(picked, truth, radius=radius)
