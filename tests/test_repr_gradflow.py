"""Document 001's model and data: the bug and the fix, the generator, the cache, the loader."""

from __future__ import annotations

from pathlib import Path

import lightning as L
import numpy as np
import pytest
import torch

from lightning_modules.repr_gradflow import (
    DataFileError,
    EchoStateReservoir,
    MotifTaskConfig,
    ReprGradflowDataModule,
    ReprGradflowModule,
    ReprGradflowNet,
    ReprNetConfig,
    generate_motif_task,
    load_npz,
    stratified_split,
)
from lightning_modules.repr_gradflow.model import ReprGradflowClassifier
from projects.common.data_cache import cache_path, cached_arrays
from projects.repr_gradflow.data import CACHE_NAME, motif_task_arrays

TINY = MotifTaskConfig(n_samples=24, n_classes=4, seq_len=40, n_channels=3, motif_len=8, seed=3)


def _net(variant: str, **kwargs) -> ReprGradflowNet:
    torch.manual_seed(0)
    config = dict(n_channels=3, n_classes=4, variant=variant, reservoir_size=16, conv_channels=4)
    return ReprGradflowNet(ReprNetConfig(**{**config, **kwargs}))


def _one_step(net: ReprGradflowNet) -> torch.optim.Optimizer:
    """One optimizer step on a random batch, with every parameter in the optimizer (as in 001)."""
    optimizer = torch.optim.Adam(net.parameters(), lr=1e-2)
    x, y = torch.randn(8, 30, 3), torch.randint(0, 4, (8,))
    net.train()
    loss = torch.nn.functional.cross_entropy(net(x, training=True), y)
    optimizer.zero_grad()
    loss.backward()
    optimizer.step()
    return optimizer


# --------------------------------------------------------------------------- the variants


def test_broken_variant_representation_gets_no_gradient_but_readout_does() -> None:
    net = _net("broken")
    before = {n: p.detach().clone() for n, p in net.representation_learning.named_parameters()}
    optimizer = _one_step(net)

    held = {id(p) for g in optimizer.param_groups for p in g["params"]}
    for name, p in net.representation_learning.named_parameters():
        assert id(p) in held, f"{name} should be in the optimizer, as in the document's code"
        assert p.grad is None, f"{name} got a gradient in the broken variant"
        assert torch.equal(p, before[name]), f"{name} moved although it has no gradient"
    for name, p in net.readout.named_parameters():
        assert p.grad is not None and p.grad.abs().sum() > 0, f"readout {name} got no gradient"
    assert not net.representation_learning.training  # the bug: eval() even while training


def test_fixed_variant_every_parameter_gets_a_gradient() -> None:
    net = _net("fixed")
    _one_step(net)
    for name, p in net.named_parameters():
        assert p.grad is not None and p.grad.abs().sum() > 0, f"{name} got no gradient"
    assert net.representation_learning.training  # fix 1: train() mode in training


def test_fixed_variant_evaluates_in_eval_mode_without_gradients() -> None:
    net = _net("fixed")
    net.train()
    logits = net(torch.randn(2, 30, 3), training=False)
    assert not net.representation_learning.training  # fix 4
    assert net.extract_features(torch.randn(2, 30, 3), training=False).requires_grad is False
    assert logits.shape == (2, 4)


def test_broken_variant_features_go_through_numpy() -> None:
    features = _net("broken").extract_features(torch.randn(2, 30, 3), training=True)
    assert isinstance(features, np.ndarray)


def test_reservoir_is_fixed_buffers_and_seeded() -> None:
    a, b, c = (EchoStateReservoir(3, 16, seed=s) for s in (1, 1, 2))
    assert list(a.parameters()) == []
    assert {n for n, _ in a.named_buffers()} == {"w_in", "w", "bias"}
    assert torch.equal(a.w, b.w) and not torch.equal(a.w, c.w)
    assert abs(torch.linalg.eigvals(a.w).abs().max().item() - 0.9) < 1e-4
    assert a(torch.randn(2, 10, 3)).shape == (2, 10, 16)


@pytest.mark.parametrize("conv_channels, kernel_sizes", [(4, (3, 5, 7)), (5, (3,)), (2, (1, 3, 5, 9))])
def test_readout_input_size_is_measured_from_the_stages(conv_channels: int, kernel_sizes: tuple) -> None:
    net = _net("fixed", conv_channels=conv_channels, kernel_sizes=kernel_sizes)
    assert net.feature_dim == conv_channels * len(kernel_sizes)
    assert net.readout.in_features == net.feature_dim
    assert net.representation_learning(net.reservoir(torch.zeros(1, 50, 3))).shape[-1] == net.feature_dim


