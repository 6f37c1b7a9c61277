"""Per top-level module: how many parameters are trainable, frozen, outside the optimizer, and
how many actually changed during training. A freeze that silently did not happen (or happened
where it should not) shows at a glance in the run's report."""

from __future__ import annotations

import html
from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class ParamCensus:
    """The parameters of a model at the end of training (element counts per parameter tensor).

    Attributes:
        names: parameter paths.
        numel: elements per parameter.
        requires_grad: True where the parameter asks for a gradient.
        held: True where the optimizer holds it.
        changed: True where its values differ from those at the start of training.
    """

    names: tuple[str, ...]
    numel: np.ndarray
    requires_grad: np.ndarray
    held: np.ndarray
    changed: np.ndarray

    def rows(self) -> list[dict[str, int | str]]:
        """One row per top-level module (the first part of the path; "(root)" for the model's
        own parameters), in model order, counting elements."""
        rows: dict[str, dict[str, int | str]] = {}
        for i, name in enumerate(self.names):
            module = name.split(".", 1)[0] if "." in name else "(root)"
            row = rows.setdefault(module, {"module": module, "trainable": 0, "frozen": 0,
                                           "not_in_optimizer": 0, "changed": 0})
            n = int(self.numel[i])
            if not self.requires_grad[i]:
                row["frozen"] += n
            elif self.held[i]:
                row["trainable"] += n
            else:
                row["not_in_optimizer"] += n
            row["changed"] += n if self.changed[i] else 0
        return list(rows.values())

    def html(self) -> str:
        """The rows as an HTML table; a trainable count that differs from the changed one is
        marked, as is a frozen module that changed."""
        head = ("<table><tr><th>module</th><th>trainable</th><th>frozen (requires_grad=False)</th>"
                "<th>needs a gradient, not in the optimizer</th><th>changed in training</th></tr>")
        body = []
        for row in self.rows():
            odd = row["changed"] != row["trainable"]
            cells = "".join(f"<td>{row[k]:,}</td>" for k in ("trainable", "frozen", "not_in_optimizer"))
            mark = " style='color:#b7791f;font-weight:bold'" if odd else ""
            body.append(f"<tr><td class='where'>{html.escape(str(row['module']))}</td>{cells}"
                        f"<td{mark}>{row['changed']:,}</td></tr>")
        note = ("<p class='muted'>Counts are elements. Trainable parameters that did not change, or "
                "changed ones that are not trainable, are marked.</p>")
        return head + "".join(body) + "</table>" + note
