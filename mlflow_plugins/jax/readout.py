"""Host-side readout: the monitored state and sown intermediates turned into analysis inputs.

Everything here runs on host copies (numpy) except `find_state` and `probe_cvs`, which only
walk pytrees; the analyzers of `mlflow_plugins.analysis` take it from there.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Mapping

import jax
import numpy as np
from flax import nnx

from ..analysis import GradSnapshot, NormProbe, UpdateSnapshot
from .norm_probes import CV_NAME
from .paths import TAP_IN, TAP_OUT, is_tap, key_name, leaf_names, module_of
from .transform import MonitoredState


@dataclass(frozen=True)
class ParamTable:
    """What the host knows of the watched parameters, in the order of `MonitoredState`.

    Attributes:
        names: parameter paths (e.g. `encoder.convs.0.kernel`), probe taps excluded.
        numel: elements per parameter.
        dtypes: dtype of each parameter, e.g. "float32".
        taps: paths of the probe taps, in the order of `MonitoredState.taps`.
    """

    names: tuple[str, ...]
    numel: np.ndarray
    dtypes: tuple[str, ...]
    taps: tuple[str, ...]

    @classmethod
    def of(cls, params: Any) -> "ParamTable":
        """The table of a parameter pytree (arrays, or anything with `shape` and `dtype`).

        Raises:
            ValueError: `params` has no leaf to watch.
        """
        leaves = jax.tree.leaves(params)
        names = leaf_names(params)
        watched = [(n, x) for n, x in zip(names, leaves) if not is_tap(n)]
        if not watched:
            raise ValueError(f"params={type(params).__name__} has no array leaves to watch; "
                             "pass the parameter pytree, e.g. the nnx.Param state of nnx.split")
        return cls(tuple(n for n, _ in watched),
                   np.array([max(int(np.prod(np.shape(x))), 1) for _, x in watched], np.float64),
                   tuple(str(getattr(x, "dtype", "unknown")) for _, x in watched),
                   tuple(n for n in names if is_tap(n)))


def find_state(opt_state: Any) -> MonitoredState:
    """The `MonitoredState` inside an optimizer state (the state itself, nested in a chain, or
    held by `nnx.Optimizer`, whose `opt_state` wraps each array in an `nnx.Variable`).

    Raises:
        ValueError: there is none: the optimizer was not built with `monitored(...)`.
    """
    if isinstance(opt_state, MonitoredState):
        return _unwrapped(opt_state)
    found = [x for x in jax.tree.leaves(opt_state, is_leaf=lambda x: isinstance(x, MonitoredState))
             if isinstance(x, MonitoredState)]
    if len(found) != 1:
        raise ValueError(f"opt_state holds {len(found)} MonitoredState; build the optimizer once "
                         "with mlflow_plugins.jax.monitored(inner), e.g. tx = monitored(optax.adam(1e-3))")
    return _unwrapped(found[0])


def _unwrapped(state: MonitoredState) -> MonitoredState:
    """The statistics as plain arrays (the inner state is left as it is: the monitor never reads it)."""
    def value(x: Any) -> Any:
        return x[...] if isinstance(x, nnx.Variable) else x

    return state._replace(**{f: value(getattr(state, f)) for f in state._fields if f != "inner_state"})


def probe_cvs(intermediates: Any) -> dict[str, Any]:
    """The magnitude CVs [in, out] the normalization probes sowed, by module path (device arrays)."""
    if intermediates is None:
        return {}
    cvs: dict[str, Any] = {}
    for path, leaf in jax.tree_util.tree_flatten_with_path(intermediates)[0]:
        parts = [key_name(k) for k in path]
        if CV_NAME in parts:
            cvs.setdefault(".".join(parts[:parts.index(CV_NAME)]), leaf)
    return cvs


def grad_snapshot(step: int, table: ParamTable, l2: np.ndarray, mean_abs: np.ndarray | None) -> GradSnapshot:
    """A `GradSnapshot` of one update; `mean_abs=None` when it was not measured at this update.

    JAX gradients are never missing (a parameter outside the loss gets exact zeros), so
    `missing` is all False and an all-zero gradient counts as no gradient through `l2 == 0`.
    """
    l2 = np.asarray(l2, np.float64)
    mean = np.full_like(l2, np.nan) if mean_abs is None else np.asarray(mean_abs, np.float64)
    return GradSnapshot(step, table.names, l2, mean, np.zeros(l2.shape, bool), table.numel)


def update_snapshot(step: int, table: ParamTable, host: Mapping[str, np.ndarray]) -> UpdateSnapshot:
    """The `UpdateSnapshot` of the last measured update (`host`: `MonitoredState`'s update fields,
    `count` included), at the step it was measured (`step` is the current update's)."""
    back = int(host["count"]) - 1 - int(host["measured_at"])
    since = np.asarray(host["still_since"], np.int64)
    n = len(table.names)
    return UpdateSnapshot(step - back, table.names, np.asarray(host["update_l2"], np.float64),
                          np.asarray(host["weight_l2"], np.float64),
                          np.asarray(host["update_grad_l2"], np.float64), table.numel,
                          np.ones(n, bool), np.full(n, np.nan),
                          still_since=np.where(since >= 0, since - int(host["measured_at"]) + step - back, -1))


def norm_probes(step: int, table: ParamTable, taps: np.ndarray,
                cvs: Mapping[str, np.ndarray]) -> list[NormProbe]:
    """One `NormProbe` per probed module that sowed its CVs, with its tap gradient ratio."""
    grads: dict[str, dict[str, float]] = {}
    for name, value in zip(table.taps, np.asarray(taps, np.float64)):
        grads.setdefault(module_of(name), {})[name.rsplit(".", 1)[-1]] = float(value)
    probes = []
    for module, cv in sorted(cvs.items()):
        g = grads.get(module, {})
        g_in, g_out = g.get(TAP_IN, float("nan")), g.get(TAP_OUT, float("nan"))
        ratio = g_in / g_out if g_out > 0 and g_in == g_in else None
        cv_in, cv_out = np.asarray(cv, np.float64).reshape(-1)[:2]
        probes.append(NormProbe(step, module, ratio, float(cv_in), float(cv_out)))
    return probes
