"""The framework-neutral summary of one observed step's gradients, and its history."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np


@dataclass(frozen=True)
class GradSnapshot:
    """Per-parameter gradient statistics of one optimizer step, already on the host.

    Adapters (torch, JAX) build one of these from a single fused device reduction.

    Attributes:
        step: the optimizer step.
        names: parameter paths, in a fixed order.
        l2: per-parameter gradient L2 norm (0 where the gradient is missing).
        mean_abs: per-parameter mean |gradient| (0 where missing; NaN where not measured).
        missing: True where the parameter had no gradient at all (None).
        numel: number of elements of each parameter.
        group: which parameter set (e.g. the optimizer's index), when an adapter watches several.
        frozen: True where the parameter is frozen on purpose (PyTorch: requires_grad=False), so
            no gradient is expected; None: none is.
    """

    step: int
    names: tuple[str, ...]
    l2: np.ndarray
    mean_abs: np.ndarray
    missing: np.ndarray
    numel: np.ndarray
    group: str = ""
    frozen: np.ndarray | None = None

    @property
    def total_norm(self) -> float:
        return float(np.sqrt(np.sum(np.square(self.l2, dtype=np.float64))))

    def layers(self) -> dict[str, np.ndarray]:
        return layers(self.names)


def layers(names: tuple[str, ...]) -> dict[str, np.ndarray]:
    """Parameter indices per layer: the module path, i.e. the name without its last part."""
    groups: dict[str, list[int]] = {}
    for i, name in enumerate(names):
        groups.setdefault(name.rsplit(".", 1)[0], []).append(i)
    return {layer: np.array(idx) for layer, idx in groups.items()}


@dataclass
class GradFlow:
    """What the gradient-flow figure shows: per-parameter gradient size over the observed steps.

    `mean_abs` is averaged over the observations that measured it; `received` says whether a
    parameter was ever seen with a non-zero gradient; `steps`/`total_norm` is the total-norm curve.
    """

    names: tuple[str, ...] = ()
    mean_abs_sum: np.ndarray = field(default_factory=lambda: np.zeros(0))
    mean_abs_count: np.ndarray | None = None  # observations that measured it; None: all did
    max_l2: np.ndarray = field(default_factory=lambda: np.zeros(0))
    received: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=bool))
    observations: int = 0
    steps: list[int] = field(default_factory=list)
    total_norm: list[float] = field(default_factory=list)

    def add(self, snap: GradSnapshot) -> None:
        if self.names != snap.names:
            self.names = snap.names
            n = len(snap.names)
            self.mean_abs_sum, self.mean_abs_count, self.max_l2 = np.zeros(n), np.zeros(n), np.zeros(n)
            self.received, self.observations = np.zeros(n, dtype=bool), 0
        finite = np.isfinite(snap.mean_abs)
        if self.mean_abs_count is None:
            self.mean_abs_count = np.full(len(self.names), float(self.observations))
        self.mean_abs_sum += np.where(finite, snap.mean_abs, 0.0)
        self.mean_abs_count += finite
        self.max_l2 = np.fmax(self.max_l2, snap.l2)
        self.received |= (~snap.missing) & (snap.l2 > 0)
        self.observations += 1
        self.steps.append(snap.step)
        self.total_norm.append(snap.total_norm)

    @property
    def mean_abs(self) -> np.ndarray:
        count = self.observations if self.mean_abs_count is None else self.mean_abs_count
        return self.mean_abs_sum / np.maximum(count, 1)

    def to_dict(self) -> dict:
        return {
            "names": list(self.names),
            "mean_abs": self.mean_abs.tolist(),
            "max_l2": self.max_l2.tolist(),
            "received": self.received.tolist(),
            "steps": list(self.steps),
            "total_norm": list(self.total_norm),
        }

    @classmethod
    def from_dict(cls, d: dict) -> "GradFlow":
        """A `GradFlow` equal, for plotting, to the one `to_dict` wrote (one observation)."""
        return cls(names=tuple(d["names"]), mean_abs_sum=np.asarray(d["mean_abs"], dtype=float),
                   max_l2=np.asarray(d["max_l2"], dtype=float),
                   received=np.asarray(d["received"], dtype=bool), observations=1,
                   steps=list(d["steps"]), total_norm=[float(v) for v in d["total_norm"]])
