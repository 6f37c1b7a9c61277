"""The parameters an optimizer holds, named by their path in the model (torch helpers every
adapter shares: plain PyTorch and Lightning)."""

from __future__ import annotations

import torch


def named_optimizer_params(model: torch.nn.Module,
                           optimizer: torch.optim.Optimizer) -> list[tuple[str, torch.nn.Parameter]]:
    """The parameters the optimizer holds, named by their path in `model` where they have one."""
    names = {id(p): n for n, p in model.named_parameters()}
    return [(names.get(id(p), f"param_groups.{g}.{i}"), p)
            for g, group in enumerate(optimizer.param_groups)
            for i, p in enumerate(group["params"])]
