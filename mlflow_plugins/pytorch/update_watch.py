"""Whether optimizer steps change the parameters: ||Δw|| / ||w|| on sampled steps."""

from __future__ import annotations

import math

import numpy as np
import torch

from ..analysis import UpdateSnapshot
from ..session import StepReport
from ..thresholds import Thresholds
from .grad_stats import grad_values


class UpdateWatch:
    """Measures each parameter's update across sampled optimizer steps.

    Before a measured step the watched weights are copied (one fused `_foreach_mul`); after it,
    the norms of the differences, of the weights and of the gradients are taken in one fused pass
    each and moved to the host in one copy. A step that finds a parameter still is followed by
    measured steps until it moves or has been still for `update_stall_steps` (so a learning rate of 0 is
    named within `update_stall_steps` steps, while a healthy run measures once per log interval).

    Model parameters that need a gradient but that the optimizer does not hold are watched too:
    another optimizer may step them (a GAN's discriminator), so for them the weight norm is
    compared between measurements instead.

    Args:
        model: the model; its parameters not held by the optimizer are watched too.
        optimizer: the optimizer whose steps are measured.
        named_params: the (name, parameter) pairs the optimizer holds.
        thresholds: what counts as still (`update_ratio_min`, `vanishing`) and for how long
            (`update_stall_steps`).
        group: names this parameter set in the rules' state.
    """

    def __init__(self, model: torch.nn.Module, optimizer: torch.optim.Optimizer,
                 named_params: list[tuple[str, torch.nn.Parameter]], thresholds: Thresholds,
                 *, group: str = "") -> None:
        held = {id(p) for _, p in named_params}
        unheld = [(n, p) for n, p in model.named_parameters() if p.requires_grad and id(p) not in held]
        named = [*named_params, *unheld]
        self.names = tuple(n for n, _ in named)
        self.params = [p for _, p in named]
        self.optimizer, self.t, self.group = optimizer, thresholds, group
        self.held = np.array([i < len(named_params) for i in range(len(named))], dtype=bool)
        self.numel = np.array([max(p.numel(), 1) for p in self.params], dtype=np.float64)
        model_ids = {id(p) for p in model.parameters() if p.requires_grad}
        self.held_none = bool(model_ids) and not (model_ids & held)
        self._group_of = np.array([g for g, group in enumerate(optimizer.param_groups)
                                   for _ in group["params"]], dtype=np.int64)
        self._measured = [i for i, p in enumerate(self.params) if p.numel() > 0]
        self._held_measured = [i for i in self._measured if self.held[i]]
        self._unheld_measured = [i for i in self._measured if not self.held[i]]
        self._before: list[torch.Tensor] | None = None
        self._unheld_weight = np.full(len(named), np.nan)  # ||w|| at the last measurement
        self._still_from: int | None = None  # the first step of a run of still measurements

    def measuring(self, step: int, sampled: bool) -> bool:
        """Whether this step is measured: a sampled step, or a still parameter is being followed."""
        return sampled or (self._still_from is not None and step - self._still_from <= self.t.update_stall_steps)

    def before_step(self, step: int, sampled: bool) -> None:
        """Copies the weights to measure this step's update (called before the optimizer step)."""
        self._before = None
        if not self.measuring(step, sampled):
            return
        held = self._held_measured
        self._before = torch._foreach_mul([self.params[i].detach() for i in held], 1.0) if held else []

    def after_step(self, step: int) -> StepReport:
        """The update of a measured step (called after the optimizer step)."""
        if self._before is None:
            return StepReport()
        before, self._before = self._before, None
        idx, held, unheld = self._measured, self._held_measured, self._unheld_measured
        weights = [self.params[i].detach() for i in idx]
        grads = [grad_values(self.params[i].grad) if self.params[i].grad is not None
                 else torch.zeros((), device=self.params[i].device) for i in idx]
        after = [self.params[i].detach() for i in held]
        rows = [_norms(weights), _norms(grads)]
        rows.append(_norms(torch._foreach_sub(after, before)) if held else torch.zeros(0))
        host = [r.double().cpu().numpy() for r in _one_copy(rows)]
        n = len(self.names)
        weight, grad, update = np.full(n, np.nan), np.zeros(n), np.full(n, np.nan)
        weight[idx], grad[idx] = host[0], host[1]
        update[held] = host[2]
        update[unheld] = np.abs(weight[unheld] - self._unheld_weight[unheld])
        self._unheld_weight[unheld] = weight[unheld]
        snap = UpdateSnapshot(step, self.names, update, weight, grad, self.numel, self.held,
                              self._lrs(), self.held_none, self.group)
        self._follow(step, snap)
        return StepReport([snap], _metrics(snap, self.group))

    def _follow(self, step: int, snap: UpdateSnapshot) -> None:
        if not snap.still(self.t)[0].any():
            self._still_from = None
        elif self._still_from is None:
            self._still_from = step

    def _lrs(self) -> np.ndarray:
        """Each parameter's learning rate now (a float the optimizer keeps; NaN if not a number,
        and for parameters it does not hold)."""
        lrs = np.full(len(self.names), np.nan)
        lrs[:len(self._group_of)] = np.array([_number(g.get("lr")) for g in self.optimizer.param_groups]
                                             )[self._group_of]
        return lrs


def _number(lr: object) -> float:
    """A learning rate as a float: a number, or a one-element CPU tensor (read without a sync)."""
    if isinstance(lr, (int, float)):
        return float(lr)
    if isinstance(lr, torch.Tensor) and lr.numel() == 1 and lr.device.type == "cpu":
        return float(lr)
    return math.nan


def _norms(tensors: list[torch.Tensor]) -> torch.Tensor:
    """Per-tensor L2 norms in one fused launch per dtype, as one float64-able vector."""
    if not tensors:
        return torch.zeros(0)
    device = tensors[0].device
    return torch.stack([n.to(device, torch.float32) for n in torch._foreach_norm(tensors, 2.0)])


def _one_copy(rows: list[torch.Tensor]) -> list[torch.Tensor]:
    """The rows on the host, moved in one copy (they may be of different lengths)."""
    sizes = [r.numel() for r in rows]
    device = next((r.device for r in rows if r.numel()), torch.device("cpu"))
    flat = torch.cat([r.to(device) for r in rows]).cpu() if sum(sizes) else torch.zeros(0)
    return list(torch.split(flat, sizes))


def _metrics(snap: UpdateSnapshot, group: str) -> dict[str, float]:
    """`update_ratio/total`: ||Δw|| / ||w|| over every held parameter (the step size actually taken)."""
    held = snap.held & np.isfinite(snap.update)
    if not held.any():
        return {}
    total = math.sqrt(float(np.sum(np.square(snap.update[held]))))
    weight = math.sqrt(float(np.sum(np.square(snap.weight[held]))))
    suffix = f"/{group}" if group else ""
    return {f"update_ratio/total{suffix}": total / weight if weight > 0 else total}
