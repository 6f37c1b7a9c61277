"""FixMatch's pieces: the two views, the ramp-up, the EMA teacher following optimizer steps (not
accumulated batches), what the module logs, and the registered network's round trip."""

from __future__ import annotations

import math

import lightning as L
import numpy as np
import pytest
import torch

from lightning_modules.fixmatch_pu import FixMatchPUConfig, FixMatchPUModule, build_backbone, rampup_weight
from lightning_modules.fixmatch_pu.augment import strong_view, weak_view
from lightning_modules.fixmatch_pu.data import PUConfig, MicrographConfig, PUDataModule, simulate_pu, split_by_micrograph
from mlflow_plugins.registry import torch_format

pytestmark = pytest.mark.filterwarnings("ignore::UserWarning")


def test_weak_view_only_moves_pixels_and_strong_view_changes_them() -> None:
    x = torch.randn(16, 1, 12, 12, generator=torch.Generator().manual_seed(0))
    torch.manual_seed(0)
    moved = weak_view(x, max_shift=0)  # rotations and flips: a permutation of each patch's pixels
    assert torch.equal(torch.sort(moved.flatten(1)).values, torch.sort(x.flatten(1)).values)
    assert not torch.equal(moved, x)
    shifted = weak_view(x)
    strong = strong_view(x)
    assert shifted.shape == strong.shape == x.shape
    assert (strong == 0).flatten(1).sum(1).min() >= 16  # every patch has its cut-out square (4 x 4 at 0.35)
    torch.manual_seed(0)
    again = weak_view(x, max_shift=0)
    assert torch.equal(again, moved)


def test_rampup_rises_from_exp_minus_5_to_one() -> None:
    assert rampup_weight(0, 30) == pytest.approx(math.exp(-5))
    assert rampup_weight(15, 30) == pytest.approx(math.exp(-5 * 0.25))
    assert rampup_weight(30, 30) == rampup_weight(99, 30) == 1.0
    assert rampup_weight(0, 0) == 1.0


@pytest.fixture(scope="module")
def splits():
    pu = PUConfig(micrograph=MicrographConfig(field=192, box=32, n_particles=8), n_micrographs=7,
                  negatives_per_micrograph=24, labeled_fraction=0.4, seed=1)
    return split_by_micrograph(simulate_pu(pu), n_val=1, n_test=1)


def _fit(splits, *, accumulate: int = 1, epochs: int = 2, **changes) -> tuple[FixMatchPUModule, L.Trainer]:
    L.seed_everything(0, verbose=False)
    module = FixMatchPUModule(FixMatchPUConfig(backbone="cnn", width=4, **changes), data_prior=splits.prior)
    trainer = L.Trainer(max_epochs=epochs, logger=False, enable_checkpointing=False, enable_progress_bar=False,
                        enable_model_summary=False, accumulate_grad_batches=accumulate, deterministic=True)
    trainer.fit(module, datamodule=PUDataModule(splits, batch_size=16, positive_batch_size=4, seed=0))
    return module, trainer


def test_the_teacher_follows_each_optimizer_step_not_each_batch(splits) -> None:
    module, trainer = _fit(splits, accumulate=2)
    batches = trainer.num_training_batches * trainer.max_epochs
    assert trainer.global_step < batches  # accumulation: fewer steps than batches
    assert int(module.teacher.n_averaged) == trainer.global_step


def test_the_module_logs_what_the_document_says_to_monitor(splits) -> None:
    module, trainer = _fit(splits, threshold=0.5)
    logged = {k: float(v) for k, v in trainer.callback_metrics.items()}
    for key in ("train/pseudo_label_rate", "pseudo/rate_at_0.95", "pseudo/rate_at_0.75", "val/auc", "val/ap",
                "val/pred_std", "pu/risk_positive", "pu/risk_negative", "pu/prior_configured", "pu/prior_estimated",
                "train/consistency", "pu/predicted_positive_rate"):
        assert key in logged, key
    assert logged["pu/prior_estimated"] == pytest.approx(splits.prior)
    # confidence max(p, 1-p) >= 0.5 always: at threshold 0.5 every unlabeled patch is used
    assert logged["train/pseudo_label_rate"] == 1.0
    assert logged["pseudo/rate_at_0.95"] <= logged["pseudo/rate_at_0.75"] <= 1.0
    assert 0.0 <= logged["val/auc"] <= 1.0 and logged["val/pred_std"] >= 0


def test_without_fixmatch_no_consistency_is_trained(splits) -> None:
    _, trainer = _fit(splits, objective="pn", fixmatch=False, ema_decay=0.0, epochs=1)
    assert "train/consistency" not in trainer.callback_metrics


@pytest.mark.parametrize("name", ["cnn", "resnet"])
def test_the_registered_network_rebuilds_with_its_weights(tmp_path, name: str) -> None:
    net = build_backbone(name, 4).eval()
    x = torch.from_numpy(np.random.default_rng(0).normal(size=(3, 1, 48, 48)).astype(np.float32))
    torch_format.save(net, tmp_path / "model")
    loaded = torch_format.load(tmp_path / "model")
    assert torch.allclose(loaded(x), net(x)) and net(x).shape == (3,)
