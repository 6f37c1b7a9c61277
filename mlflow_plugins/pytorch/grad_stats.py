"""Gradient statistics of a set of torch parameters in one fused device reduction."""

from __future__ import annotations

import math
from collections import defaultdict

import numpy as np
import torch

from ..analysis import GradSnapshot

# Where a float32 norm may not measure a finite gradient: below _TINY * sqrt(numel) its squares
# may be subnormal or flushed to 0; from _HUGE / sqrt(numel) their sum may overflow (float32's
# max is ~2**128). Such norms are measured again, on copies scaled by a power of two.
_TINY, _HUGE = 2.0 ** -63, 2.0 ** 63


class GradStats:
    """Reads the gradients of named parameters without a host sync per parameter.

    `missing()` is free (a Python check of `.grad is None`); `norms()` is one `_foreach_norm`
    launch per device and dtype, left on the device; `snapshot()` adds the L1 pass and moves
    everything to the host in one copy, where a non-finite norm names its parameter without
    another look. Complex gradients are measured by |z|.

    A float32 sum of squares overflows for a finite gradient of ~1e19 and flushes to 0 below
    ~1e-23. Here a norm is still 0 only for an all-zero gradient, NaN/Inf only for a NaN/Inf
    gradient and finite otherwise, and `snapshot` measures out-of-range gradients exactly (on
    copies scaled by a power of two, in one batch: the rare path). On an accelerator, `norms()`
    also takes the max |grad| (one more fused launch) to keep its device values so without a
    sync; on CPU, where reading a value costs no sync, it checks its norms and measures the
    out-of-range ones at once.

    Args:
        named_params: (name, parameter) pairs, e.g. those the optimizer holds.
    """

    def __init__(self, named_params: list[tuple[str, torch.nn.Parameter]]) -> None:
        self.names = tuple(n for n, _ in named_params)
        self.params = [p for _, p in named_params]
        self.numel = np.array([max(p.numel(), 1) for p in self.params], dtype=np.float64)
        self._nonempty = np.array([p.numel() > 0 for p in self.params], dtype=bool)
        # norms outside [low, high) may be float32 accidents (see `_suspects`)
        self._low, self._high = _TINY * np.sqrt(self.numel), _HUGE * np.sqrt(self.numel)

    def missing(self) -> np.ndarray:
        return np.array([p.grad is None for p in self.params], dtype=bool)

    def frozen(self) -> np.ndarray | None:
        """True where a parameter is frozen on purpose (requires_grad=False); None if none is.
        Read every step: a schedule may freeze or unfreeze parts as training goes."""
        frozen = np.array([not p.requires_grad for p in self.params], dtype=bool)
        return frozen if frozen.any() else None

    def norms(self, ord: float = 2.0) -> torch.Tensor | None:
        """Per-parameter gradient norms as one device tensor (0 where missing), no host sync.

        Float32, or float64 when a gradient is float64. For `ord` 1 or 2, a finite gradient's
        norm is finite, and 0 only if the gradient is all zero. On an accelerator the norm of
        an out-of-range gradient is its max |grad| there, a lower bound (on CPU: exact, but at
        most float32's max); `snapshot` has the exact value.
        """
        groups = self._groups()
        if not groups:
            return None
        if ord not in (1.0, 2.0):
            return self._reduce((ord,), groups)[0]
        if _host_readable(groups):  # read the norms, measure the suspicious ones now
            norm = self._reduce((ord,), groups)[0]
            todo = self._suspects(norm.numpy(), zeros_known=False)
            if todo.size == 0:
                return norm
            host = norm.numpy().astype(np.float64)
            self._measure(todo, l2=host if ord == 2.0 else None, l1=host if ord == 1.0 else None)
            top = torch.finfo(norm.dtype).max  # beyond float32: saturated here, exact in snapshot
            return torch.from_numpy(np.where(np.isinf(host), host, np.minimum(host, top))
                                    ).to(norm.dtype)
        norm, amax = self._reduce((ord, math.inf), groups)
        lost = torch.isfinite(amax) & (torch.isinf(norm) | (norm < amax))  # NaN stays NaN
        return torch.where(lost, amax, norm)

    def total_norm_ok(self, l2: torch.Tensor | None, limit: float) -> torch.Tensor | None:
        """A device bool: every gradient finite and the total norm at most `limit`.

        `l2` is `norms()`'s, finite for every finite gradient. Its total is taken of `l2 / limit`,
        whose sum of squares can only overflow far above the limit.
        """
        if l2 is None:
            return None
        return torch.isfinite(l2).all() & (torch.linalg.vector_norm(l2 / limit) <= 1.0)

    def snapshot(self, step: int, l2: torch.Tensor | None = None, *,
                 mean_abs: bool = True) -> GradSnapshot:
        """This step's statistics, moved to the host in one copy (`l2`: `norms()`'s, if taken).

        `mean_abs=False` skips the L1 pass (mean |grad| is then NaN): on CPU an L1 reduction
        costs ~3.5x an L2 one, as its kernel is not vectorized like the sum of squares.
        """
        missing = self.missing()
        l2 = self.norms(2.0) if l2 is None else l2
        l1 = self._reduce((1.0,), self._groups()) if mean_abs and l2 is not None else None
        if l2 is None:
            zeros = np.zeros(len(self.names))
            return GradSnapshot(step, self.names, zeros, zeros.copy(), missing, self.numel, frozen=self.frozen())
        rows = torch.stack([l2, l1[0].to(l2.device)]) if l1 is not None else l2[None]
        host = rows.cpu().numpy().astype(np.float64)
        l2_host = host[0]
        l1_host = host[1] if l1 is not None else None
        todo = self._suspects(l2_host, l1_host, zeros_known=True)
        if todo.size:
            self._measure(todo, l2=l2_host, l1=l1_host)
        mean = l1_host / self.numel if l1_host is not None else np.full_like(l2_host, np.nan)
        return GradSnapshot(step, self.names, l2_host, mean, missing, self.numel, frozen=self.frozen())

    def drop_grads(self) -> None:
        """Skip an optimizer step: torch optimizers leave parameters without a gradient alone."""
        for p in self.params:
            p.grad = None

    def _groups(self) -> dict[tuple[torch.device, torch.dtype], list[int]]:
        """Indices of the present, non-empty gradients by (device, dtype)."""
        groups: dict[tuple[torch.device, torch.dtype], list[int]] = defaultdict(list)
        for i, p in enumerate(self.params):
            if p.grad is not None and self._nonempty[i]:  # an empty one has no max |g|: 0
                groups[(p.grad.device, p.grad.dtype)].append(i)
        return groups

    def _reduce(self, ords: tuple[float, ...],
                groups: dict[tuple[torch.device, torch.dtype], list[int]]) -> torch.Tensor | None:
        """Per-parameter norms, one row per `ord` (0 where missing or empty), on one device.

        One `_foreach_norm` launch per `ord` and per group of `_groups()`; half-precision
        gradients accumulate in float32.
        """
        if not groups:
            return None
        wide = any(d in (torch.float64, torch.complex128) for _, d in groups)
        out_dtype = torch.float64 if wide else torch.float32

        def rows(idx: list[int], dtype: torch.dtype) -> torch.Tensor:
            grads = [grad_values(self.params[i].grad) for i in idx]
            acc = torch.float32 if dtype in (torch.float16, torch.bfloat16) else None
            return torch.stack([torch.stack(_max_abs(grads) if o == math.inf else
                                            torch._foreach_norm(grads, o, dtype=acc))
                                for o in ords]).to(out_dtype)

        if len(groups) == 1 and len(next(iter(groups.values()))) == len(self.params):
            return rows(list(range(len(self.params))), next(iter(groups))[1])
        device = next(iter(groups))[0]
        out = torch.zeros(len(ords), len(self.params), dtype=out_dtype, device=device)
        for (_, dtype), idx in groups.items():
            out[:, torch.tensor(idx, device=device)] = rows(idx, dtype).to(device)
        return out

    def _suspects(self, *norms: np.ndarray | None, zeros_known: bool) -> np.ndarray:
        """Indices of present gradients whose L2/L1 norm a float32 reduction may have got wrong:
        Inf (overflow, or an Inf gradient), outside [low, high), or 0 unless `zeros_known`
        (a 0 can be an underflow). NaN is a NaN gradient's and is not suspicious."""
        suspect = np.zeros(len(self.params), dtype=bool)
        for norm in (x for x in norms if x is not None):
            small = norm < self._low
            suspect |= np.isinf(norm) | (norm >= self._high) | (small & (norm > 0) if zeros_known
                                                                  else small)
        if not suspect.any():  # the healthy path: no Python loop over the parameters
            return np.flatnonzero(suspect)
        return np.flatnonzero(suspect & self._nonempty & ~self.missing())

    def _measure(self, todo: np.ndarray, *, l2: np.ndarray | None, l1: np.ndarray | None) -> None:
        """Measures the L2/L1 norms of the gradients `todo` again, in place, exactly.

        Each is scaled by the power of two that brings its max |g| into [0.5, 1) (exact),
        measured, and scaled back on the host in float64: one batch and two host copies for
        them all (the rare path). A NaN/Inf gradient keeps its norm.
        """
        grads = [_at_least_float32(grad_values(self.params[i].grad)) for i in todo]
        device = grads[0].device
        amax = torch.stack([m.to(device) for m in _max_abs(grads)]).cpu().numpy()
        exponent = np.frexp(amax.astype(np.float64))[1]  # amax = m * 2**exponent, 0.5 <= m < 1
        first = -exponent // 2  # 2**-exponent in two factors: each is representable
        scaled = [g * 2.0 ** int(a) * 2.0 ** int(b)
                  for g, a, b in zip(grads, first, -exponent - first)]
        measured = torch.stack([torch.stack([n.to(device) for n in torch._foreach_norm(scaled, o)])
                                for o in (2.0, 1.0)]).cpu().numpy().astype(np.float64)
        finite = np.isfinite(amax)
        for norm, values in ((l2, measured[0]), (l1, measured[1])):
            if norm is not None:
                norm[todo[finite]] = np.ldexp(values, exponent)[finite]


