"""The recurrent encoder: word vectors (B, T, D) -> per-step outputs and the last hidden state."""

from __future__ import annotations

import torch
from torch import nn
from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence

__all__ = ["SequenceEncoder", "RNN_LAYERS"]

RNN_LAYERS: dict[str, type[nn.RNNBase]] = {"rnn": nn.RNN, "lstm": nn.LSTM, "gru": nn.GRU}


class SequenceEncoder(nn.Module):
    """One batch-first recurrent layer run over the packed sequences (padding never enters it).

    Args:
        input_dim: word-vector dimension D.
        hidden: recurrent width.
        cell: "rnn" (tanh), "lstm" or "gru".

    Example:
        >>> enc = SequenceEncoder(300, 64, "rnn")
        >>> outputs, last = enc(torch.randn(2, 5, 300), torch.tensor([5, 3]))
        >>> outputs.shape, last.shape
        (torch.Size([2, 5, 64]), torch.Size([2, 64]))
    """

    def __init__(self, input_dim: int, hidden: int, cell: str) -> None:
        super().__init__()
        self.rnn = RNN_LAYERS[cell](input_dim, hidden, num_layers=1, batch_first=True)

    def forward(self, x: torch.Tensor, lengths: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(B, T, D), (B,) -> outputs (B, T, hidden), zero past each length; last state (B, hidden)."""
        packed = pack_padded_sequence(x, lengths.detach().cpu(), batch_first=True, enforce_sorted=False)
        out, state = self.rnn(packed)
        outputs, _ = pad_packed_sequence(out, batch_first=True, total_length=x.shape[1])
        h_n = state[0] if isinstance(state, tuple) else state  # LSTM: (h, c)
        return outputs, h_n[-1]
