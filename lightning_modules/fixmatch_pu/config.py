"""Document 004's model and training configuration: one frozen, validated dataclass."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

__all__ = ["FixMatchPUConfig", "BACKBONES", "OBJECTIVES"]

BACKBONES: tuple[str, ...] = ("cnn", "resnet")
#: nnpu: non-negative PU risk (Kiryo et al. 2017); upu: the unbiased PU risk it corrects; ge_binomial:
#: Topaz's default (Bepler et al. 2019); pn: labeled positives against unlabeled-as-negative.
OBJECTIVES: tuple[str, ...] = ("nnpu", "upu", "ge_binomial", "pn")


def _real(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


@dataclass(frozen=True)
class FixMatchPUConfig:
    """Network, objective, FixMatch consistency and schedule of one document-004 particle classifier.

    Args:
        backbone: "resnet" (a small ResNet, the document's family) or "cnn" (its "simpler CNN").
        width: channels of the first stage (doubled at each of the three stages).
        objective: the risk on labeled positives and unlabeled patches (`OBJECTIVES`).
        prior: the class prior pi the PU objectives assume: share of particles among unlabeled patches.
        fixmatch: add FixMatch's consistency loss on unlabeled patches.
        threshold: confidence max(p, 1 - p) of the teacher on a weak view above which a pseudo-label
            is used (the document: 0.95 original, 0.75 debugged).
        consistency_weight: weight of the consistency loss after ramp-up (the document: 0.3 debugged).
        rampup_epochs: epochs over which the consistency weight rises (sigmoid-shaped) to its value.
        ema_decay: decay of the EMA teacher that makes pseudo-labels and is evaluated; 0: no teacher
            (the student's own weak-view predictions, detached).
        lr: Adam learning rate after warm-up.
        warmup_epochs: epochs of linear learning-rate warm-up from lr/100.
        weight_decay: Adam's L2 penalty.
        nnpu_beta / nnpu_gamma: nnPU's tolerance and the step size of its correction (Kiryo et al.).
        ge_weight: Topaz's weight of the generalized-expectation term.

    Raises:
        ValueError: a field out of range; the message names it, its value and what is allowed.
    """

    backbone: str = "resnet"
    width: int = 16
    objective: str = "nnpu"
    prior: float = 0.3
    fixmatch: bool = True
    threshold: float = 0.95
    consistency_weight: float = 1.0
    rampup_epochs: int = 0
    ema_decay: float = 0.99
    lr: float = 1e-3
    warmup_epochs: int = 0
    weight_decay: float = 0.0
    nnpu_beta: float = 0.0
    nnpu_gamma: float = 1.0
    ge_weight: float = 10.0

    def __post_init__(self) -> None:
        for name, allowed in (("backbone", BACKBONES), ("objective", OBJECTIVES)):
            if getattr(self, name) not in allowed:
                raise ValueError(f"{name}={getattr(self, name)!r} is not allowed; allowed: one of {', '.join(allowed)}")
        checks = (
            ("width", _int(self.width) and 1 <= self.width <= 1024, "an integer in [1, 1024]"),
            ("prior", _real(self.prior) and 0 < self.prior < 1, "a number in (0, 1)"),
            ("fixmatch", isinstance(self.fixmatch, bool), "True or False"),
            ("threshold", _real(self.threshold) and 0 <= self.threshold <= 1, "a number in [0, 1]"),
            ("consistency_weight", _real(self.consistency_weight) and self.consistency_weight >= 0, "a number >= 0"),
            ("rampup_epochs", _int(self.rampup_epochs) and self.rampup_epochs >= 0, "an integer >= 0"),
            ("ema_decay", _real(self.ema_decay) and 0 <= self.ema_decay < 1, "a number in [0, 1)"),
            ("lr", _real(self.lr) and self.lr > 0, "a number > 0"),
            ("warmup_epochs", _int(self.warmup_epochs) and self.warmup_epochs >= 0, "an integer >= 0"),
            ("weight_decay", _real(self.weight_decay) and self.weight_decay >= 0, "a number >= 0"),
            ("nnpu_beta", _real(self.nnpu_beta) and self.nnpu_beta >= 0, "a number >= 0"),
            ("nnpu_gamma", _real(self.nnpu_gamma) and 0 < self.nnpu_gamma <= 1, "a number in (0, 1]"),
            ("ge_weight", _real(self.ge_weight) and self.ge_weight >= 0, "a number >= 0"),
        )
        for name, ok, allowed in checks:
            if not ok:
                raise ValueError(f"{name}={getattr(self, name)!r} is not allowed; allowed: {allowed}")

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)
