"""The objectives a particle classifier is trained with, from labeled positives and unlabeled patches.

All take logits of the labeled positives `z_p` and of the unlabeled patches `z_u` and the logistic
loss l(z, +1) = softplus(-z), l(z, -1) = softplus(z), and return a `Risk`: the tensor to
differentiate and its parts, as device tensors (no host sync; the module logs them per epoch).

- `pu_risk`: the unbiased PU risk (du Plessis et al. 2015) and its non-negative correction (nnPU,
  Kiryo et al. 2017, Algorithm 1): pi E_p[l(z, +1)] + max(0, E_u[l(z, -1)] - pi E_p[l(z, -1)]); when
  the negative part falls below -beta, the step follows -gamma * (negative part) instead, pushing it
  back up rather than letting a flexible model overfit it.
- `ge_binomial_risk`: Topaz's default (Bepler et al. 2019): the log-loss on labeled positives plus
  a generalized-expectation term asking the expected share of positives in an unlabeled minibatch,
  the mean predicted probability q, to match pi: the binomial cross-entropy KL(pi || q), weighted.
- `pn_risk`: positives against unlabeled-as-negative, the plain classifier the PU methods correct.
"""

from __future__ import annotations

from typing import NamedTuple

import torch
import torch.nn.functional as F

__all__ = ["Risk", "pu_risk", "ge_binomial_risk", "pn_risk"]


class Risk(NamedTuple):
    """The objective to differentiate and its logged parts (each a scalar tensor).

    Attributes:
        objective: what the optimizer descends (nnPU: the correction step when it is taken).
        risk: the risk estimate itself (nnPU: with the negative part clamped at 0).
        positive: the labeled positives' part (pi E_p[l(z, +1)]; PN and GE: their mean log-loss).
        negative: the negative part (PU: E_u[l(z, -1)] - pi E_p[l(z, -1)], can be < 0 for uPU;
            PN: the unlabeled-as-negative log-loss; GE: the expectation term, unweighted).
    """

    objective: torch.Tensor
    risk: torch.Tensor
    positive: torch.Tensor
    negative: torch.Tensor


def pu_risk(z_p: torch.Tensor, z_u: torch.Tensor, prior: float, *, non_negative: bool = True,
            beta: float = 0.0, gamma: float = 1.0) -> Risk:
    """nnPU (`non_negative=True`) or uPU risk of logits `z_p` (labeled positives) and `z_u` (unlabeled)."""
    positive = prior * F.softplus(-z_p).mean()
    negative = F.softplus(z_u).mean() - prior * F.softplus(z_p).mean()
    if not non_negative:
        return Risk(positive + negative, positive + negative, positive, negative)
    correcting = negative < -beta
    objective = torch.where(correcting, -gamma * negative, positive + negative)
    return Risk(objective, positive + negative.clamp(min=0), positive, negative)


def ge_binomial_risk(z_p: torch.Tensor, z_u: torch.Tensor, prior: float, *, weight: float = 10.0) -> Risk:
    """Topaz's GE-binomial objective of logits `z_p` (labeled positives) and `z_u` (unlabeled)."""
    positive = F.softplus(-z_p).mean()
    q = torch.sigmoid(z_u).mean().clamp(1e-6, 1 - 1e-6)
    expectation = prior * torch.log(prior / q) + (1 - prior) * torch.log((1 - prior) / (1 - q))
    objective = positive + weight * expectation
    return Risk(objective, objective, positive, expectation)


def pn_risk(z_p: torch.Tensor, z_u: torch.Tensor) -> Risk:
    """Log-loss of labeled positives as +1 and unlabeled patches as -1, each class's mean weighted equally."""
    positive = F.softplus(-z_p).mean()
    negative = F.softplus(z_u).mean()
    objective = 0.5 * (positive + negative)
    return Risk(objective, objective, positive, negative)
