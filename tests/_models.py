"""Small models and loops shared by the diagnostics tests: healthy ones and planted bugs."""

from __future__ import annotations

import contextlib
from typing import Any, Callable

import lightning.pytorch as pl
import torch
from torch import nn

from mlflow_plugins import L2Normalize


def mlp() -> nn.Module:
    return nn.Sequential(nn.Linear(16, 64), nn.ReLU(), nn.Linear(64, 64), nn.ReLU(), nn.Linear(64, 4))


class SmallCNN(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.features = nn.Sequential(nn.Conv1d(1, 16, 3, padding=1), nn.BatchNorm1d(16), nn.ReLU(),
                                      nn.Conv1d(16, 32, 3, padding=1), nn.ReLU())
        self.head = nn.Linear(32 * 16, 4)

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # x: (B, 16)
        return self.head(self.features(x[:, None, :]).flatten(1))


class SmallLSTM(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.embed = nn.Linear(4, 32)
        self.lstm = nn.LSTM(32, 128, batch_first=True)
        self.head = nn.Linear(128, 4)

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # x: (B, 16) read as 4 steps of 4
        out, _ = self.lstm(self.embed(x.view(x.shape[0], 4, 4)))
        return self.head(out[:, -1])


class TransformerBlock(nn.Module):
    def __init__(self, d: int = 32) -> None:
        super().__init__()
        self.embed = nn.Linear(4, d)
        self.block = nn.TransformerEncoderLayer(d, 4, 64, dropout=0.0, batch_first=True, norm_first=True)
        self.head = nn.Linear(d, 4)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.block(self.embed(x.view(x.shape[0], 4, 4))).mean(1))


HEALTHY: dict[str, Callable[[], nn.Module]] = {
    "mlp": mlp, "cnn": SmallCNN, "lstm": SmallLSTM, "transformer": TransformerBlock}


class NoGradBranch(nn.Module):
    """Document 001's bug: a representation stage run under no_grad while it is optimized."""

    def __init__(self) -> None:
        super().__init__()
        self.representation = nn.Linear(16, 16)
        self.readout = nn.Linear(16, 4)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        with torch.no_grad():
            f = self.representation(x)
        return self.readout(f)


class TinyScale(nn.Module):
    """The first layer's gradient is scaled by 1e-10: vanishing."""

    def __init__(self) -> None:
        super().__init__()
        self.first = nn.Linear(16, 16)
        self.rest = nn.Sequential(nn.Tanh(), nn.Linear(16, 4))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.rest(self.first(x) * 1e-10 + x)


class Fp16Overflow(nn.Module):
    """`big` overflows float16 under autocast (its output exceeds 65504)."""

    def __init__(self) -> None:
        super().__init__()
        self.first = nn.Linear(16, 16)
        self.big = nn.Linear(16, 16)
        self.head = nn.Linear(16, 4)
        with torch.no_grad():
            self.big.weight.fill_(3000.0)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(torch.relu(self.big(torch.relu(self.first(x)) * 50.0)))


class SqrtAtZero(nn.Module):
    """Finite forward, infinite gradient: d sqrt(u)/du at u = 0."""

    def __init__(self) -> None:
        super().__init__()
        self.lin = nn.Linear(16, 4)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.sqrt(torch.relu(self.lin(x)) * 0.0) + self.lin(x)


class NormAfterLargeInput(nn.Module):
    """L2-normalizes features of large and varied magnitude: the gradient through it shrinks by
    ~1/|x| and the magnitude spread is erased (document 000's latent normalization)."""

    def __init__(self) -> None:
        super().__init__()
        self.encoder = nn.Linear(16, 32)
        self.normalize = L2Normalize(dim=-1)
        self.head = nn.Linear(32, 4)
        with torch.no_grad():
            self.encoder.weight.mul_(500.0)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.normalize(self.encoder(x)))


def data(n: int = 64, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(n, 16, generator=g)
    y = (x[:, :4].argmax(1)).long()  # a learnable rule
    return x * torch.linspace(0.2, 3.0, n)[:, None], y


def train_plain(model: nn.Module, steps: int = 20, *, loss_scale: float = 1.0, amp: bool = False,
                amp_dtype: torch.dtype = torch.float16, scaler: Any = None, lr: float = 0.05,
                monitor_kwargs: dict | None = None):
    """A plain PyTorch loop under `watch`; returns the monitor."""
    import mlflow_plugins
    torch.manual_seed(0)
    x, y = data()
    opt = torch.optim.SGD(model.parameters(), lr=lr)
    kwargs = {"log_every": 1, **(monitor_kwargs or {})}
    with mlflow_plugins.watch(model, opt, scaler=scaler, **kwargs) as monitor:
        for _ in range(steps):
            opt.zero_grad()
            with torch.autocast("cpu", dtype=amp_dtype, enabled=amp):
                loss = nn.functional.cross_entropy(model(x).float(), y) * loss_scale
            if scaler is not None:
                scaler.scale(loss).backward()
                scaler.step(opt)
                scaler.update()
            else:
                loss.backward()
                opt.step()
    return monitor


class Wrapped(pl.LightningModule):
    """Any of the models above as a LightningModule, optionally with autocast inside the step."""

    def __init__(self, model: nn.Module, *, loss_scale: float = 1.0, amp: bool = False,
                 lr: float = 0.05) -> None:
        super().__init__()
        self.model, self.loss_scale, self.amp, self.lr = model, loss_scale, amp, lr

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.model(x)

    def training_step(self, batch: Any, batch_idx: int) -> torch.Tensor:
        x, y = batch
        # Only open an autocast region when asked: enabled=False would switch off Lightning's own.
        with torch.autocast("cpu", dtype=torch.float16) if self.amp else contextlib.nullcontext():
            loss = nn.functional.cross_entropy(self(x).float(), y) * self.loss_scale
        self.log("train/loss", loss)
        return loss

    def configure_optimizers(self) -> torch.optim.Optimizer:
        return torch.optim.SGD(self.parameters(), lr=self.lr)


def train_lightning(module: pl.LightningModule, callbacks: list, steps: int = 20, *,
                    logger: Any = False, plugins: Any = None) -> pl.Trainer:
    x, y = data()
    loader = torch.utils.data.DataLoader(torch.utils.data.TensorDataset(x, y), batch_size=64)
    trainer = pl.Trainer(max_steps=steps, accelerator="cpu", devices=1, logger=logger,
                         callbacks=callbacks, enable_checkpointing=False,
                         enable_progress_bar=False, enable_model_summary=False,
                         plugins=plugins, log_every_n_steps=1)
    trainer.fit(module, loader)
    return trainer


def codes(findings: list) -> set[str]:
    return {f.code for f in findings}


def where(findings: list, code: str) -> set[str]:
    return {f.where for f in findings if f.code == code}
