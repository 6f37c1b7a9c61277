"""NONFINITE: NaN/Inf in the loss, a gradient or an activation, located by the adapter."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from ..findings import Finding
from .once import ReportOnce

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


class Nonfinite:
    """Turns located non-finite events into findings (once per place) and counts all of them."""

    def __init__(self) -> None:
        self._once = ReportOnce()
        self.count = 0

    def observe(self, event: NonfiniteEvent) -> list[Finding]:
        self.count += 1
        evidence = {"source": event.source, "dtype": event.dtype, "autocast": event.autocast,
                    "nan": event.nan, "inf": event.inf}
        return self._once("NONFINITE", event.step, event.where, evidence)

    def state_dict(self) -> dict:
        return {"count": self.count, "reported": self._once.state()}

    def load_state_dict(self, state: dict) -> None:
        self.count = int(state["count"])
        self._once = ReportOnce(state["reported"])
