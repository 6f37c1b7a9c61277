"""Document 001's classifier: fixed reservoir -> learned representation -> linear readout.

Two variants share every weight and differ only in `extract_features`:

- `broken` is the document's bug, verbatim in behaviour: the representation stage is always
  put in eval() mode, run under torch.no_grad(), and its output converted to numpy (and back to
  a tensor for the readout). Its parameters are still in the optimizer, but no gradient can
  reach them, so they keep their random initialization for the whole run.
- `fixed` is the document's fixes 1-4: in training the stage runs in train() mode with
  gradients and returns the tensor; in evaluation it runs in eval() mode under no_grad.

Fix 5 (the readout's input size is measured by running a sample through the stages) and fix 6
(parameter counts per component) are in both variants: they change no numbers, they check them.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any, Literal

import numpy as np
import torch
from torch import nn

from lightning_modules.repr_gradflow.representation import RepresentationLearning
from lightning_modules.repr_gradflow.reservoir import EchoStateReservoir

__all__ = ["VARIANTS", "Variant", "ReprNetConfig", "ReprGradflowNet", "ReprGradflowClassifier"]

Variant = Literal["broken", "fixed"]
VARIANTS: tuple[str, ...] = ("broken", "fixed")


@dataclass(frozen=True)
class ReprNetConfig:
    """Architecture of `ReprGradflowNet`.

    Args:
        n_channels: input channels per time step.
        n_classes: readout outputs (document 001: 60).
        variant: `broken` (the document's bug) or `fixed` (its fixes 1-4).
        reservoir_size: reservoir units N (the width of `R_final`).
        spectral_radius: of the reservoir's recurrent matrix.
        input_scaling: of the reservoir's input weights.
        leak: reservoir leak rate.
        reservoir_seed: seeds the fixed reservoir weights.
        conv_channels: output channels per convolution branch.
        kernel_sizes: one convolution branch per kernel size.
        attention_hidden: width of the attention scoring layer.
        dropout: dropout in the representation stage.
        probe_len: length of the zero sequence run through the stages to size the readout.
    """

    n_channels: int = 3
    n_classes: int = 60
    variant: Variant = "fixed"
    reservoir_size: int = 64
    spectral_radius: float = 0.9
    input_scaling: float = 0.5
    leak: float = 0.5
    reservoir_seed: int = 0
    conv_channels: int = 32
    kernel_sizes: tuple[int, ...] = (3, 5, 7)
    attention_hidden: int = 32
    dropout: float = 0.1
    probe_len: int = 16

    def __post_init__(self) -> None:
        if self.variant not in VARIANTS:
            raise ValueError(f"variant={self.variant!r} is not a variant; allowed: {list(VARIANTS)}")
        object.__setattr__(self, "kernel_sizes", tuple(self.kernel_sizes))

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


class ReprGradflowNet(nn.Module):
    """Reservoir states -> multi-scale convolutions + attention pooling -> linear readout.

    Args:
        config: the architecture and the variant.

    Example:
        >>> net = ReprGradflowNet(ReprNetConfig(variant="fixed"))
        >>> net(torch.zeros(4, 100, 3), training=True).shape
        torch.Size([4, 60])
    """

    def __init__(self, config: ReprNetConfig) -> None:
        super().__init__()
        self.config = config
        self.reservoir = EchoStateReservoir(
            config.n_channels, config.reservoir_size, spectral_radius=config.spectral_radius,
            input_scaling=config.input_scaling, leak=config.leak, seed=config.reservoir_seed)
        self.representation_learning = RepresentationLearning(
            config.reservoir_size, config.conv_channels, config.kernel_sizes,
            config.attention_hidden, config.dropout)
        # Fix 5: size the readout from what the stages actually produce.
        self.feature_dim = self._measure_feature_dim()
        self.readout = nn.Linear(self.feature_dim, config.n_classes)

    def _measure_feature_dim(self) -> int:
        was_training = self.representation_learning.training
        self.representation_learning.eval()
        with torch.no_grad():
            probe = torch.zeros(1, self.config.probe_len, self.config.n_channels)
            dim = self.representation_learning(self.reservoir(probe)).shape[-1]
        self.representation_learning.train(was_training)
        return int(dim)

    def extract_features(self, x: torch.Tensor, training: bool = False) -> torch.Tensor | np.ndarray:
        """Features (B, F) of inputs (B, T, C); what the variant does here is the whole point."""
        r_final = self.reservoir(x)
        if self.config.variant == "broken":
            # Document 001's bug: always eval(), always no_grad(), and out to numpy.
            self.representation_learning.eval()
            with torch.no_grad():
                f_final = self.representation_learning(r_final)
            return f_final.cpu().numpy()
        if training:
            # Fixes 1-3: train() mode, gradients on, the tensor itself goes to the readout.
            self.representation_learning.train()
            return self.representation_learning(r_final)
        # Fix 4: evaluation runs the stage in eval() mode without gradients.
        self.representation_learning.eval()
        with torch.no_grad():
            return self.representation_learning(r_final)

    def forward(self, x: torch.Tensor, training: bool | None = None) -> torch.Tensor:
        """Logits (B, n_classes) for inputs (B, T, C); `training` defaults to `self.training`."""
        features = self.extract_features(x, training=self.training if training is None else training)
        if isinstance(features, np.ndarray):
            features = torch.from_numpy(features).to(x.device)
        return self.readout(features)

    def parameter_counts(self) -> dict[str, int]:
        """Fix 6: numbers of trainable parameters per component, and the fixed reservoir's size."""
        def count(module: nn.Module) -> int:
            return sum(p.numel() for p in module.parameters() if p.requires_grad)

        return {
            "reservoir_fixed": sum(b.numel() for b in self.reservoir.buffers()),
            "reservoir": count(self.reservoir),
            "representation": count(self.representation_learning),
            "readout": count(self.readout),
            "trainable": count(self),
        }

    def component_of(self, parameter_name: str) -> str:
        """The component (`reservoir`, `representation`, `readout`) a parameter name belongs to."""
        head = parameter_name.split(".", 1)[0]
        return {"representation_learning": "representation"}.get(head, head)


class ReprGradflowClassifier(nn.Module):
    """The inference path of a trained `ReprGradflowNet`, for export and registration.

    Both variants evaluate the same function: reservoir -> representation (eval mode) ->
    readout. The broken variant's numpy round trip is an exact identity on float32 values but
    cannot be traced by `torch.export`, so the registered model is this view: the same
    modules and weights (shared, not copied), without the round trip.

    Args:
        net: the trained network.
    """

    def __init__(self, net: ReprGradflowNet) -> None:
        super().__init__()
        self.reservoir = net.reservoir
        self.representation_learning = net.representation_learning
        self.readout = net.readout

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Logits (B, n_classes) for inputs (B, T, C)."""
        return self.readout(self.representation_learning(self.reservoir(x)))
