"""The report's per-module census: trainable, frozen, outside the optimizer, changed. A freeze
that silently did not happen (`module.requires_grad = False`, an attribute on the module that
freezes nothing) shows as a trainable module that changed."""

from __future__ import annotations

import mlflow
import numpy as np
import torch
from torch import nn

import mlflow_plugins
from _models import Wrapped, data, train_lightning
from mlflow_plugins import GradientHealthCallback
from mlflow_plugins.analysis.param_census import ParamCensus


class Classifier(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.backbone = nn.Sequential(nn.Linear(16, 32), nn.ReLU(), nn.Linear(32, 32))  # 1600 elements
        self.head = nn.Linear(32, 4)  # 132 elements

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(torch.relu(self.backbone(x)))


def _census(freeze) -> tuple[list[dict], str]:
    torch.manual_seed(0)
    model = Classifier()
    freeze(model)
    opt = torch.optim.Adam(model.parameters(), 1e-2)
    x, y = data()
    with mlflow.start_run() as run:
        with mlflow_plugins.watch(model, opt, log_every=5) as monitor:
            for _ in range(6):
                opt.zero_grad()
                nn.functional.cross_entropy(model(x), y).backward()
                opt.step()
    page = open(mlflow.artifacts.download_artifacts(run_id=run.info.run_id,
                                                    artifact_path="fixlab/report.html")).read()
    return monitor.census.finish().rows(), page


def _row(rows: list[dict], module: str) -> dict:
    return next(r for r in rows if r["module"] == module)


def test_a_frozen_backbone_is_counted_frozen_and_unchanged(tracking_uri):
    rows, page = _census(lambda m: m.backbone.requires_grad_(False))
    assert _row(rows, "backbone") == {"module": "backbone", "trainable": 0, "frozen": 1600,
                                      "not_in_optimizer": 0, "changed": 0}
    assert _row(rows, "head") == {"module": "head", "trainable": 132, "frozen": 0,
                                  "not_in_optimizer": 0, "changed": 132}
    assert "Parameters per module" in page and "<td>1,600</td>" in page


def test_a_freeze_that_did_not_happen_shows_a_trainable_backbone_that_changed(tracking_uri):
    def attribute_instead_of_parameters(model):
        model.backbone.requires_grad = False  # a plain attribute: nothing is frozen

    rows, _ = _census(attribute_instead_of_parameters)
    assert _row(rows, "backbone") == {"module": "backbone", "trainable": 1600, "frozen": 0,
                                      "not_in_optimizer": 0, "changed": 1600}


def test_a_module_left_out_of_the_optimizer_is_counted_apart():
    census = ParamCensus(("a.w", "b.w", "b.bias", "scale"), np.array([10, 4, 2, 1]),
                         np.array([True, True, True, False]), np.array([True, False, False, True]),
                         np.array([True, False, False, False]))
    assert census.rows() == [
        {"module": "a", "trainable": 10, "frozen": 0, "not_in_optimizer": 0, "changed": 10},
        {"module": "b", "trainable": 0, "frozen": 0, "not_in_optimizer": 6, "changed": 0},
        {"module": "(root)", "trainable": 0, "frozen": 1, "not_in_optimizer": 0, "changed": 0}]
    assert "font-weight:bold" not in census.html().split("<td class='where'>a</td>")[1].split("</tr>")[0]


def test_lightning_reports_the_census(tracking_uri):
    model = Classifier()
    model.backbone.requires_grad_(False)
    with mlflow.start_run() as run:
        train_lightning(Wrapped(model), [GradientHealthCallback(log_every=5)], steps=6)
    page = open(mlflow.artifacts.download_artifacts(run_id=run.info.run_id,
                                                    artifact_path="fixlab/report.html")).read()
    section = page.split("Parameters per module")[1]
    assert "<td class='where'>model</td><td>132</td><td>1,600</td><td>0</td>" in section
