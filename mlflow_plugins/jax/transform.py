"""`monitored(inner)`: an optax wrapper that measures every update's gradients inside `jit`.

The statistics are computed in the compiled step and carried in the optimizer state, so the
host never syncs per parameter: `JaxMonitor` reads one small int8 vector per step (one step
late) and the whole statistics pytree once per log interval. The wrapper also schedules the
normalization probes of `probe_norms`, by setting their taps (see `norm_probes`).
"""

from __future__ import annotations

import functools
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import optax
from jax import lax

from ..thresholds import check_log_every
from .paths import is_tap, leaf_names

# Per-parameter status codes of one update, carried in `MonitoredState.status`.
OK, ZERO, NAN, INF = 0, 1, 2, 3
# Squares below _TINY**2 = 2**-126 (float32's smallest normal) lose precision or flush to 0.
_TINY = 2.0 ** -63
# An update of at most this fraction of its parameter is "still" (Thresholds.update_ratio_min's
# default; the host judges the measured numbers again with its own threshold).
STILL_RATIO = 1e-8


class MonitoredState(NamedTuple):
    """State of `monitored`: the inner state and the last update's gradient statistics.

    "Watched" leaves are the parameters, in `jax.tree.leaves` order, without the gradient taps
    of normalization probes (see `probe_norms`), whose values are kept apart in `taps`.

    Attributes:
        inner_state: the wrapped transformation's state.
        count: updates so far (int32).
        l2: per-parameter gradient L2 norm of the last update (float32).
        status: per-parameter code of the last update: OK, ZERO (all zero), NAN or INF (int8).
        mean_abs: per-parameter mean |grad|, measured on sampled updates (float32).
        sampled_at: the last sampled update (0-based): every `log_every`-th, the first
            included, measures `mean_abs` and runs the normalization probes; -1 before.
        taps: the gradient norms the normalization probes' taps received (float32).
        log_every / skip_step: the configuration, as constants the host checks against its own.
        measured_at: the last update whose size was measured (0-based; -1 before): sampled
            updates, and those that follow one that left a parameter still (see `_measure`).
        update_l2 / weight_l2 / update_grad_l2: per-parameter ||update||, ||param|| (NaN when
            `update` is not given `params`) and ||grad|| of that update (float32).
        still_since: per parameter, the first measured update of its current run of still ones
            (a gradient but an update of at most `STILL_RATIO` of the parameter); -1: moving.
    """

    inner_state: Any
    count: jax.Array
    l2: jax.Array
    status: jax.Array
    mean_abs: jax.Array
    sampled_at: jax.Array
    taps: jax.Array
    log_every: jax.Array
    skip_step: jax.Array
    measured_at: jax.Array
    update_l2: jax.Array
    weight_l2: jax.Array
    update_grad_l2: jax.Array
    still_since: jax.Array


