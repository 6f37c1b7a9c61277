"""Replica sync for torch.distributed: one checksum row per parameter, compared across ranks in one
all-reduce per log interval (REPLICAS_DIVERGED)."""

from __future__ import annotations

import math
from datetime import timedelta

import torch
import torch.distributed as dist

from ..analysis import ReplicaCheck
from ..outcome import error_line
from ..session import StepReport
from .checksums import param_checksums

TIMEOUT_S = 120.0  # the longest a check waits for the other ranks before it fails (and stops)


class ReplicaWatch:
    """Compares the parameters of data-parallel replicas, after an optimizer step.

    Active only when torch.distributed is initialized with more than one rank; elsewhere `check`
    returns an empty report and costs nothing. Each check computes, on the parameters' device,
    two checksums per parameter (`param_checksums`: its L2 norm and its sum / sqrt(numel), in
    float64 so that rounding cannot tell identical replicas apart), copies them to the host once (2 x n_params + 1 numbers, with the rank's step count) and all-reduces
    `[c, -c]` with MAX: the maximum and minimum of every checksum over the ranks, in one
    collective of 2 x (2 x n_params + 1) float64 values.

    The check is a collective: every rank must create the watch (after `init_process_group`) and
    call `check` at the same steps. The callers check at log steps counted in optimizer steps,
    which DDP keeps equal across ranks (each step's backward synchronises them). The collective
    runs in its own gloo group, created here (collectively), so it never interleaves with the
    training's own collectives, and with its own timeout: a rank that never arrives makes the
    check fail after `timeout_s` instead of hanging training; a failed watch stops checking.

    Sharded parameters are not replicas: the watch stays off when `model` (or a parameter) is
    sharded by FSDP (a `FullyShardedDataParallel` module, `fully_shard`'s DTensors) or DeepSpeed.

    Args:
        named_params: (name, parameter) pairs in model order, e.g. those the optimizer holds.
        model: the module being trained, as wrapped (DDP, FSDP, ...), to tell sharding apart.
        timeout_s: the longest one check waits for the other ranks.

    Raises:
        ValueError: `timeout_s` is not a positive number.

    Example:
        >>> replicas = ReplicaWatch(list(ddp_model.module.named_parameters()))
        >>> report = replicas.check(step)  # on every rank, after optimizer.step()
    """

    def __init__(self, named_params: list[tuple[str, torch.nn.Parameter]], *,
                 model: torch.nn.Module | None = None, timeout_s: float = TIMEOUT_S) -> None:
        if isinstance(timeout_s, bool) or not isinstance(timeout_s, (int, float)) \
                or not math.isfinite(timeout_s) or timeout_s <= 0:
            raise ValueError(f"timeout_s={timeout_s!r} is not allowed; allowed: a positive number of seconds")
        self.names = tuple(n for n, _ in named_params)
        self.params = [p for _, p in named_params]
        self.world_size = _world_size()
        self.active = self.world_size > 1 and bool(self.params) and not _sharded(model, self.params)
        self._group, self._failure = None, ""
        if self.active:
            try:
                self._group = dist.new_group(backend="gloo", timeout=timedelta(seconds=float(timeout_s)))
            except Exception as error:  # noqa: BLE001 - said by the first check (DIAGNOSTICS_FAILED)
                self._failure = f"could not create its process group: {error_line(error)}"

    def check(self, step: int) -> StepReport:
        """Every rank's parameters compared after optimizer step `step` (a collective).

        Raises:
            RuntimeError: once, when the watch could not start (the adapter's guard records it).
        """
        if self._failure:
            failure, self._failure, self.active = self._failure, "", False
            raise RuntimeError(failure)
        if not self.active:
            return StepReport()
        self.active = False  # a check that fails leaves the group out of step: never call it again
        mine = torch.cat([param_checksums(self.params).flatten(), torch.tensor([float(step)], dtype=torch.float64)])
        both = torch.cat([mine, -mine])
        dist.all_reduce(both, op=dist.ReduceOp.MAX, group=self._group)
        self.active = True
        high, low = both[:mine.numel()].numpy(), -both[mine.numel():].numpy()
        n = len(self.names)
        check = ReplicaCheck(int(step), self.world_size, self.names, high[:-1].reshape(n, 2),
                             low[:-1].reshape(n, 2), (int(low[-1]), int(high[-1])))
        return StepReport([check])


def _sharded(model: torch.nn.Module | None, params: list[torch.nn.Parameter]) -> bool:
    """Whether each rank holds only a part of the parameters: FSDP (a `FlatParameter`, or a
    `FullyShardedDataParallel` module), `fully_shard` / tensor parallel (DTensors), DeepSpeed
    ZeRO-3 (parameters carrying `ds_id`)."""
    if any(hasattr(p, "ds_id") for p in params):
        return True
    try:
        from torch.distributed.fsdp import FlatParameter, FullyShardedDataParallel
        from torch.distributed.tensor import DTensor
    except ImportError:  # a torch without them shards with neither
        return False
    if any(isinstance(p, (FlatParameter, DTensor)) for p in params):
        return True
    return model is not None and any(isinstance(m, FullyShardedDataParallel) for m in model.modules())


def _world_size() -> int:
    """The number of ranks in torch.distributed's default group; 1 when it is not initialized."""
    if not (dist.is_available() and dist.is_initialized()):
        return 1
    return int(dist.get_world_size())

