"""The monitor's measurements do not share the fate of the data: every probe computes its result
on the device where the tensor was produced and copies only that small result. A fault that
corrupts host copies of large tensors (a flaky transfer) can then never become a false finding."""

from __future__ import annotations

import contextlib

import torch
from torch import nn

import mlflow_plugins
from _models import data

LARGE = 256  # elements: every tensor of the model below is larger, every probe result smaller


class Net(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.body = nn.Sequential(nn.Linear(16, 64), nn.BatchNorm1d(64), nn.ReLU(), nn.Dropout(0.1),
                                  nn.Linear(64, 64), nn.LayerNorm(64), nn.ReLU())
        self.head = nn.Linear(64, 4)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.body(x))


@contextlib.contextmanager
def corrupted_host_copies():
    """Every copy of a large tensor to the host comes back as NaN; counts them."""
    seen = {"large": 0}
    cpu, numpy, tolist, to = torch.Tensor.cpu, torch.Tensor.numpy, torch.Tensor.tolist, torch.Tensor.to

    def bad(t: torch.Tensor) -> bool:
        if t.numel() >= LARGE:
            seen["large"] += 1
            return True
        return False

    def cpu_(self, *a, **k):
        out = cpu(self, *a, **k)
        return torch.full_like(out, float("nan")) if bad(self) and out.is_floating_point() else out

    def numpy_(self, *a, **k):
        out = numpy(self, *a, **k)
        if bad(self) and out.dtype.kind == "f":
            out = out.copy()
            out[...] = float("nan")
        return out

    def tolist_(self):
        return tolist(torch.full_like(self, float("nan"))) if bad(self) and self.is_floating_point() \
            else tolist(self)

    def to_(self, *a, **k):
        out = to(self, *a, **k)
        moved = out.device != self.device
        return torch.full_like(out, float("nan")) if moved and bad(self) and out.is_floating_point() else out

    torch.Tensor.cpu, torch.Tensor.numpy, torch.Tensor.tolist, torch.Tensor.to = cpu_, numpy_, tolist_, to_
    try:
        yield seen
    finally:
        torch.Tensor.cpu, torch.Tensor.numpy, torch.Tensor.tolist, torch.Tensor.to = cpu, numpy, tolist, to


def test_a_healthy_run_under_corrupted_host_copies_has_no_finding_and_copies_nothing_large():
    torch.manual_seed(0)
    model = Net()
    opt = torch.optim.AdamW(model.parameters(), 1e-3)
    x, y = data(n=64)
    with corrupted_host_copies() as seen:
        with mlflow_plugins.watch(model, opt, log_every=2) as monitor:
            for step in range(8):
                opt.zero_grad()
                with torch.autocast("cpu", dtype=torch.bfloat16, enabled=step % 2 == 0):
                    loss = nn.functional.cross_entropy(model(x).float(), y)
                loss.backward()
                opt.step()
                model.eval()
                with monitor.evaluation(), torch.no_grad():
                    model(x)
                model.train()
    assert seen["large"] == 0  # no probe moved a user tensor to the host
    assert [f.code for f in monitor.findings if f.severity.value != "info"] == []
