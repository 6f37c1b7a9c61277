"""Precision modes of document 003's runs, and the Lightning Trainer settings that realize them.

- `fp32`: no autocast.
- `fp16`: float16 autocast around the whole training step, with a `torch.amp.GradScaler`
  (the note's failing setting). Lightning 2.6 silently turns `Trainer(precision="16-mixed")` on
  a CPU into bfloat16, so fp16 is requested with an explicit `MixedPrecision` plugin.
- `bf16`: bfloat16 autocast around the whole step (the note's "test bfloat16 instead").
- `bf16_real_only`: the note's "selective AMP": bfloat16 autocast only inside the real-valued
  sub-networks (`RealNet`), whose outputs come back as float32; every complex tensor stays
  complex64. The Trainer runs in plain fp32.
"""

from __future__ import annotations

from typing import Any, Literal

import torch
from lightning.pytorch.plugins import MixedPrecision

__all__ = ["PRECISION_MODES", "PrecisionMode", "trainer_precision", "trainer_precision_name",
           "real_autocast_dtype"]

PrecisionMode = Literal["fp32", "fp16", "bf16", "bf16_real_only"]
PRECISION_MODES: tuple[str, ...] = ("fp32", "fp16", "bf16", "bf16_real_only")

_TRAINER_PRECISION = {"fp32": "32-true", "fp16": "16-mixed", "bf16": "bf16-mixed",
                      "bf16_real_only": "32-true"}


def check_precision_mode(mode: str) -> str:
    """`mode`, or ValueError naming it and the allowed modes."""
    if mode not in PRECISION_MODES:
        raise ValueError(f"precision_mode={mode!r} is not allowed; allowed: {list(PRECISION_MODES)}")
    return mode


def trainer_precision_name(mode: str) -> str:
    """The `precision` string the Trainer's precision plugin must report for `mode`."""
    return _TRAINER_PRECISION[check_precision_mode(mode)]


def trainer_precision(mode: str, device: str = "cpu") -> dict[str, Any]:
    """Keyword arguments for `lightning.Trainer` that realize `mode` on `device` ("cpu"/"cuda").

    Example:
        >>> trainer = L.Trainer(accelerator="cpu", **trainer_precision("fp16"))
    """
    check_precision_mode(mode)
    if mode == "fp16":
        scaler = torch.amp.GradScaler(device)
        return {"plugins": [MixedPrecision("16-mixed", device, scaler=scaler)]}
    return {"precision": _TRAINER_PRECISION[mode]}


def real_autocast_dtype(mode: str) -> torch.dtype | None:
    """The autocast dtype of the real-valued sub-networks: bfloat16 for selective AMP, else None
    (they follow whatever autocast surrounds them)."""
    return torch.bfloat16 if check_precision_mode(mode) == "bf16_real_only" else None
