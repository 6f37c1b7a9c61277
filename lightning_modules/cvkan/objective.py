"""The loss and metrics of a batch: pure functions of the network and the batch."""

from __future__ import annotations

import torch
from torch import nn

__all__ = ["loss_and_metrics"]


def loss_and_metrics(net: nn.Module, batch: tuple[torch.Tensor, torch.Tensor], task: str,
                     trace: list[torch.Tensor] | None = None) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    """`(loss, metrics)` of one batch `(x, y)`.

    classify: cross-entropy; metrics `acc`. forecast: mean squared error, `y` shaped like the
    output (B, horizon, n_targets) or (B, horizon); metrics `mse`.

    Args:
        net: a `CVKANNet`.
        batch: inputs (B, T, F) and targets.
        task: "classify" or "forecast".
        trace: passed to the network's forward (receives each block's tokens).
    """
    x, y = batch
    out = net(x, trace)
    if task == "classify":
        loss = nn.functional.cross_entropy(out.float(), y)
        return loss, {"acc": (out.argmax(dim=-1) == y).float().mean()}
    loss = nn.functional.mse_loss(out.float(), y.reshape(out.shape).float())
    return loss, {"mse": loss.detach()}
