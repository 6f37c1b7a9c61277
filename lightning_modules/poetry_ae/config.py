"""Document 002's sequence-autoencoder configuration: one frozen, validated dataclass."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

__all__ = ["AEConfig", "CELLS", "LOSSES", "INITS", "TEACHER_FORCING", "DOCUMENT_PHASES"]

CELLS: tuple[str, ...] = ("rnn", "lstm", "gru")
LOSSES: tuple[str, ...] = ("mse", "hybrid")
INITS: tuple[str, ...] = ("orthogonal", "default")
TEACHER_FORCING: tuple[str, ...] = ("per_step", "per_batch")

# (epochs in the phase, teacher-forcing ratio, max sequence length): the document's four phases,
# epochs 1-7, 8-15, 16-23 and 24-30.
DOCUMENT_PHASES: tuple[tuple[int, float, int | None], ...] = (
    (7, 0.9, 20), (8, 0.7, 30), (8, 0.3, 40), (7, 0.1, 50))


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _is_real(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


@dataclass(frozen=True)
class AEConfig:
    """Architecture, loss, initialization and training schedule of one document-002 autoencoder.

    Args:
        input_dim: word-vector dimension D (the document: 300 GloVe; here 384 by default data).
        hidden: recurrent width of encoder and decoder (document baseline 64, final model 512).
        bottleneck: width of the latent z (the document: 16).
        cell: "rnn" (the document's VanillaRNN), "lstm" or "gru".
        attention: the decoder also attends over the encoder's per-step outputs (the final model).
        heads: attention heads (must divide `hidden`).
        loss: "mse" (masked) or "hybrid" (cosine_weight * (1 - token cosine) + rest * MSE).
        cosine_weight: weight of the cosine term of the hybrid loss (the document: 0.9).
        init: "orthogonal" (recurrent weights orthogonal per gate, Xavier input/output weights,
            zero biases; the document's) or "default" (PyTorch's own initialization).
        lr: Adam learning rate.
        clip: gradient-norm clipping threshold (None: no clipping).
        teacher_forcing: "per_step" (one coin per sample and step) or "per_batch" (the
            document's bug: one coin per batch decides every step).
        curriculum: follow `phases`; False: ratio fixed at `tf_ratio`, no length limit.
        tf_ratio: teacher-forcing ratio when `curriculum` is False.
        phases: (epochs, ratio, max_len) per phase; after the last phase, the last is kept.

    Raises:
        ValueError: a field out of range; the message names the field, its value and what is allowed.

    Example:
        >>> AEConfig(input_dim=300, cell="lstm", hidden=512, attention=True, heads=8)
    """

    input_dim: int = 384
    hidden: int = 64
    bottleneck: int = 16
    cell: str = "rnn"
    attention: bool = False
    heads: int = 8
    loss: str = "mse"
    cosine_weight: float = 0.9
    init: str = "orthogonal"
    lr: float = 1e-3
    clip: float | None = 1.0
    teacher_forcing: str = "per_step"
    curriculum: bool = True
    tf_ratio: float = 0.5
    phases: tuple[tuple[int, float, int | None], ...] = DOCUMENT_PHASES

    def __post_init__(self) -> None:
        for name in ("input_dim", "hidden", "bottleneck", "heads"):
            value = getattr(self, name)
            if not _is_int(value) or value < 1:
                raise ValueError(f"{name}={value!r} is not allowed; allowed: an int >= 1")
        for name, allowed in (("cell", CELLS), ("loss", LOSSES), ("init", INITS),
                              ("teacher_forcing", TEACHER_FORCING)):
            if getattr(self, name) not in allowed:
                raise ValueError(f"{name}={getattr(self, name)!r} is not allowed; allowed: {list(allowed)}")
        for name in ("attention", "curriculum"):
            if not isinstance(getattr(self, name), bool):
                raise ValueError(f"{name}={getattr(self, name)!r} is not allowed; allowed: True or False")
        if self.attention and self.hidden % self.heads:
            raise ValueError(f"heads={self.heads!r} is not allowed with hidden={self.hidden}; "
                             f"allowed: a divisor of hidden")
        for name in ("cosine_weight", "tf_ratio"):
            value = getattr(self, name)
            if not _is_real(value) or not 0.0 <= value <= 1.0:
                raise ValueError(f"{name}={value!r} is not allowed; allowed: a float in [0, 1]")
        if not _is_real(self.lr) or not self.lr > 0:
            raise ValueError(f"lr={self.lr!r} is not allowed; allowed: a float > 0")
        if self.clip is not None and (not _is_real(self.clip) or not self.clip > 0):
            raise ValueError(f"clip={self.clip!r} is not allowed; allowed: a float > 0 or None")
        # Lists (a YAML or JSON round trip) become tuples, so the config stays hashable.
        object.__setattr__(self, "phases", _check_phases(self.phases))

    def to_dict(self) -> dict[str, Any]:
        """Plain values only (checkpoints load with weights_only=True)."""
        return asdict(self)


def _check_phases(phases: Any) -> tuple[tuple[int, float, int | None], ...]:
    if not isinstance(phases, (list, tuple)) or not phases:
        raise ValueError(f"phases={phases!r} is not allowed; allowed: a non-empty sequence of "
                         f"(epochs, ratio, max_len)")
    checked = []
    for phase in phases:
        ok = isinstance(phase, (list, tuple)) and len(phase) == 3
        if ok:
            epochs, ratio, max_len = phase
            ok = (_is_int(epochs) and epochs >= 1 and _is_real(ratio) and 0.0 <= ratio <= 1.0
                  and (max_len is None or (_is_int(max_len) and max_len >= 1)))
        if not ok:
            raise ValueError(f"phases entry {phase!r} is not allowed; allowed: (epochs >= 1, ratio in "
                             f"[0, 1], max_len >= 1 or None)")
        checked.append((int(phase[0]), float(phase[1]), phase[2]))
    return tuple(checked)
