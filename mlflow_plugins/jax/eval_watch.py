"""Eval/train mix-ups for Flax NNX: an `EvalCheck` per evaluation, from the model's own state.

A forgotten `model.eval()` leaves `nnx.Dropout` drawing random numbers and `nnx.BatchNorm`
updating its statistics. Both leave evidence in the model's state, whatever decided the mode (the
module's attribute or an argument at call time): a dropout's RNG stream counts its draws, and the
batch statistics change. So nothing is inferred from attributes alone: the state is read when the
evaluation begins and when it ends (one `jax.device_get` of both, at the end), never per batch.
"""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from flax import nnx

from ..analysis.eval_mode import EvalCheck
from ..session import StepReport
from .paths import key_name


class EvalWatch:
    """Collects an `EvalCheck` per evaluation of an NNX `model`.

    Args:
        model: the evaluated `nnx.Module`.
    """

    def __init__(self, model: nnx.Module) -> None:
        self.model = model
        self.where = type(model).__name__
        nodes = [(_path(p), n) for p, n in nnx.iter_graph(model)]
        self._dropouts = [(p, n) for p, n in nodes if isinstance(n, nnx.Dropout) and n.rate > 0
                          and isinstance(getattr(n, "rngs", None), nnx.RngStream)]
        self._norms = [p for p, n in nodes if isinstance(n, nnx.BatchNorm)]
        self._start: Any = None
        self._step = 0

    def begin(self, step: int) -> None:
        """An evaluation starts: notes the dropouts' draw counts and the batch statistics."""
        self._step, self._start = int(step), self._state()

    def end(self) -> StepReport:
        """The evaluation ended: the dropouts that drew and the statistics that changed."""
        if self._start is None:
            return StepReport()
        start, end = jax.device_get((self._start, self._state()))
        self._start = None
        drew = tuple(p for (p, _), a, b in zip(self._dropouts, start["draws"], end["draws"]) if a != b)
        changed = tuple(p for p, a, b in zip(start["names"], start["stats"], end["stats"])
                        if not np.array_equal(a, b, equal_nan=True))
        norms = tuple(p for p in self._norms if any(c.startswith(p + ".") for c in changed))
        return StepReport([EvalCheck(self._step, self.where, train_mode=(*drew, *norms), stochastic=drew,
                                     changed=changed)])

    def _state(self) -> dict[str, Any]:
        stats = jax.tree_util.tree_flatten_with_path(nnx.state(self.model, nnx.BatchStat))[0]
        names = [".".join(key_name(k) for k in path if key_name(k) != "value") for path, _ in stats]
        return {"draws": [d.rngs.count.value for _, d in self._dropouts],
                "names": names,
                "stats": [jnp.stack([jnp.sum(x), jnp.sum(jnp.square(x))]) for _, x in stats]}


def _path(path: tuple) -> str:
    return ".".join(str(k) for k in path)