def test_parameter_counts_and_optimizer_coverage_per_component() -> None:
    module = ReprGradflowModule(ReprNetConfig(n_classes=4, variant="broken", reservoir_size=16, conv_channels=4))
    counts = module.net.parameter_counts()
    assert counts["reservoir"] == 0 and counts["reservoir_fixed"] == 3 * 16 + 16 * 16 + 16
    assert counts["readout"] == (4 * 3 + 1) * 4
    assert counts["trainable"] == counts["representation"] + counts["readout"]
    coverage = module.optimizer_coverage(module.configure_optimizers())
    assert coverage == {"reservoir": 0, "representation": counts["representation"],
                        "readout": counts["readout"], "total": counts["trainable"]}


@pytest.mark.parametrize("variant", ["broken", "fixed"])
def test_registered_view_computes_the_eval_forward(variant: str) -> None:
    net = _net(variant).eval()
    x = torch.randn(3, 30, 3)
    torch.testing.assert_close(ReprGradflowClassifier(net).eval()(x), net(x, training=False))


def test_bad_variant_is_rejected() -> None:
    with pytest.raises(ValueError, match=r"variant='medium'.*allowed: \['broken', 'fixed'\]"):
        ReprNetConfig(variant="medium")


# --------------------------------------------------------------------------- training


def _fit(seed: int, variant: str = "fixed", epochs: int = 2) -> tuple[dict[str, float], dict[str, torch.Tensor]]:
    L.seed_everything(seed, workers=True, verbose=False)
    x, y = generate_motif_task(TINY)
    dm = ReprGradflowDataModule(x, y, batch_size=8, seed=seed)
    module = ReprGradflowModule(ReprNetConfig(n_classes=4, variant=variant, reservoir_size=16, conv_channels=4))
    trainer = L.Trainer(max_epochs=epochs, logger=False, enable_checkpointing=False, enable_progress_bar=False,
                        enable_model_summary=False, deterministic=True, accelerator="cpu", devices=1)
    trainer.fit(module, datamodule=dm)
    metrics = {k: float(v) for k, v in trainer.callback_metrics.items()}
    return metrics, {k: v.clone() for k, v in module.state_dict().items()}


def test_same_seed_same_metrics_and_weights() -> None:
    metrics_a, state_a = _fit(seed=5)
    metrics_b, state_b = _fit(seed=5)
    assert metrics_a == metrics_b
    assert all(torch.equal(state_a[k], state_b[k]) for k in state_a)
    assert metrics_a["repr/param_change"] > 0


def test_broken_fit_leaves_the_representation_untouched() -> None:
    metrics, _ = _fit(seed=5, variant="broken")
    assert metrics["repr/param_change"] == 0.0


# --------------------------------------------------------------------------- the generated task


def test_generator_is_deterministic_for_a_seed() -> None:
    x1, y1 = generate_motif_task(TINY)
    x2, y2 = generate_motif_task(TINY)
    x3, y3 = generate_motif_task(MotifTaskConfig(**{**TINY.to_dict(), "seed": 4}))
    assert np.array_equal(x1, x2) and np.array_equal(y1, y2)
    assert not np.array_equal(x1, x3)
    assert x1.shape == (24, 40, 3) and x1.dtype == np.float32 and y1.dtype == np.int64
    assert np.bincount(y1).tolist() == [6, 6, 6, 6]


def test_generator_classes_differ_by_their_motif() -> None:
    # Without noise or stretch, every sample is its class motif, scaled, at a random place.
    config = MotifTaskConfig(n_samples=12, n_classes=3, seq_len=40, motif_len=8, noise_std=0.0, stretch=0.0)
    x, y = generate_motif_task(config)

    def shape_of(sample: np.ndarray) -> np.ndarray:
        segment = sample[np.any(sample != 0, axis=1)]
        assert segment.shape == (8, 3)
        return segment / np.linalg.norm(segment)

    shapes = [shape_of(s) for s in x]
    starts = {int(np.flatnonzero(np.any(s != 0, axis=1))[0]) for s in x}
    assert len(starts) > 1  # the motif moves
    for i in range(len(x)):
        for j in range(len(x)):
            same = np.allclose(shapes[i], shapes[j], atol=1e-5)
            assert same == (y[i] == y[j])