def grad_values(grad: torch.Tensor) -> torch.Tensor:
    """The values a gradient holds, for norms and max |g|: itself, or a sparse gradient's
    (`nn.Embedding(sparse=True)`) coalesced values, whose norms are the sparse tensor's."""
    grad = grad.detach()
    return grad.coalesce().values() if grad.is_sparse else grad


def _host_readable(groups: dict[tuple[torch.device, torch.dtype], list[int]]) -> bool:
    """Whether reading the norms costs no sync: every gradient is on the CPU."""
    return all(device.type == "cpu" for device, _ in groups)


def _max_abs(grads: list[torch.Tensor]) -> list[torch.Tensor]:
    """Max |g| of each gradient (of its real and imaginary parts when complex), NaN if any is.

    One fused `_foreach_norm(..., inf)` launch on accelerators; on CPU, where that kernel is not
    vectorized (~30x an L2 pass), `amax` and `amin` per tensor, which are (~1.2x together).
    """
    grads = [torch.view_as_real(g) if g.is_complex() else g for g in grads]
    if grads[0].device.type != "cpu":
        return list(torch._foreach_norm(grads, math.inf))
    return [torch.maximum(g.amax(), -g.amin()) for g in grads]


def _at_least_float32(x: torch.Tensor) -> torch.Tensor:
    """`x` in float32 or wider (complex64 or wider for complex): half precision would overflow."""
    return x.to(torch.promote_types(x.dtype, torch.float32))
