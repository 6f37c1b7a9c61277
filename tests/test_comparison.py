"""`projects.common.comparison`: a parent run's table of its children, and its health summary."""

from __future__ import annotations

import numpy as np
import pytest

from projects.common.comparison import Cell, children_health, html_table, markdown_table, summarize


def test_markdown_table_formats_cells() -> None:
    rows = [{"domain": "image", "pooling": "mean", "mean": 0.468123456, "std": None, "n": 3},
            {"domain": "audio", "pooling": "a|b", "mean": np.float32(12345.678), "n": 1}]
    lines = markdown_table(rows, ["domain", "pooling", "mean", "std", "n"]).strip("\n").split("\n")
    assert lines == ["| domain | pooling | mean | std | n |", "|---|---|---|---|---|",
                     "| image | mean | 0.4681 | n/a | 3 |",
                     "| audio | a\\|b | 1.235e+04 | n/a | 1 |"]  # missing key -> n/a, pipe escaped
    assert markdown_table([], ["a"]).count("\n") == 2
    with pytest.raises(ValueError, match="columns is empty"):
        markdown_table([{"a": 1}], [])


def test_html_table_escapes_and_formats() -> None:
    text = html_table([{"a": "<b>", "b": 0.123456}], ["a", "b"])
    assert "<td>&lt;b&gt;</td><td>0.1235</td>" in text and text.count("<tr>") == 2


def test_summarize_and_children_health() -> None:
    assert summarize([1.0, 3.0]) == (2.0, pytest.approx(2 ** 0.5)) and summarize([5.0]) == (5.0, 0.0)
    cells = [Cell(health=["ok", "critical"], codes={"GRAD_NEVER_UPDATED"}), Cell(health=["warning"])]
    assert children_health(cells) == "3 children: 1 ok, 1 warning, 1 critical (GRAD_NEVER_UPDATED)"
    assert children_health([Cell(health=["ok", "ok"])]) == "2 children: 2 ok"