def monitored(inner: optax.GradientTransformation, *, log_every: int = 50,
              skip_step: bool = False) -> optax.GradientTransformationExtraArgs:
    """Wraps `inner` to compute gradient statistics inside `jit` and keep them in its state.

    Every update: per-parameter L2 norms (one fused reduction: the sums of squares are stacked,
    then square-rooted; a finite gradient they cannot measure, of ~1e19 and more or ~1e-20 and
    less, is measured again on a copy scaled by a power of two) and a per-parameter status
    (all-zero, NaN, Inf) decided from the values. Sampled updates (every
    `log_every`-th, the first included) also measure the mean |grad| per parameter, which
    GRAD_VANISHING needs (on every update, that pass added ~5 % to the step of
    `benchmarks/jax_overhead.py` on CPU, against ~0.5 % sampled), and run the normalization
    probes, as the PyTorch side does on its log steps. Probe taps are not
    parameters: `inner` never sees them (they are None, an empty subtree, in what it gets), and
    their update only arms or disarms them for the next forward (1 before a sampled update,
    else 0; this needs `params`).

    Args:
        inner: the optimizer to wrap (e.g. `optax.adamw(1e-3)`).
        log_every: updates between samples; the monitor's `log_every` must be the same.
        skip_step: when the gradients are non-finite, return zero updates and keep the inner
            state (like `optax.apply_if_finite`): policy "skip_step" without a host round trip.

    Raises:
        ValueError: `log_every` not an integer >= 1, or `skip_step` not a bool.

    Example:
        >>> tx = monitored(optax.adam(1e-3), skip_step=True)
        >>> opt_state = tx.init(params)  # params: e.g. the nnx.Param state of nnx.split
    """
    log_every = check_log_every(log_every)
    if not isinstance(skip_step, bool):
        raise ValueError(f"skip_step={skip_step!r} is not allowed; allowed: True or False")
    inner = optax.with_extra_args_support(inner)

    def init(params: Any) -> MonitoredState:
        watched, taps = _split_indices(params)
        if not watched:
            raise ValueError("params has no array leaves to monitor (only probe taps or none)")
        n = len(watched)
        return MonitoredState(
            inner_state=inner.init(_without(params, taps)), count=jnp.zeros((), jnp.int32),
            l2=jnp.zeros((n,), jnp.float32), status=jnp.zeros((n,), jnp.int8),
            mean_abs=jnp.full((n,), jnp.nan, jnp.float32), sampled_at=jnp.full((), -1, jnp.int32),
            taps=jnp.zeros((len(taps),), jnp.float32), log_every=jnp.asarray(log_every, jnp.int32),
            skip_step=jnp.asarray(skip_step), measured_at=jnp.full((), -1, jnp.int32),
            update_l2=jnp.full((n,), jnp.nan, jnp.float32), weight_l2=jnp.full((n,), jnp.nan, jnp.float32),
            update_grad_l2=jnp.zeros((n,), jnp.float32), still_since=jnp.full((n,), -1, jnp.int32))

    def update(updates: Any, state: MonitoredState, params: Any = None,
               **extra_args: Any) -> tuple[Any, MonitoredState]:
        watched, taps = _split_indices(updates)
        leaves = jax.tree.leaves(updates)
        grads = [leaves[i] for i in watched]
        l2, status, exponent = _statistics(grads)
        finite = jnp.all(status < NAN)  # from the values, not from an overflowing sum of squares
        mean_abs, sampled_at = lax.cond(
            state.count % log_every == 0,
            lambda: (_mean_abs(grads, exponent), state.count),
            lambda: (state.mean_abs, state.sampled_at))
        tap_values = jnp.stack([jnp.sum(leaves[i].astype(jnp.float32)) for i in taps]) \
            if taps else state.taps
        inner_grads, inner_params = _without(updates, taps), _without(params, taps)

        def apply(_: None) -> tuple[Any, Any]:
            return inner.update(inner_grads, state.inner_state, inner_params, **extra_args)

        def reject(_: None) -> tuple[Any, Any]:
            return optax.tree.zeros_like(inner_grads), state.inner_state

        new_updates, inner_state = (lax.cond(finite, apply, reject, None) if skip_step
                                    else apply(None))
        measured = _measure(state, new_updates, inner_params, l2, log_every)
        count = optax.safe_increment(state.count)
        new_updates = _with_taps(new_updates, grads=updates, params=params, taps=taps,
                                 armed=count % log_every == 0)
        return new_updates, MonitoredState(
            inner_state=inner_state, count=count, l2=l2, status=status, mean_abs=mean_abs,
            sampled_at=sampled_at, taps=tap_values, log_every=state.log_every,
            skip_step=state.skip_step, **measured)

    return optax.GradientTransformationExtraArgs(init, update)


