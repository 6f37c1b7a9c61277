"""Document 002's sequence autoencoder: config, curriculum, model, losses, latent metrics, module."""

from __future__ import annotations

import lightning as L
import numpy as np
import pytest
import torch

from lightning_modules.poetry_ae import (
    AEConfig,
    Curriculum,
    Phase,
    PoetryAEModule,
    PoetryAutoencoder,
    effective_dims,
    hybrid_loss,
    masked_mse,
    participation_ratio,
    pca_variance,
    reconstruction_loss,
    rmse,
    sequence_cosine,
    teacher_mask,
    token_cosine,
)

D = 8


def tiny(**kw) -> AEConfig:
    base = dict(input_dim=D, hidden=8, bottleneck=4, heads=2)
    base.update(kw)
    return AEConfig(**base)


def batch(n: int = 4, t: int = 9, d: int = D, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    lengths = torch.randint(1, t + 1, (n,), generator=g)
    lengths[0] = t
    mask = torch.arange(t)[None] < lengths[:, None]
    x = torch.randn(n, t, d, generator=g) * mask[..., None]
    return x, mask, lengths


# config ------------------------------------------------------------------------------------------

@pytest.mark.parametrize("kw, match", [
    (dict(input_dim=0), "input_dim=0"),
    (dict(hidden=1.5), "hidden=1.5"),
    (dict(bottleneck=True), "bottleneck=True"),
    (dict(cell="transformer"), "cell='transformer'"),
    (dict(loss="l1"), "loss='l1'"),
    (dict(init="kaiming"), "init='kaiming'"),
    (dict(teacher_forcing="per_epoch"), "teacher_forcing='per_epoch'"),
    (dict(attention=True, hidden=8, heads=3), "heads=3"),
    (dict(attention=1), "attention=1"),
    (dict(cosine_weight=1.5), "cosine_weight=1.5"),
    (dict(tf_ratio=-0.1), "tf_ratio=-0.1"),
    (dict(lr=0.0), "lr=0.0"),
    (dict(clip=-1.0), "clip=-1.0"),
    (dict(phases=()), "phases=()"),
    (dict(phases=((0, 0.5, 10),)), "phases entry"),
    (dict(phases=((3, 1.5, 10),)), "phases entry"),
])
def test_config_rejects_bad_values_in_one_line_naming_the_field(kw, match):
    with pytest.raises(ValueError, match=match) as info:
        tiny(**kw)
    assert "\n" not in str(info.value)


def test_config_is_frozen_and_phases_from_lists_become_tuples():
    cfg = tiny(phases=[[2, 0.5, 10], [1, 0.1, None]])
    assert cfg.phases == ((2, 0.5, 10), (1, 0.1, None))
    assert AEConfig(**cfg.to_dict()) == cfg
    with pytest.raises(AttributeError):
        cfg.hidden = 3  # type: ignore[misc]


# curriculum --------------------------------------------------------------------------------------

@pytest.mark.parametrize("epoch, phase", [
    (0, (0.9, 20)), (6, (0.9, 20)), (7, (0.7, 30)), (14, (0.7, 30)), (15, (0.3, 40)),
    (22, (0.3, 40)), (23, (0.1, 50)), (29, (0.1, 50)), (40, (0.1, 50)),
])
def test_document_curriculum_phase_boundaries(epoch, phase):
    assert Curriculum.from_config(AEConfig()).at(epoch) == Phase(*phase)


def test_curriculum_off_is_a_fixed_ratio_without_length_limit():
    c = Curriculum.from_config(AEConfig(curriculum=False, tf_ratio=0.25))
    assert c.at(0) == c.at(100) == Phase(0.25, None)
    with pytest.raises(ValueError, match="epoch=-1"):
        c.at(-1)


def test_per_step_masks_vary_within_rows_and_average_to_the_ratio():
    g = torch.Generator().manual_seed(0)
    rows = teacher_mask(4, 200, 0.5, g)
    assert rows.shape == (4, 200) and rows.dtype == torch.bool
    assert all(0 < r.sum() < 200 for r in rows)
    many = teacher_mask(1000, 100, 0.3, g)
    assert abs(many.float().mean().item() - 0.3) < 0.01
    assert teacher_mask(3, 5, 1.0, g).all() and not teacher_mask(3, 5, 0.0, g).any()


def test_per_batch_masks_are_one_coin_for_the_whole_batch():
    g = torch.Generator().manual_seed(0)
    draws = [teacher_mask(4, 10, 0.5, g, per_step=False) for _ in range(200)]
    assert all(m.all() or not m.any() for m in draws)
    share = np.mean([m.all().item() for m in draws])
    assert 0.35 < share < 0.65


def test_same_seed_same_masks():
    a = [teacher_mask(3, 7, 0.4, torch.Generator().manual_seed(5), per_step=p) for p in (True, False)]
    b = [teacher_mask(3, 7, 0.4, torch.Generator().manual_seed(5), per_step=p) for p in (True, False)]
    assert all(torch.equal(x, y) for x, y in zip(a, b))


# model -------------------------------------------------------------------------------------------

def test_baseline_parameter_count_at_300d():
    model = PoetryAutoencoder(AEConfig(input_dim=300))
    counts = model.param_counts()
    # RNN 300->64 (23,424) + Linear 64->16 (1,040) + Linear 16->64 (1,088) + RNNCell 300->64 (23,424)
    # + Linear 64->300 (19,500). The document's 150,085 is odd; every tensor here has even size.
    assert counts == {"encoder": 23424, "bottleneck": 1040, "decoder": 44012, "attention": 0, "total": 68476}
    assert counts["total"] == sum(p.numel() for p in model.parameters())
    assert sum(v for k, v in counts.items() if k != "total") == counts["total"]


def test_final_model_counts_sum_to_total():
    model = PoetryAutoencoder(AEConfig(input_dim=384, cell="lstm", hidden=512, attention=True, heads=8))
    counts = model.param_counts()
    assert counts["total"] == sum(p.numel() for p in model.parameters()) == 4952464
    assert counts["attention"] > 0
    assert model.config.hidden == 512


def _gram_error(weight: torch.Tensor, hidden: int) -> float:
    return max((w @ w.T - torch.eye(hidden)).abs().max().item() for w in weight.detach().split(hidden))


@pytest.mark.parametrize("cell", ["rnn", "lstm", "gru"])
def test_orthogonal_init_makes_recurrent_weights_orthogonal(cell):
    torch.manual_seed(0)
    ortho = PoetryAutoencoder(tiny(cell=cell, hidden=16))
    default = PoetryAutoencoder(tiny(cell=cell, hidden=16, init="default"))
    for model, close in ((ortho, True), (default, False)):
        for w in (model.encoder.rnn.weight_hh_l0, model.decoder.cell.weight_hh):
            assert (_gram_error(w, 16) < 1e-5) == close
    assert all((p == 0).all() for n, p in ortho.named_parameters() if "bias" in n and "attention" not in n)


@pytest.mark.parametrize("cell", ["rnn", "lstm", "gru"])
@pytest.mark.parametrize("attention", [False, True])
def test_forward_shapes(cell, attention):
    model = PoetryAutoencoder(tiny(cell=cell, attention=attention))
    x, mask, lengths = batch()
    recon, z = model(x, mask, lengths, teacher_mask=torch.ones_like(mask))
    assert recon.shape == x.shape and z.shape == (4, 4)
    assert torch.equal(model.encode(x, mask, lengths), z)
    assert torch.isfinite(recon).all()


@pytest.mark.parametrize("attention", [False, True])
def test_padding_does_not_reach_the_latent_or_real_outputs(attention):
    torch.manual_seed(0)
    model = PoetryAutoencoder(tiny(cell="gru", attention=attention))
    x, mask, lengths = batch()
    noisy = x + torch.randn_like(x) * (~mask)[..., None]
    r1, z1 = model(x, mask, lengths)
    r2, z2 = model(noisy, mask, lengths)
    assert torch.allclose(z1, z2, atol=1e-6)
    assert torch.allclose(r1[mask], r2[mask], atol=1e-6)


def test_teacher_forcing_feeds_the_previous_target_and_an_all_false_mask_is_autoregressive():
    torch.manual_seed(0)
    model = PoetryAutoencoder(tiny())
    x, mask, lengths = batch(t=6)
    forced = torch.ones_like(mask)
    r_forced, _ = model(x, mask, lengths, forced)
    # Changing the target at step 3 (but not the encoder's view of it) only moves outputs from step 4.
    z = model.encode(x, mask, lengths)
    x2 = x.clone()
    x2[:, 3] += 1.0
    r2 = model.decoder(z, x2, forced)
    assert torch.allclose(r2[:, :4], r_forced[:, :4]) and not torch.allclose(r2[:, 4], r_forced[:, 4])
    assert torch.allclose(model(x, mask, lengths, torch.zeros_like(mask))[0], model(x, mask, lengths)[0])


# losses ------------------------------------------------------------------------------------------

LOSSES = [masked_mse, rmse, token_cosine, sequence_cosine, hybrid_loss]


@pytest.mark.parametrize("fn", LOSSES)
def test_losses_ignore_padding(fn):
    x, mask, _ = batch(seed=1)
    pred = torch.randn_like(x)
    pad = (~mask)[..., None]
    assert torch.allclose(fn(pred, x, mask), fn(pred + 5 * pad * torch.randn_like(x), x + 3 * pad, mask))


def test_cosines_of_identical_vectors_are_one_and_scale_free():
    x, mask, _ = batch(seed=2)
    for fn in (token_cosine, sequence_cosine):
        assert torch.allclose(fn(x, x, mask), torch.tensor(1.0))
        assert torch.allclose(fn(3 * x, x, mask), torch.tensor(1.0))
    assert masked_mse(x, x, mask) == 0 and hybrid_loss(x, x, mask).abs() < 1e-6


def test_losses_match_an_independent_numpy_reference():
    x, mask, _ = batch(seed=3)
    pred = torch.randn_like(x)
    p, t, m = pred.numpy()[mask.numpy()], x.numpy()[mask.numpy()], mask.numpy()
    mse = ((p - t) ** 2).mean()
    cos = np.mean((p * t).sum(1) / (np.linalg.norm(p, axis=1) * np.linalg.norm(t, axis=1)))
    seq = []
    for i in range(len(m)):
        a, b = pred.numpy()[i][m[i]].mean(0), x.numpy()[i][m[i]].mean(0)
        seq.append(a @ b / (np.linalg.norm(a) * np.linalg.norm(b)))
    assert np.isclose(masked_mse(pred, x, mask).item(), mse, rtol=1e-5)
    assert np.isclose(rmse(pred, x, mask).item(), np.sqrt(mse), rtol=1e-5)
    assert np.isclose(token_cosine(pred, x, mask).item(), cos, atol=1e-6)
    assert np.isclose(sequence_cosine(pred, x, mask).item(), np.mean(seq), atol=1e-6)
    assert np.isclose(hybrid_loss(pred, x, mask, 0.9).item(), 0.9 * (1 - cos) + 0.1 * mse, atol=1e-5)
    assert np.isclose(reconstruction_loss(pred, x, mask, "hybrid", 0.25).item(),
                      0.25 * (1 - cos) + 0.75 * mse, atol=1e-5)
    assert reconstruction_loss(pred, x, mask, "mse") == masked_mse(pred, x, mask)
    with pytest.raises(ValueError, match="loss='l1'"):
        reconstruction_loss(pred, x, mask, "l1")


# latent metrics ----------------------------------------------------------------------------------

def test_effective_dims_counts_a_planted_low_variance_dimension_out():
    z = np.random.default_rng(0).normal(size=(500, 5))
    assert effective_dims(z) == 5
    z[:, 2] *= 0.01  # variance 1e-4 of the others
    assert effective_dims(z) == 4
    assert effective_dims(z, threshold=1e-6) == 5


def test_pca_variance_and_participation_ratio():
    rng = np.random.default_rng(0)
    iso = rng.normal(size=(4000, 4))
    ratios = pca_variance(iso)
    assert np.isclose(ratios.sum(), 1.0) and np.all(np.diff(ratios) <= 0)
    assert 3.8 < participation_ratio(iso) <= 4.0
    # Every coordinate varies, all along one direction: 16/16 "used", one principal component.
    line = rng.normal(size=(500, 1)) * rng.normal(size=(1, 16)) + 1e-3 * rng.normal(size=(500, 16))
    assert effective_dims(line) >= 10
    assert pca_variance(line)[0] > 0.99 and participation_ratio(line) < 1.05
    with pytest.raises(ValueError, match="shape"):
        pca_variance(np.zeros(5))


# LightningModule ---------------------------------------------------------------------------------

def loaders(seed: int = 0, t: int = 24):
    x, mask, lengths = batch(n=16, t=t, seed=seed)
    data = torch.utils.data.TensorDataset(x, mask, lengths)
    return torch.utils.data.DataLoader(data, batch_size=8), torch.utils.data.DataLoader(data, batch_size=8)


def fit(cfg: AEConfig, seed: int = 0, epochs: int = 2, callbacks=()) -> tuple[L.Trainer, PoetryAEModule]:
    L.seed_everything(seed, verbose=False)
    trainer = L.Trainer(accelerator="cpu", max_epochs=epochs, logger=False, enable_checkpointing=False,
                        enable_progress_bar=False, enable_model_summary=False, num_sanity_val_steps=0,
                        callbacks=list(callbacks))
    module = PoetryAEModule(cfg, seed=seed)
    train, val = loaders()
    trainer.fit(module, train, val)
    return trainer, module


class _Record(L.Callback):
    def __init__(self) -> None:
        self.lengths: list[int] = []
        self.grad_norms: list[float] = []

    def on_train_batch_start(self, trainer, module, batch, batch_idx):
        self.handle = module.model.decoder.register_forward_pre_hook(
            lambda m, args: self.lengths.append(args[1].shape[1]))

    def on_train_batch_end(self, trainer, module, outputs, batch, batch_idx):
        self.handle.remove()

    def on_train_start(self, trainer, module):
        def after_step(optimizer, args, kwargs):
            grads = [p.grad for group in optimizer.param_groups for p in group["params"] if p.grad is not None]
            self.grad_norms.append(torch.linalg.vector_norm(torch.stack([g.norm() for g in grads])).item())
        trainer.optimizers[0].register_step_post_hook(after_step)


def test_module_trains_two_epochs_with_the_curriculum_and_logs_metrics():
    record = _Record()
    trainer, module = fit(tiny(loss="hybrid", clip=1e-3), callbacks=[record])
    logged = trainer.callback_metrics
    keys = {"train/loss", "train/tf_ratio", "train/max_len"} | {
        f"val/{k}" for k in ("loss", "token_cosine", "seq_cosine", "mse", "rmse")}
    assert keys <= set(logged)
    assert all(torch.isfinite(logged[k]) for k in keys)
    assert logged["train/tf_ratio"] == pytest.approx(0.9) and logged["train/max_len"] == 20
    assert record.lengths and set(record.lengths) == {20}  # batches of 24 steps cut to phase 1's 20
    assert max(record.grad_norms) <= 1e-3 * 1.001  # clipped to config.clip
    test = L.Trainer(accelerator="cpu", logger=False, enable_progress_bar=False,
                     enable_model_summary=False).test(module, loaders()[1], verbose=False)[0]
    assert {"test/loss", "test/seq_cosine", "test/rmse"} <= set(test)
    z = module.latents(loaders()[1])
    assert z.shape == (16, 4) and module.reconstruct(*batch()).shape == (4, 9, D)


def test_same_seed_same_metrics():
    a, _ = fit(tiny(), seed=3)
    b, _ = fit(tiny(), seed=3)
    for key in ("train/loss", "val/loss", "val/token_cosine"):
        assert a.callback_metrics[key] == b.callback_metrics[key]


def test_checkpoint_round_trip_with_weights_only(tmp_path):
    trainer, module = fit(tiny(cell="lstm", attention=True), epochs=1)
    path = tmp_path / "ae.ckpt"
    trainer.save_checkpoint(path)
    ckpt = torch.load(path, weights_only=True)
    assert ckpt["hyper_parameters"]["config"]["cell"] == "lstm"
    loaded = PoetryAEModule.load_from_checkpoint(path, weights_only=True)
    assert loaded.config == module.config
    assert all(torch.equal(a, b) for a, b in zip(loaded.state_dict().values(), module.state_dict().values()))
    # The resumed module draws the teacher masks the original would have drawn next.
    assert torch.equal(teacher_mask(4, 20, 0.5, loaded.generator), teacher_mask(4, 20, 0.5, module.generator))
    x, mask, lengths = batch()
    assert torch.equal(loaded.reconstruct(x, mask, lengths), module.reconstruct(x, mask, lengths))
