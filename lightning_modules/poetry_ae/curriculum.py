"""Document 002's curriculum: teacher-forcing ratio and maximum length per epoch, and the masks."""

from __future__ import annotations

from typing import NamedTuple, Sequence

import torch

from lightning_modules.poetry_ae.config import AEConfig

__all__ = ["Phase", "Curriculum", "teacher_mask"]


class Phase(NamedTuple):
    """What one epoch trains with: the teacher-forcing ratio and the length sequences are cut to."""

    ratio: float
    max_len: int | None


def teacher_mask(batch: int, steps: int, ratio: float, generator: torch.Generator,
                 per_step: bool = True) -> torch.Tensor:
    """Where the decoder gets the true previous vector (True) instead of its own prediction.

    Args:
        batch: sequences in the batch.
        steps: time steps.
        ratio: probability of teacher forcing.
        generator: the (CPU) generator the coins come from; the only source of randomness.
        per_step: one independent coin per sample and step (the document's fix); False: one coin
            for the whole batch, broadcast to every step (the document's bug).

    Returns:
        A bool tensor (batch, steps) on the generator's device.

    Raises:
        ValueError: ratio outside [0, 1] or a negative size.
    """
    if not 0.0 <= ratio <= 1.0:
        raise ValueError(f"ratio={ratio!r} is not allowed; allowed: a float in [0, 1]")
    if batch < 0 or steps < 0:
        raise ValueError(f"batch={batch!r}, steps={steps!r} are not allowed; allowed: ints >= 0")
    if per_step:
        return torch.rand(batch, steps, generator=generator, device=generator.device) < ratio
    coin = torch.rand(1, 1, generator=generator, device=generator.device) < ratio
    return coin.expand(batch, steps).clone()


class Curriculum:
    """A schedule of phases, each (epochs, ratio, max_len); after the last phase, the last is kept.

    Epochs are counted from 0, as Lightning counts them: the document's epoch 1 is epoch 0.

    Args:
        phases: (epochs in the phase, teacher-forcing ratio, max length or None) per phase.

    Example:
        >>> c = Curriculum(((7, 0.9, 20), (8, 0.7, 30)))
        >>> c.at(7)
        Phase(ratio=0.7, max_len=30)
    """

    teacher_mask = staticmethod(teacher_mask)

    def __init__(self, phases: Sequence[tuple[int, float, int | None]]) -> None:
        if not phases:
            raise ValueError("phases=() is not allowed; allowed: at least one (epochs, ratio, max_len)")
        self.phases = tuple((int(n), float(r), m) for n, r, m in phases)
        for n, r, m in self.phases:
            if n < 1 or not 0.0 <= r <= 1.0 or (m is not None and m < 1):
                raise ValueError(f"phase {(n, r, m)!r} is not allowed; allowed: (epochs >= 1, ratio in "
                                 f"[0, 1], max_len >= 1 or None)")

    @classmethod
    def from_config(cls, config: AEConfig) -> "Curriculum":
        """The config's phases, or one endless phase at `tf_ratio` with no length limit."""
        if config.curriculum:
            return cls(config.phases)
        return cls(((1, config.tf_ratio, None),))

    def at(self, epoch: int) -> Phase:
        """The phase of 0-based `epoch`."""
        if epoch < 0:
            raise ValueError(f"epoch={epoch!r} is not allowed; allowed: an int >= 0")
        end = 0
        for n, ratio, max_len in self.phases:
            end += n
            if epoch < end:
                return Phase(ratio, max_len)
        return Phase(self.phases[-1][1], self.phases[-1][2])