def _measure(state: MonitoredState, updates: Any, params: Any, grad_l2: jax.Array,
             log_every: int) -> dict[str, jax.Array]:
    """The update's size on sampled updates, and on those that follow a still one (for at most
    `log_every` updates), as `MonitoredState` fields: one fused reduction of the updates and of
    the parameters under one `lax.cond`, nothing on other updates.

    Following a still parameter tells accumulation (`optax.MultiSteps` returns zero updates
    between its steps, then moves) from an update that is never applied.
    """
    still_from = jnp.min(jnp.where(state.still_since >= 0, state.still_since, state.count))
    measure = (state.count % log_every == 0) | (state.count - still_from < log_every)
    upd = jax.tree.leaves(updates)
    weights = jax.tree.leaves(params) if params is not None else None

    def now() -> tuple[jax.Array, ...]:
        u = jnp.stack([jnp.sqrt(_sum_squares(_parts(x))) for x in upd]).astype(jnp.float32)
        w = (jnp.stack([jnp.sqrt(_sum_squares(_parts(x))) for x in weights]).astype(jnp.float32)
             if weights is not None else jnp.full(u.shape, jnp.nan, jnp.float32))
        still = (grad_l2 > 0) & (u <= STILL_RATIO * jnp.where(w > 0, w, 1.0))
        since = jnp.where(still, jnp.where(state.still_since < 0, state.count, state.still_since), -1)
        return state.count, u, w, grad_l2, since.astype(jnp.int32)

    def before() -> tuple[jax.Array, ...]:
        return (state.measured_at, state.update_l2, state.weight_l2, state.update_grad_l2,
                state.still_since)

    names = ("measured_at", "update_l2", "weight_l2", "update_grad_l2", "still_since")
    return dict(zip(names, lax.cond(measure, now, before)))


def _split_indices(tree: Any) -> tuple[list[int], list[int]]:
    """Leaf indices of the watched parameters and of the probe taps (decided at trace time)."""
    names = leaf_names(tree)
    return ([i for i, n in enumerate(names) if not is_tap(n)],
            [i for i, n in enumerate(names) if is_tap(n)])


def _parts(g: jax.Array) -> list[jax.Array]:
    """`g` as real arrays of at least float32: itself, or its real and imaginary parts."""
    if jnp.iscomplexobj(g):
        dtype = jnp.promote_types(g.real.dtype, jnp.float32)
        return [g.real.astype(dtype), g.imag.astype(dtype)]
    return [g.astype(jnp.promote_types(g.dtype, jnp.float32))]


def _scaled_parts(g: jax.Array, k: jax.Array) -> list[jax.Array]:
    """`_parts(g)` times 2**k, exactly: as two factors, each within the dtype's range."""
    parts = _parts(g)
    half = k // 2
    one = jnp.ones((), parts[0].dtype)
    return [p * jnp.ldexp(one, half) * jnp.ldexp(one, k - half) for p in parts]


def _sum_squares(parts: list[jax.Array]) -> jax.Array:
    """Sum of squares of real parts: |g|^2 summed, from the real and imaginary parts if complex."""
    return sum(jnp.sum(jnp.square(p)) for p in parts)


def _statistics(grads: list[jax.Array]) -> tuple[jax.Array, jax.Array, jax.Array]:
    """Per-parameter L2 norm (float32), status, and the exponent `_mean_abs` must scale by.

    One fused reduction per parameter (its sum of squares) decides them all, except where it
    cannot: Inf (overflow, or an Inf gradient) or below 2**-126 * numel (0, or squares that
    may be subnormal or flushed to 0). Only an update with such a parameter takes, under one
    `lax.cond`, the exact path (`_exact`), which reads max |g|.
    """
    squares = jnp.stack([_sum_squares(_parts(g)) for g in grads])
    numel = jnp.asarray([max(g.size, 1) for g in grads], squares.dtype)
    suspect = jnp.isinf(squares) | (squares < _TINY ** 2 * numel)  # False for NaN
    plain = (jnp.sqrt(squares), jnp.where(jnp.isnan(squares), NAN, OK).astype(jnp.int8),
             jnp.zeros(squares.shape, jnp.int32))
    l2, status, exponent = lax.cond(jnp.any(suspect), lambda: _exact(grads, squares, suspect),
                                    lambda: plain)
    big = jnp.finfo(jnp.float32).max  # a finite gradient's norm saturates there, never Inf
    return jnp.where(status == INF, l2, jnp.minimum(l2, big)).astype(jnp.float32), status, exponent


