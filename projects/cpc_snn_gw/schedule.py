"""The learning rate over a run: constant (the document's runs), or cosine decay (how the field trains
for a fixed budget of fresh windows: the late, small steps average the gradient noise out)."""

from __future__ import annotations

import optax

from projects.cpc_snn_gw.config import CpcGwConfig

__all__ = ["FINAL_FRACTION", "learning_rate"]

#: Cosine decay ends at this fraction of the peak rate.
FINAL_FRACTION = 0.02


def learning_rate(config: CpcGwConfig, peak: float, steps_per_epoch: int) -> float | optax.Schedule:
    """`peak`, or with `config.lr_schedule` "cosine" a decay from `peak` to FINAL_FRACTION x `peak` over the
    run's `config.n_epochs * steps_per_epoch` updates (the optimizer state counts them: a resumed run
    continues the curve)."""
    if config.lr_schedule == "constant":
        return peak
    return optax.cosine_decay_schedule(peak, decay_steps=max(config.n_epochs * steps_per_epoch, 1),
                                       alpha=FINAL_FRACTION)
