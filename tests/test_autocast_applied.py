"""AUTOCAST_NOT_APPLIED: inside autocast, matrix-multiplying modules that still ran wide, named
(information: the mixed-precision speed-up the user wrote the region for is absent there)."""

from __future__ import annotations

import torch
from torch import nn

import mlflow_plugins
from _models import Wrapped, codes, data, mlp
from mlflow_plugins import AmpNanCallback, Severity


class GruClassifier(nn.Module):
    """A recurrent encoder: on CPU, autocast has no bfloat16 kernel for GRU."""

    def __init__(self) -> None:
        super().__init__()
        self.gru = nn.GRU(4, 16, batch_first=True)
        self.head = nn.Linear(16, 4)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out, _ = self.gru(x.view(len(x), 4, 4))
        return self.head(out[:, -1])


class AttentionInFloat32(nn.Module):
    """The scores kept in float32 on purpose with autocast(enabled=False) around a projection."""

    def __init__(self) -> None:
        super().__init__()
        self.proj = nn.Linear(16, 16)
        self.head = nn.Linear(16, 4)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        with torch.autocast("cpu", enabled=False):
            h = self.proj(x.float())
        return self.head(torch.relu(h))


def _train(model: nn.Module, *, autocast: bool = True, dtype=torch.bfloat16, steps: int = 6):
    torch.manual_seed(0)
    x, y = data()
    x = x.to(next(model.parameters()).dtype)
    opt = torch.optim.SGD(model.parameters(), lr=0.01)
    with mlflow_plugins.watch(model, opt, log_every=2) as monitor:
        for _ in range(steps):
            opt.zero_grad()
            with torch.autocast("cpu", dtype=dtype, enabled=autocast):
                loss = nn.functional.cross_entropy(model(x).float(), y)
            loss.backward()
            opt.step()
    return monitor


def _autocast(monitor) -> list:
    return [f for f in monitor.findings if f.code == "AUTOCAST_NOT_APPLIED"]


def test_a_gru_under_cpu_autocast_is_named_as_running_in_float32():
    (found,) = _autocast(_train(GruClassifier()))
    assert found.severity is Severity.INFO and found.evidence["modules"] == "gru"
    assert (found.evidence["dtype"], found.evidence["requested"]) == ("float32", "bfloat16")
    assert (found.evidence["n_modules"], found.evidence["n_checked"]) == (1, 2)


def test_a_float64_model_under_autocast_is_named():
    (found,) = _autocast(_train(mlp().double()))
    assert found.evidence["dtype"] == "float64" and found.evidence["modules"] == "0, 2, 4"


def test_a_region_disabled_inside_the_model_is_named_with_the_module():
    (found,) = _autocast(_train(AttentionInFloat32()))
    assert found.evidence["modules"] == "proj"


def test_linear_layers_under_autocast_and_runs_without_autocast_say_nothing():
    assert not _autocast(_train(mlp()))
    assert not _autocast(_train(mlp(), dtype=torch.float16))
    assert not _autocast(_train(GruClassifier(), autocast=False))


def test_modules_are_hooked_only_during_a_sampled_forward():
    model = mlp()
    monitor = mlflow_plugins.watch(model, torch.optim.SGD(model.parameters(), lr=0.01), log_every=2)
    try:
        x, y = data()
        nn.functional.cross_entropy(model(x), y).backward()
        assert all(not m._forward_hooks for m in list(model.modules())[1:])  # removed after the forward
    finally:
        monitor.close()


class _Gru(Wrapped):
    def training_step(self, batch, batch_idx):
        x, y = batch
        return nn.functional.cross_entropy(self(x).float(), y)


def test_lightning_bf16_mixed_names_the_gru_and_not_the_linear_head():
    import lightning.pytorch as pl

    cb = AmpNanCallback(log_every=2)
    x, y = data()
    loader = torch.utils.data.DataLoader(torch.utils.data.TensorDataset(x, y), batch_size=32)
    for model, expected in ((GruClassifier(), {"model.gru"}), (mlp(), set())):
        cb = AmpNanCallback(log_every=2)
        trainer = pl.Trainer(max_steps=4, accelerator="cpu", devices=1, logger=False, callbacks=[cb],
                             precision="bf16-mixed", enable_checkpointing=False,
                             enable_progress_bar=False, enable_model_summary=False)
        trainer.fit(_Gru(model), loader)
        named = {m for f in cb.findings if f.code == "AUTOCAST_NOT_APPLIED" for m in f.evidence["modules"].split(", ")}
        assert named == expected, cb.findings
    assert "NONFINITE" not in codes(cb.findings)