def _exact(grads: list[jax.Array], squares: jax.Array,
           suspect: jax.Array) -> tuple[jax.Array, jax.Array, jax.Array]:
    """`_statistics` from the values: status from max |g| (of the real and imaginary parts), and
    the suspicious non-zero finite norms measured on copies scaled by the power of two that
    brings max |g| into [0.5, 1) (exact; as two factors, each representable). The scaled pass
    runs only when such a norm exists, not for all-zero gradients."""
    amax = jnp.stack([functools.reduce(jnp.maximum, [jnp.max(jnp.abs(p), initial=0.0)
                                                     for p in _parts(g)]) for g in grads])
    status = _status(squares, amax)
    extreme = suspect & (status == OK)
    exponent = jnp.where(extreme, jnp.frexp(amax)[1], 0)  # amax = m * 2**exponent, m in [.5, 1)

    def rescaled() -> jax.Array:
        scaled = jnp.stack([_sum_squares(_scaled_parts(g, -exponent[i]))
                            for i, g in enumerate(grads)])
        return jnp.where(extreme, jnp.ldexp(jnp.sqrt(scaled), exponent), jnp.sqrt(squares))

    l2 = lax.cond(jnp.any(extreme), rescaled, lambda: jnp.sqrt(squares))
    return l2, status, exponent


def _mean_abs(grads: list[jax.Array], exponent: jax.Array) -> jax.Array:
    """Per-parameter mean |g| (|z| from the real and imaginary parts when complex), float32.
    Where `_statistics` scaled a gradient, the mean is taken of the scaled copy (exact) and
    scaled back, so that a finite gradient's sum cannot overflow."""
    means = []
    for i, g in enumerate(grads):
        parts = _scaled_parts(g, -exponent[i])
        mags = jnp.abs(parts[0]) if len(parts) == 1 else jnp.hypot(*parts)
        means.append(jnp.mean(mags))
    mean = jnp.ldexp(jnp.stack(means), exponent)
    return jnp.where(jnp.isinf(mean), mean, jnp.minimum(mean, jnp.finfo(jnp.float32).max)
                     ).astype(jnp.float32)


def _status(squares: jax.Array, amax: jax.Array) -> jax.Array:
    """OK / ZERO / NAN / INF per parameter, from its values: a NaN makes the sum of squares NaN
    (whatever `max` does with NaN), an Inf makes max |g| Inf; all zero is max |g| == 0."""
    code = jnp.where(amax == 0, ZERO, OK)
    code = jnp.where(jnp.isinf(amax), INF, code)
    return jnp.where(jnp.isnan(squares), NAN, code).astype(jnp.int8)


def _without(tree: Any, taps: list[int]) -> Any:
    """`tree` with the taps replaced by None, an empty subtree: what `inner` sees."""
    if tree is None or not taps:
        return tree
    leaves, treedef = jax.tree.flatten(tree)
    chosen = set(taps)
    return jax.tree.unflatten(treedef, [None if i in chosen else x for i, x in enumerate(leaves)])


def _with_taps(updates: Any, *, grads: Any, params: Any, taps: list[int],
               armed: jax.Array) -> Any:
    """`inner`'s updates (None at the taps) with the taps' put back: each tap goes to 1 (armed)
    or 0 for the next forward; without `params`, the taps keep their value."""
    if not taps:
        return updates
    grad_leaves, treedef = jax.tree.flatten(grads)
    leaves = jax.tree.flatten(updates, is_leaf=lambda x: x is None)[0]
    values = jax.tree.leaves(params) if params is not None else None
    for i in taps:
        leaves[i] = (jnp.zeros_like(grad_leaves[i]) if values is None
                     else armed.astype(values[i].dtype) - values[i])
    return jax.tree.unflatten(treedef, leaves)
