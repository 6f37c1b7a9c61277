"""Document 004's PU data set: patches around particles and away from them, a known prior, one
normalization fitted on training data."""

from __future__ import annotations

import numpy as np
import pytest

from lightning_modules.fixmatch_pu.data import (
    ConsistentNormalizer,
    MicrographConfig,
    PUConfig,
    crop,
    negative_centres,
    simulate_micrograph,
    simulate_pu,
)

SMALL = PUConfig(micrograph=MicrographConfig(field=256, box=32, n_particles=10), n_micrographs=3,
                 negatives_per_micrograph=30, labeled_fraction=0.4, seed=2)


def test_negatives_keep_a_box_away_from_every_particle() -> None:
    config = MicrographConfig(field=256, box=32, n_particles=10, seed=5)
    _, particles, _ = simulate_micrograph(config)
    centres = negative_centres(40, 256, 32, particles, np.random.default_rng(0))
    assert len(centres) == 40
    distance = np.sqrt(((centres[:, None] - particles[None]) ** 2).sum(-1))
    assert distance.min() >= 32 and centres.min() >= 16 and centres.max() <= 240


def test_crop_takes_boxes_centred_on_the_centres() -> None:
    image = np.arange(100 * 100, dtype=np.float32).reshape(100, 100)
    patches = crop(image, np.array([[50, 40], [20, 20]]), 10)
    assert patches.shape == (2, 10, 10) and patches[0, 5, 5] == image[50, 40] and patches[1, 0, 0] == image[15, 15]


def test_the_pu_split_has_a_known_prior_and_is_seeded() -> None:
    arrays = simulate_pu(SMALL)
    assert arrays.x.shape == (3 * 40, 32, 32) and arrays.x.dtype == np.float32
    assert arrays.y.sum() == 30 and arrays.labeled.sum() == 12  # 40 % of the 30 positives
    assert np.all(arrays.y[arrays.labeled] == 1)                 # only positives are ever labeled
    assert arrays.prior == pytest.approx(18 / 108)               # positives among the unlabeled
    assert sorted(set(arrays.micrograph.tolist())) == [0, 1, 2]
    again = simulate_pu(SMALL)
    assert np.array_equal(arrays.x, again.x) and np.array_equal(arrays.labeled, again.labeled)


def test_particles_carry_more_signal_than_background_at_high_snr() -> None:
    arrays = simulate_pu(PUConfig(micrograph=MicrographConfig(field=256, box=32, n_particles=10, snr=2.0),
                                  n_micrographs=2, negatives_per_micrograph=20))
    var = arrays.x.reshape(len(arrays.x), -1).var(axis=1)
    assert var[arrays.y == 1].mean() > 1.5 * var[arrays.y == 0].mean()


def test_one_normalization_fitted_on_training_patches() -> None:
    train = np.random.default_rng(0).normal(3.0, 2.0, size=(50, 8, 8))
    other = np.random.default_rng(1).normal(5.0, 1.0, size=(10, 8, 8))
    norm = ConsistentNormalizer().fit(train)
    assert abs(norm(train).mean()) < 1e-6 and norm(train).std() == pytest.approx(1.0)
    assert norm(other).mean() == pytest.approx((5.0 - norm.mean) / norm.std, abs=0.1)  # not re-centred
    with pytest.raises(ValueError, match="not fitted"):
        ConsistentNormalizer()(train)


@pytest.mark.parametrize("field, value", [("n_micrographs", 0), ("negatives_per_micrograph", -1),
                                          ("labeled_fraction", 1.0)])
def test_pu_config_rejects_bad_values(field: str, value) -> None:
    with pytest.raises(ValueError, match=field):
        PUConfig(**{field: value})
