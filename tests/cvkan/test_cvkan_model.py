"""Document 003's polarizing network: shapes, dtypes, the normalization mechanism, stacks,
learning, determinism and the precision modes. Tiny sizes; CPU only."""

from __future__ import annotations

import lightning as L
import pytest
import torch

from lightning_modules.cvkan import (
    AGGREGATIONS,
    ComplexLayerNorm,
    CVKANConfig,
    CVKANModule,
    CVKANNet,
    HierarchicalStack,
    PolarizingBlock,
    RealNet,
    level_sizes,
    loss_and_metrics,
    magnitude_cv,
    n_params,
    trainer_precision,
)

SEQ = 16


def signal_noise(n: int, seed: int, seq_len: int = SEQ) -> tuple[torch.Tensor, torch.Tensor]:
    """Balanced signal/noise sequences (n, seq_len, 2): class 1 carries a phase-coherent burst
    (cos, sin of a fixed frequency, amplitude 2) on 3 random tokens of unit Gaussian noise."""
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(n, seq_len, 2, generator=g)
    y = torch.arange(n) % 2
    for i in torch.nonzero(y).flatten():
        pos = torch.randperm(seq_len, generator=g)[:3]
        x[i, pos, 0] += 2.0 * torch.cos(0.7 * pos)
        x[i, pos, 1] += 2.0 * torch.sin(0.7 * pos)
    return x, y


def tiny(**kw) -> CVKANConfig:
    base = dict(n_features=2, seq_len=SEQ, d=8, hidden=16, n_layers=2, lr=3e-3)
    return CVKANConfig(**{**base, **kw})


def train_steps(net: torch.nn.Module, cfg: CVKANConfig, steps: int, batch=None) -> list[float]:
    batch = batch or signal_noise(64, seed=1)
    opt = torch.optim.Adam(net.parameters(), lr=cfg.lr)
    losses = []
    for _ in range(steps):
        loss, _ = loss_and_metrics(net, batch, cfg.task)
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(loss.item())
    return losses


def dtypes_by_module(net: torch.nn.Module, x: torch.Tensor) -> dict[str, torch.dtype]:
    """Output dtype of every module with a tensor output, from forward hooks."""
    seen: dict[str, torch.dtype] = {}

    def record(name: str, output: object) -> None:  # a hook that returns None keeps the output
        if isinstance(output, torch.Tensor):
            seen.setdefault(name, output.dtype)

    handles = [m.register_forward_hook(lambda m, i, o, n=n: record(n, o))
               for n, m in net.named_modules()]
    net(x)
    for h in handles:
        h.remove()
    return seen


# shapes and dtypes -----------------------------------------------------------------------------

@pytest.mark.parametrize("stack", ["flat", "hierarchical"])
def test_complex64_inside_real_logits_out(stack):
    net = CVKANNet(tiny(stack=stack, n_classes=3))
    trace: list[torch.Tensor] = []
    logits = net(signal_noise(4, 0)[0], trace)
    assert logits.shape == (4, 3) and logits.dtype == torch.float32
    assert net.embed(signal_noise(4, 0)[0]).dtype == torch.complex64
    assert trace and all(z.dtype == torch.complex64 for z in trace)
    assert trace[0].shape == (4, SEQ, 8)


@pytest.mark.parametrize("aggregation", AGGREGATIONS)
@pytest.mark.parametrize("pooling", AGGREGATIONS)
def test_each_aggregation_and_pooling_runs_and_backpropagates(aggregation, pooling):
    net = CVKANNet(tiny(aggregation=aggregation, pooling=pooling, n_layers=1))
    loss, metrics = loss_and_metrics(net, signal_noise(6, 0), "classify")
    loss.backward()
    assert torch.isfinite(loss) and 0.0 <= metrics["acc"] <= 1.0
    assert all(p.grad is not None and torch.isfinite(p.grad).all() for p in net.parameters())
    has_scorer = [aggregation == "attention", pooling == "attention"]
    assert sum(1 for n, _ in net.named_parameters() if ".score." in n) == 2 * sum(has_scorer)


def test_magnitude_aggregation_weights_by_magnitude():
    block = PolarizingBlock(2, 4, aggregation="magnitude")
    z = torch.tensor([[[1 + 0j, 1j], [3 + 0j, 3j]]], dtype=torch.complex64)  # (1, 2 tokens, 2)
    context = block.aggregate(z)
    # weights |z| / sum |z| = 1/4, 3/4 per feature: (1*1 + 3*3) / 4 = 2.5
    torch.testing.assert_close(context, torch.tensor([[2.5 + 0j, 2.5j]], dtype=torch.complex64))


