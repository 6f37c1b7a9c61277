"""NONFINITE: NaN/Inf in the loss, a gradient or an activation, located by the adapter."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

from ..findings import Finding
from .once import report_once
from .rule import Rule

Source = Literal["loss", "output", "activation", "gradient", "parameter"]


@dataclass(frozen=True)
class NonfiniteEvent:
    """Where a non-finite value was first seen in one step.

    Attributes:
        step: the optimizer step.
        source: what held it: the loss, the model output, a module's activation, a gradient,
            or a parameter.
        where: the module path, parameter name, or "loss"/"output".
        dtype: dtype of the offending tensor, e.g. "torch.float16".
        autocast: whether autocast was active when it was produced (None if unknown).
        nan / inf: which kinds of non-finite value were present.
    """

    step: int
    source: Source
    where: str
    dtype: str | None = None
    autocast: bool | None = None
    nan: bool = False
    inf: bool = False


class Nonfinite(Rule):
    """Turns located non-finite events into findings (once per place) and counts all of them."""

    name, accepts = "nonfinite", (NonfiniteEvent,)

    def init(self) -> dict[str, Any]:
        return {"count": 0, "reported": frozenset()}

    def update(self, event: NonfiniteEvent, state: dict[str, Any]) -> tuple[list[Finding], dict[str, Any]]:
        evidence = {"source": event.source, "dtype": event.dtype, "autocast": event.autocast,
                    "nan": event.nan, "inf": event.inf}
        findings, reported = report_once(state["reported"], "NONFINITE", event.step, event.where, evidence)
        return findings, {"count": state["count"] + 1, "reported": reported}
