"""Sparse gradients (`nn.Embedding(sparse=True)` with `SparseAdam`, a common recommender and NLP
setup) are measured by their values: the same norms as their dense form, and no check fails."""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

import mlflow_plugins
from mlflow_plugins.pytorch.grad_stats import GradStats


class Recommender(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.items = nn.Embedding(1000, 16, sparse=True)
        self.head = nn.Linear(16, 2)

    def forward(self, ids: torch.Tensor) -> torch.Tensor:
        return self.head(self.items(ids).mean(1))


def test_a_sparse_gradient_has_the_norms_of_its_dense_form():
    torch.manual_seed(0)
    model = Recommender()
    nn.functional.cross_entropy(model(torch.randint(0, 1000, (8, 5))), torch.randint(0, 2, (8,))).backward()
    sparse = GradStats([("items.weight", model.items.weight)]).snapshot(0)
    model.items.weight.grad = model.items.weight.grad.to_dense()
    dense = GradStats([("items.weight", model.items.weight)]).snapshot(0)
    np.testing.assert_allclose(sparse.l2, dense.l2, rtol=1e-6)
    np.testing.assert_allclose(sparse.mean_abs, dense.mean_abs, rtol=1e-6)


def test_sparse_adam_beside_a_dense_optimizer_is_healthy():
    torch.manual_seed(0)
    model = Recommender()
    sparse_opt = torch.optim.SparseAdam(list(model.items.parameters()), 1e-2)
    dense_opt = torch.optim.Adam(model.head.parameters(), 1e-2)
    with mlflow_plugins.watch(model, sparse_opt, log_every=2) as monitor:
        for _ in range(30):
            sparse_opt.zero_grad()
            dense_opt.zero_grad()
            ids, y = torch.randint(0, 1000, (8, 5)), torch.randint(0, 2, (8,))
            nn.functional.cross_entropy(model(ids), y).backward()
            sparse_opt.step()
            dense_opt.step()
    # The band rule judges the size of this small model's total norm (0.06), not sparse handling.
    assert [f.code for f in monitor.findings if f.code != "GRAD_NORM_OUT_OF_RANGE"] == []