@pytest.mark.parametrize("output, shape", [("pooled", (5, 3, 2)), ("per_token", (5, 3, 2))])
def test_forecast_head_shapes(output, shape):
    net = CVKANNet(tiny(task="forecast", horizon=3, n_targets=2, forecast_output=output))
    x = signal_noise(5, 0)[0]
    y = net(x)
    assert y.shape == shape and y.dtype == torch.float32
    loss, metrics = loss_and_metrics(net, (x, torch.zeros(shape)), "forecast")
    assert torch.isfinite(loss) and "mse" in metrics


# the normalization mechanism the note reports ----------------------------------------------------

def polarized_tokens() -> torch.Tensor:
    """(4, 16, 8) complex tokens whose magnitudes differ strongly between tokens."""
    g = torch.Generator().manual_seed(0)
    z = torch.randn(4, SEQ, 8, dtype=torch.complex64, generator=g)
    return z * torch.logspace(-1, 1, SEQ).reshape(1, SEQ, 1)


@pytest.mark.parametrize("norm_type", ["layer", "rms"])
def test_magnitude_norm_erases_polarization_and_none_keeps_it(norm_type):
    z = polarized_tokens()
    torch.manual_seed(0)
    normed = PolarizingBlock(8, 16, norm_type=norm_type)(z)
    torch.manual_seed(0)
    plain = PolarizingBlock(8, 16, norm_type="none")(z)
    assert magnitude_cv(z) > 0.5
    assert magnitude_cv(plain) > 0.3
    assert magnitude_cv(normed) < 0.02


def test_complex_layer_norm_keeps_phases():
    z = polarized_tokens()
    out = ComplexLayerNorm(8)(z)
    same_or_flipped = torch.cos(torch.angle(out) - torch.angle(z)).abs()
    torch.testing.assert_close(same_or_flipped, torch.ones_like(same_or_flipped), atol=1e-4, rtol=0)


# hierarchical stack -------------------------------------------------------------------------------

@pytest.mark.parametrize("group, sizes", [(2, [16, 8, 4, 2]), (4, [16, 4])])
def test_hierarchical_levels_for_seq_len_16(group, sizes):
    assert level_sizes(SEQ, group) == sizes
    net = CVKANNet(tiny(stack="hierarchical", group_size=group))
    trace: list[torch.Tensor] = []
    net(signal_noise(3, 0)[0], trace)
    assert [z.shape[1] for z in trace] == sizes


def test_hierarchical_pads_a_partial_group_and_rejects_bad_group_size():
    assert level_sizes(10, 4) == [10, 3]
    stack = HierarchicalStack(10, 4, lambda: PolarizingBlock(4, 8))
    assert stack(torch.randn(2, 10, 4, dtype=torch.complex64)).shape == (2, 1, 4)
    with pytest.raises(ValueError, match="group_size=1"):
        level_sizes(16, 1)


def test_top_down_returns_per_token_outputs():
    stack = HierarchicalStack(SEQ, 4, lambda: PolarizingBlock(4, 8), top_down=True)
    assert stack(torch.randn(2, SEQ, 4, dtype=torch.complex64)).shape == (2, SEQ, 4)
    with pytest.raises(ValueError, match="top_down=True"):
        tiny(stack="hierarchical", task="forecast", forecast_output="per_token")


def test_shared_weights_have_fewer_parameters_than_per_level():
    shared = CVKANNet(tiny(stack="hierarchical", group_size=2)).param_counts()
    per_level = CVKANNet(tiny(stack="hierarchical", group_size=2, share_weights=False)).param_counts()
    capacity = CVKANNet(tiny(stack="hierarchical", group_size=2, share_weights=False,
                             level_capacity=10)).param_counts()
    block = n_params(PolarizingBlock(8, 16))
    assert shared["stack"] == block
    assert per_level["stack"] == 4 * block  # 4 levels for 16 tokens in groups of 2
    assert capacity["stack"] == 10 * block
    assert shared["total"] < per_level["total"] < capacity["total"]
    with pytest.raises(ValueError, match="level_capacity=2"):
        CVKANNet(tiny(stack="hierarchical", share_weights=False, level_capacity=2))