@pytest.mark.parametrize("field, value, match", [
    ("n_samples", 0, r"n_samples=0 is out of range"),
    ("n_classes", 1, r"n_classes=1 is out of range"),
    ("motif_len", 40, r"motif_len=40 is too long for seq_len=40"),
    ("noise_ar", 1.0, r"noise_ar=1.0 is out of range"),
    ("stretch", 0.7, r"stretch=0.7 is out of range"),
])
def test_task_config_rejects_bad_values(field: str, value: object, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        MotifTaskConfig(**{**TINY.to_dict(), field: value})


def test_stratified_split_is_disjoint_complete_and_seeded() -> None:
    y = np.repeat(np.arange(10), 8)
    train, val, test = stratified_split(y, seed=1)
    assert len(test) == 12 and len(val) == 12 and len(train) == 56
    assert len(np.intersect1d(train, val)) == len(np.intersect1d(train, test)) == len(np.intersect1d(val, test)) == 0
    assert sorted(np.concatenate([train, val, test])) == list(range(80))
    assert set(y[train]) == set(range(10))
    again = stratified_split(y, seed=1)
    assert all(np.array_equal(a, b) for a, b in zip((train, val, test), again))
    assert not np.array_equal(test, stratified_split(y, seed=2)[2])


def test_stratified_split_rejects_too_few_samples() -> None:
    with pytest.raises(ValueError, match="too few to split"):
        stratified_split(np.array([0, 1]), seed=0)


# --------------------------------------------------------------------------- the cache


def test_motif_task_is_cached_by_its_config(tmp_path: Path) -> None:
    x, y = motif_task_arrays(TINY, str(tmp_path))
    expected = generate_motif_task(TINY)
    assert np.array_equal(x, expected[0]) and np.array_equal(y, expected[1])
    assert cache_path(CACHE_NAME, TINY.to_dict(), tmp_path).is_file()
    again = motif_task_arrays(TINY, str(tmp_path))
    assert np.array_equal(again[0], x) and np.array_equal(again[1], y)


def test_a_cached_motif_task_of_the_wrong_shape_is_regenerated(tmp_path: Path) -> None:
    x, y = generate_motif_task(TINY)
    # A valid entry under the task's key, but its arrays do not fit the task.
    cached_arrays(CACHE_NAME, TINY.to_dict(), lambda: {"X": x[:, :10], "y": y}, cache_dir=tmp_path)
    with pytest.warns(RuntimeWarning, match="do not fit the task.*regenerating"):
        x, _ = motif_task_arrays(TINY, str(tmp_path))
    assert x.shape == (TINY.n_samples, TINY.seq_len, TINY.n_channels)


# --------------------------------------------------------------------------- the user's data


def test_npz_loader_reads_a_valid_file(tmp_path: Path) -> None:
    path = tmp_path / "d.npz"
    x = np.random.default_rng(0).normal(size=(20, 15, 2))
    np.savez(path, X=x, y=np.arange(20) % 5)
    loaded_x, loaded_y = load_npz(path, n_classes=5)
    assert loaded_x.dtype == np.float32 and loaded_y.dtype == np.int64
    np.testing.assert_allclose(loaded_x, x, rtol=1e-6)
    dm = ReprGradflowDataModule(loaded_x, loaded_y, batch_size=4)
    assert (dm.seq_len, dm.n_channels) == (15, 2)
    assert len(dm.train_idx) + len(dm.val_idx) + len(dm.test_idx) == 20


def _write(tmp_path: Path, name: str, **arrays) -> Path:
    path = tmp_path / name
    np.savez(path, **arrays)
    return path


X_OK = np.zeros((6, 5, 2), dtype=np.float32)
Y_OK = np.arange(6) % 3


@pytest.mark.parametrize("make, match", [
    (lambda d: d / "missing.npz", "no such file"),
    (lambda d: (d / "garbage.npz").write_bytes(b"\x00garbage") and d / "garbage.npz", "unreadable"),
    (lambda d: np.save(d / "single.npy", X_OK) or d / "single.npy", "single .npy array"),
    (lambda d: _write(d, "nokey.npz", X=X_OK), r"missing \['y'\]"),
    (lambda d: _write(d, "flat.npz", X=np.zeros((6, 5)), y=Y_OK), r"X has dtype float64 and shape \(6, 5\)"),
    (lambda d: _write(d, "intx.npz", X=np.zeros((6, 5, 2), dtype=np.int32), y=Y_OK), "X has dtype int32"),
    (lambda d: _write(d, "floaty.npz", X=X_OK, y=Y_OK.astype(float)), "y has dtype float64"),
    (lambda d: _write(d, "short.npz", X=X_OK, y=Y_OK[:4]), "N must match"),
    (lambda d: _write(d, "nan.npz", X=np.full((6, 5, 2), np.nan), y=Y_OK), "NaN or Inf"),
    (lambda d: _write(d, "labels.npz", X=X_OK, y=Y_OK + 5), r"labels range over \[5, 7\], allowed \[0, 4\)"),
    (lambda d: _write(d, "objects.npz", X=np.array([None] * 6, dtype=object), y=Y_OK), "unreadable"),
])
def test_npz_loader_errors_are_one_line_naming_the_path(tmp_path: Path, make, match: str) -> None:
    path = make(tmp_path)
    with pytest.raises(DataFileError, match=match) as info:
        load_npz(path, n_classes=4)
    message = str(info.value)
    assert "\n" not in message
    assert message.startswith(f"data_path={str(path)!r}")
    assert "expected an .npz file with arrays X" in message
    assert isinstance(info.value, ValueError)


def test_npz_loader_reports_a_damaged_archive(tmp_path: Path) -> None:
    path = _write(tmp_path, "ok.npz", X=X_OK, y=Y_OK)
    data = bytearray(path.read_bytes())
    data[len(data) // 2: len(data) // 2 + 40] = b"\xff" * 40
    path.write_bytes(bytes(data))
    with pytest.raises(DataFileError, match="unreadable|X has|y has"):
        load_npz(path)
