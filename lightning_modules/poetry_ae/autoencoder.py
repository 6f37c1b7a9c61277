"""Document 002's sequence autoencoder: encoder -> 16-d bottleneck -> decoder, and its init."""

from __future__ import annotations

import torch
from torch import nn

from lightning_modules.poetry_ae.config import AEConfig
from lightning_modules.poetry_ae.decoder import SequenceDecoder
from lightning_modules.poetry_ae.encoder import SequenceEncoder

__all__ = ["PoetryAutoencoder", "init_weights", "n_params"]


def n_params(module: nn.Module | None) -> int:
    """Trainable parameters of `module` (0 for None)."""
    return 0 if module is None else sum(p.numel() for p in module.parameters() if p.requires_grad)


def _gate_blocks(weight: torch.Tensor, hidden: int) -> tuple[torch.Tensor, ...]:
    # Recurrent weights stack one (hidden, in) block per gate (RNN 1, GRU 3, LSTM 4).
    return weight.data.split(hidden, dim=0)


@torch.no_grad()
def init_weights(model: nn.Module) -> None:
    """The document's initialization: each gate's recurrent block orthogonal, each gate's input
    block and every Linear weight Xavier-uniform, all biases of these zero.

    The attention's own layers keep `nn.MultiheadAttention`'s initialization (already Xavier
    with zero biases) and LayerNorm its ones/zeros.
    """
    attention = {id(m) for a in model.modules() if isinstance(a, nn.MultiheadAttention) for m in a.modules()}
    for module in model.modules():
        if id(module) in attention:
            continue
        if isinstance(module, (nn.RNNBase, nn.RNNCellBase)):
            for name, param in module.named_parameters():
                if name.startswith("weight_hh"):
                    for block in _gate_blocks(param, module.hidden_size):
                        nn.init.orthogonal_(block)
                elif name.startswith("weight_ih"):
                    for block in _gate_blocks(param, module.hidden_size):
                        nn.init.xavier_uniform_(block)
                elif name.startswith("bias"):
                    nn.init.zeros_(param)
        elif isinstance(module, nn.Linear):
            nn.init.xavier_uniform_(module.weight)
            if module.bias is not None:
                nn.init.zeros_(module.bias)


class PoetryAutoencoder(nn.Module):
    """Word vectors (B, T, D) -> recurrent encoder -> last hidden state -> Linear -> z (B, bottleneck)
    -> recurrent decoder -> reconstruction (B, T, D).

    The document's baseline is config `AEConfig(input_dim=300)` (vanilla RNN, 64 hidden, 16-d z);
    its final model is `AEConfig(cell="lstm", hidden=512, attention=True, heads=8)`.

    With `attention=True` the decoder reads the encoder's whole output sequence at every step, so z
    is no longer the only path from input to output: the reconstruction can bypass the 16-d
    bottleneck, and its quality then says little about what z holds (document 002 does not
    discuss this). Compare latents (`encode`) across models only with that in mind.

    Args:
        config: the architecture (`AEConfig`); kept as `self.config`.

    Example:
        >>> model = PoetryAutoencoder(AEConfig(input_dim=300))
        >>> x = torch.randn(2, 5, 300); mask = torch.ones(2, 5, dtype=torch.bool)
        >>> recon, z = model(x, mask, torch.tensor([5, 5]))
        >>> recon.shape, z.shape
        (torch.Size([2, 5, 300]), torch.Size([2, 16]))
    """

    def __init__(self, config: AEConfig) -> None:
        super().__init__()
        self.config = c = config
        self.encoder = SequenceEncoder(c.input_dim, c.hidden, c.cell)
        self.to_latent = nn.Linear(c.hidden, c.bottleneck)
        self.decoder = SequenceDecoder(c.bottleneck, c.hidden, c.input_dim, c.cell,
                                       c.heads if c.attention else None)
        if c.init == "orthogonal":
            init_weights(self)

    def _encode(self, x: torch.Tensor, lengths: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        outputs, last = self.encoder(x, lengths)
        return outputs, self.to_latent(last)

    def encode(self, x: torch.Tensor, mask: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        """(B, T, D), (B, T), (B,) -> z (B, bottleneck)."""
        return self._encode(x, lengths)[1]

    def forward(self, x: torch.Tensor, mask: torch.Tensor, lengths: torch.Tensor,
                teacher_mask: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        """-> (reconstruction (B, T, D), z (B, bottleneck)); teacher_mask None: no teacher forcing."""
        outputs, z = self._encode(x, lengths)
        recon = self.decoder(z, x, teacher_mask, memory=outputs, memory_mask=mask)
        return recon, z

    def param_counts(self) -> dict[str, int]:
        """Trainable parameters: encoder (recurrent layer), bottleneck (hidden -> z), decoder
        (z -> initial state, recurrent cell, output Linear), attention (heads + LayerNorm), total."""
        attention = self.decoder.attention
        counts = {"encoder": n_params(self.encoder), "bottleneck": n_params(self.to_latent),
                  "decoder": n_params(self.decoder) - n_params(attention), "attention": n_params(attention)}
        counts["total"] = sum(counts.values())
        return counts