# learning and determinism -------------------------------------------------------------------------

def test_same_seed_gives_the_same_losses():
    runs = []
    for _ in range(2):
        torch.manual_seed(7)
        net = CVKANNet(tiny(aggregation="attention"))
        runs.append(train_steps(net, net.config, 3))
    assert runs[0] == runs[1]


@pytest.mark.parametrize("kw", [dict(stack="flat"), dict(stack="hierarchical", group_size=4)])
def test_loss_falls_on_signal_noise(kw):
    torch.manual_seed(0)
    cfg = tiny(lr=1e-2, **kw)
    losses = train_steps(CVKANNet(cfg), cfg, 30)
    assert losses[-1] < 0.5 * losses[0]


# config validation --------------------------------------------------------------------------------

@pytest.mark.parametrize("kw, match", [
    (dict(aggregation="max"), "aggregation='max'"),
    (dict(pooling="sum"), "pooling='sum'"),
    (dict(norm_type="batch"), "norm_type='batch'"),
    (dict(precision_mode="fp8"), "precision_mode='fp8'"),
    (dict(d=0), "d=0"),
])
def test_config_rejects_bad_values(kw, match):
    with pytest.raises(ValueError, match=match):
        tiny(**kw)


# Lightning and precision --------------------------------------------------------------------------

def fit(cfg: CVKANConfig, steps: int, **trainer_kw) -> tuple[L.Trainer, CVKANModule]:
    x, y = signal_noise(32, seed=2)
    loader = torch.utils.data.DataLoader(torch.utils.data.TensorDataset(x, y), batch_size=16)
    trainer = L.Trainer(accelerator="cpu", max_steps=steps, logger=False, enable_checkpointing=False,
                        enable_progress_bar=False, enable_model_summary=False,
                        num_sanity_val_steps=0, **trainer_kw)
    module = CVKANModule(cfg)
    trainer.fit(module, loader, loader)
    return trainer, module


def test_module_logs_loss_accuracy_and_polarization_per_block():
    trainer, _ = fit(tiny(n_layers=3), 2)
    logged = trainer.callback_metrics
    assert {"train/loss", "val/acc", "val/loss"} <= set(logged)
    cvs = [logged[f"polar/block{i}/magnitude_cv"] for i in range(3)]
    assert all(torch.isfinite(v) and v > 0 for v in cvs)


def test_fp16_runs_under_autocast_with_a_grad_scaler():
    cfg = tiny(precision_mode="fp16")
    x = signal_noise(4, 0)[0]
    seen: list[torch.dtype] = []

    class Probe(L.Callback):
        def on_train_batch_start(self, trainer, module, batch, batch_idx):
            self.h = module.net.stack.blocks[0].magnitude_net.net[0].register_forward_hook(
                lambda m, i, o: seen.append(o.dtype))

        def on_train_batch_end(self, trainer, module, outputs, batch, batch_idx):
            self.h.remove()

    trainer, module = fit(cfg, 1, callbacks=[Probe()], **trainer_precision("fp16"))
    assert seen == [torch.float16]
    scaler = trainer.precision_plugin.scaler
    assert isinstance(scaler, torch.amp.GradScaler) and scaler.get_scale() > 0
    assert module.net(x).dtype == torch.float32  # outside autocast, plain fp32


def test_fp16_mode_refuses_a_trainer_without_fp16():
    with pytest.raises(ValueError, match="precision_mode='fp16' needs a Trainer"):
        fit(tiny(precision_mode="fp16"), 1, precision="bf16-mixed")


def test_bf16_real_only_keeps_complex_tensors_complex64():
    net = CVKANNet(tiny(precision_mode="bf16_real_only", aggregation="attention",
                        pooling="attention", norm_type="layer"))
    seen = dtypes_by_module(net, signal_noise(4, 0)[0])
    complex_dtypes = {seen[n] for n, m in net.named_modules() if isinstance(m, PolarizingBlock)}
    assert complex_dtypes == {torch.complex64}
    assert seen["stack.blocks.0.norm"] == torch.complex64
    inner = {seen[n] for n, m in net.named_modules()
             if isinstance(m, torch.nn.Linear)}
    real_outputs = {seen[n] for n, m in net.named_modules() if isinstance(m, RealNet)}
    assert inner == {torch.bfloat16} and real_outputs == {torch.float32}
    assert seen[""] == torch.float32
