"""Validated rule thresholds, with DESIGN.md's defaults; shared by every framework adapter."""

from __future__ import annotations

import math
from dataclasses import dataclass, fields
from typing import Any, Literal, Mapping

Policy = Literal["warn", "skip_step", "stop"]
POLICIES: tuple[str, ...] = ("warn", "skip_step", "stop")


@dataclass(frozen=True)
class Thresholds:
    """Rule thresholds. Every field is a keyword argument of `watch` and of the callbacks.

    Args:
        never_updated_steps: K, steps without any gradient before GRAD_NEVER_UPDATED.
        vanishing: mean |grad| of a layer below this is GRAD_VANISHING (SageMaker's 1e-7).
        exploding: total or layer gradient L2 norm above this is GRAD_EXPLODING (document 002).
        norm_band_low / norm_band_high: the healthy band of the total norm (document 004).
        norm_band_window: observed steps the total norm must stay outside the band.
        amp_skip_fraction: fraction of skipped steps in a window that is AMP_STEPS_SKIPPED.
        amp_window: steps per AMP window.
        amp_min_scale: a loss scale below this has collapsed.
        norm_grad_ratio: |grad in| / |grad out| below this is NORM_GRAD_ATTENUATION.
        magnitude_cv_ratio: magnitude CV out / in below this (while CV in > magnitude_cv_min)
            is NORM_ERASES_MAGNITUDE.
        magnitude_cv_min: the input CV above which magnitudes are considered informative.
        update_stall_steps: optimizer steps a parameter with a non-vanishing gradient must stay
            unchanged (on every measured step) before UPDATES_NOT_APPLIED.
        update_ratio_min: a relative update ||Δw|| / ||w|| at or below this is "unchanged": a
            float32 weight cannot record a change below ~6e-8 of itself, and a learning rate
            decayed to 0 inside `jit` may keep a rounding residue of ~1e-9.

    Raises:
        ValueError: a value outside its allowed range, naming the argument.
    """

    never_updated_steps: int = 3
    vanishing: float = 1e-7
    exploding: float = 100.0
    norm_band_low: float = 0.1
    norm_band_high: float = 10.0
    norm_band_window: int = 10
    amp_skip_fraction: float = 0.05
    amp_window: int = 100
    amp_min_scale: float = 1.0
    norm_grad_ratio: float = 0.1
    magnitude_cv_ratio: float = 0.1
    magnitude_cv_min: float = 0.2
    update_stall_steps: int = 20
    update_ratio_min: float = 1e-8

    def __post_init__(self) -> None:
        for name in ("never_updated_steps", "norm_band_window", "amp_window", "update_stall_steps"):
            _check_int(name, getattr(self, name), minimum=1)
        for name in ("vanishing", "exploding", "norm_band_low", "norm_band_high", "amp_min_scale",
                     "norm_grad_ratio", "magnitude_cv_ratio", "magnitude_cv_min", "update_ratio_min"):
            _check_positive(name, getattr(self, name))
        _check_positive("amp_skip_fraction", self.amp_skip_fraction)
        if not self.amp_skip_fraction < 1.0:
            raise ValueError(f"amp_skip_fraction={self.amp_skip_fraction!r} is out of range; "
                             "allowed: a number strictly between 0 and 1")
        if self.norm_band_low >= self.norm_band_high:
            raise ValueError(f"norm_band_low={self.norm_band_low!r} must be below "
                             f"norm_band_high={self.norm_band_high!r}")

    @classmethod
    def from_kwargs(cls, kwargs: Mapping[str, Any]) -> "Thresholds":
        """Thresholds from keyword arguments, rejecting unknown names with the allowed list."""
        allowed = [f.name for f in fields(cls)]
        unknown = sorted(set(kwargs) - set(allowed))
        if unknown:
            raise ValueError(f"unknown threshold(s) {unknown}; allowed: {allowed}")
        return cls(**kwargs)


def check_policy(policy: object) -> Policy:
    """The policy on critical findings, validated."""
    if policy not in POLICIES:
        raise ValueError(f"policy={policy!r} is not a policy; allowed: {list(POLICIES)}")
    return policy  # type: ignore[return-value]


def check_log_every(log_every: object) -> int:
    """The log interval in optimizer steps, validated."""
    _check_int("log_every", log_every, minimum=1)
    return int(log_every)  # type: ignore[arg-type]


def _check_int(name: str, value: object, *, minimum: int) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise ValueError(f"{name}={value!r} is out of range; allowed: an integer >= {minimum}")


def _check_positive(name: str, value: object) -> None:
    ok = isinstance(value, (int, float)) and not isinstance(value, bool)
    if not ok or not math.isfinite(value) or value <= 0:  # type: ignore[arg-type]
        raise ValueError(f"{name}={value!r} is out of range; allowed: a finite number > 0")
