"""ModelConfig: every architectural choice of document 000's models, validated on construction."""

from __future__ import annotations

from dataclasses import dataclass, fields
from typing import Literal

ModelKind = Literal["cpc_snn", "cpc", "aresgw"]
KINDS: tuple[str, ...] = ("cpc_snn", "cpc", "aresgw")
POOLS: tuple[str, ...] = ("mean", "max")
NORMS: tuple[str, ...] = ("group", "none")


@dataclass(frozen=True)
class ModelConfig:
    """One model of document 000.

    `kind` picks the assembly: "cpc_snn" (CPC encoder -> spike bridge -> LIF SNN -> logit),
    "cpc" (CPC encoder -> direct classifier, through the spike bridge with `spike_bridge`) or
    "aresgw" (DAIN -> 1-D ResNet -> direct classifier).
    Fields a kind does not use are ignored by it (and still validated).

    Raises:
        ValueError: a field outside its allowed range (the message names the field).
    """

    kind: ModelKind = "cpc"
    sample_rate: float = 2048.0          # Hz; sets the SNN time step dt = total stride / sample_rate
    in_channels: int = 2                 # detectors (H1, L1)
    # CPC encoder: strided convolutions (GELU), then a stride-1 projection to latent_dim.
    encoder_widths: tuple[int, ...] = (32, 64, 64, 128)
    encoder_strides: tuple[int, ...] = (4, 2, 2, 2)   # total stride 32: 2048 samples -> 64 latents
    latent_dim: int = 64                 # document: 64 (original) vs 256 (fixed)
    context_dim: int = 128               # GRU context size
    l2_normalize: bool = False           # document 000's bug #2: z / (|z| + eps)
    infonce_weight: float = 0.0          # 0 = single-task BCE; > 0 adds weight * InfoNCE
    prediction_steps: int = 4            # InfoNCE predicts z_{t+1} .. z_{t+k}
    # Spike bridge + LIF SNN (kind "cpc_snn"; kind "cpc" can take the bridge alone).
    spike_bridge: bool = False           # kind "cpc": spikes, not the context, reach the direct head
    spike_threshold: float = 0.0         # initial spike-bridge threshold
    learnable_threshold: bool = True
    surrogate_slope: float = 10.0        # fast-sigmoid surrogate: 1 / (1 + slope |v|)^2
    snn_hidden: tuple[int, ...] = (128,)
    tau: float = 0.02                    # membrane time constant [s]
    snn_threshold: float = 1.0           # LIF firing threshold
    # Direct classifier head.
    head_pool: Literal["mean", "max"] = "max"
    # AResGW-style ResNet (kind "aresgw").
    resnet_stem_width: int = 32
    resnet_stem_stride: int = 4
    resnet_widths: tuple[int, ...] = (32, 64, 128, 128)   # one stage each, every stage halves T
    resnet_blocks: int = 1               # residual blocks per stage
    resnet_kernel: int = 7
    resnet_norm: Literal["group", "none"] = "group"

    def __post_init__(self) -> None:
        for f in fields(self):
            if isinstance(getattr(self, f.name), list):  # accept lists from YAML, keep hashable
                object.__setattr__(self, f.name, tuple(getattr(self, f.name)))
        _choice("kind", self.kind, KINDS)
        _choice("head_pool", self.head_pool, POOLS)
        _choice("resnet_norm", self.resnet_norm, NORMS)
        _positive_number("sample_rate", self.sample_rate)
        _positive_number("tau", self.tau)
        _positive_number("snn_threshold", self.snn_threshold)
        _positive_number("surrogate_slope", self.surrogate_slope)
        _number("spike_threshold", self.spike_threshold)
        if isinstance(self.infonce_weight, bool) or not isinstance(self.infonce_weight, (int, float)) \
                or not self.infonce_weight >= 0:
            raise ValueError(f"infonce_weight={self.infonce_weight!r} is out of range; allowed: a number >= 0")
        if self.infonce_weight > 0 and self.kind == "aresgw":
            raise ValueError("infonce_weight > 0 needs a CPC encoder; allowed with kind 'cpc' or 'cpc_snn', "
                             "got kind 'aresgw'")
        for name in ("in_channels", "latent_dim", "context_dim", "prediction_steps", "resnet_stem_width",
                     "resnet_stem_stride", "resnet_blocks", "resnet_kernel"):
            _positive_int(name, getattr(self, name))
        for name in ("encoder_widths", "encoder_strides", "snn_hidden", "resnet_widths"):
            _positive_ints(name, getattr(self, name))
        if len(self.encoder_strides) != len(self.encoder_widths):
            raise ValueError(f"encoder_strides={self.encoder_strides!r} has {len(self.encoder_strides)} entries; "
                             f"allowed: one per encoder_widths entry ({len(self.encoder_widths)})")
        for name in ("l2_normalize", "learnable_threshold", "spike_bridge"):
            if not isinstance(getattr(self, name), bool):
                raise ValueError(f"{name}={getattr(self, name)!r} is not allowed; allowed: True or False")

    @property
    def encoder_stride(self) -> int:
        """Input samples per latent step."""
        total = 1
        for s in self.encoder_strides:
            total *= s
        return total

    @property
    def latent_dt(self) -> float:
        """Seconds between latent steps: the SNN's time step."""
        return self.encoder_stride / self.sample_rate


def _choice(name: str, value: object, allowed: tuple[str, ...]) -> None:
    if value not in allowed:
        raise ValueError(f"{name}={value!r} is not allowed; allowed: {', '.join(map(repr, allowed))}")


def _number(name: str, value: object) -> None:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or value != value:
        raise ValueError(f"{name}={value!r} is not allowed; allowed: a finite number")


def _positive_number(name: str, value: object) -> None:
    _number(name, value)
    if not 0 < value < float("inf"):  # type: ignore[operator]
        raise ValueError(f"{name}={value!r} is out of range; allowed: a finite number > 0")


def _positive_int(name: str, value: object) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValueError(f"{name}={value!r} is out of range; allowed: an integer >= 1")


def _positive_ints(name: str, value: object) -> None:
    if not isinstance(value, tuple) or not value or \
            any(isinstance(v, bool) or not isinstance(v, int) or v < 1 for v in value):
        raise ValueError(f"{name}={value!r} is not allowed; allowed: a non-empty tuple of integers >= 1")
