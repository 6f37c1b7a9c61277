"""The autoregressive decoder: z -> initial state -> one recurrent step per output word vector,
optionally with multi-head attention over the encoder's outputs (the document's final model)."""

from __future__ import annotations

import torch
from torch import nn

__all__ = ["SequenceDecoder", "EncoderAttention", "RNN_CELLS"]

RNN_CELLS: dict[str, type[nn.RNNCellBase]] = {"rnn": nn.RNNCell, "lstm": nn.LSTMCell, "gru": nn.GRUCell}


class EncoderAttention(nn.Module):
    """Decoder state attends over the encoder's per-step outputs; residual + LayerNorm.

    query = decoder hidden state at step t (B, hidden); keys = values = encoder outputs
    (B, T, hidden), padding masked out. `nn.MultiheadAttention` projects query, keys and values
    itself, with scaled dot products (the document's sqrt(d_k) "temperature").

    Args:
        hidden: width of decoder state and encoder outputs.
        heads: attention heads (divides hidden).
    """

    def __init__(self, hidden: int, heads: int) -> None:
        super().__init__()
        self.attn = nn.MultiheadAttention(hidden, heads, batch_first=True)
        self.norm = nn.LayerNorm(hidden)

    def forward(self, h: torch.Tensor, memory: torch.Tensor, memory_mask: torch.Tensor) -> torch.Tensor:
        """(B, hidden), (B, T, hidden), (B, T) bool real tokens -> (B, hidden)."""
        context, _ = self.attn(h[:, None], memory, memory, key_padding_mask=~memory_mask, need_weights=False)
        return self.norm(h + context[:, 0])


class SequenceDecoder(nn.Module):
    """z -> Linear -> initial hidden state (and cell state for an LSTM); step t reads the previous
    target vector (teacher forcing) or its own previous prediction, step 0 reads zeros; each
    step's state (attended, if `heads`) -> Linear -> a D-dimensional word vector.

    Predictions fed back are not detached: the gradient flows through them, as in BPTT.

    Args:
        bottleneck: width of z.
        hidden: recurrent width.
        output_dim: word-vector dimension D.
        cell: "rnn", "lstm" or "gru".
        heads: attention heads, or None for the document's plain sequential decoder.
    """

    def __init__(self, bottleneck: int, hidden: int, output_dim: int, cell: str,
                 heads: int | None = None) -> None:
        super().__init__()
        self.n_states = 2 if cell == "lstm" else 1
        self.init_state = nn.Linear(bottleneck, hidden * self.n_states)
        self.cell = RNN_CELLS[cell](output_dim, hidden)
        self.attention = EncoderAttention(hidden, heads) if heads else None
        self.out = nn.Linear(hidden, output_dim)

    def forward(self, z: torch.Tensor, target: torch.Tensor, teacher_mask: torch.Tensor | None = None,
                memory: torch.Tensor | None = None, memory_mask: torch.Tensor | None = None) -> torch.Tensor:
        """z (B, bottleneck), target (B, T, D), teacher_mask (B, T) bool or None -> (B, T, D).

        teacher_mask[:, t] picks the input of step t >= 1 (column 0 is unused: step 0 reads
        zeros); None is pure autoregression. `target` only supplies T and the teacher inputs.
        """
        B, T, D = target.shape
        if self.attention is not None and (memory is None or memory_mask is None):
            raise ValueError("memory and memory_mask are required: this decoder attends over the encoder")
        state = self.init_state(z)
        h, c = state.chunk(2, dim=-1) if self.n_states == 2 else (state, None)
        inp = target.new_zeros(B, D)
        outputs = []
        for t in range(T):
            if t > 0:
                inp = outputs[-1]
                if teacher_mask is not None:
                    inp = torch.where(teacher_mask[:, t, None], target[:, t - 1], inp)
            if c is None:
                h = self.cell(inp, h)
            else:
                h, c = self.cell(inp, (h, c))
            read = h if self.attention is None else self.attention(h, memory, memory_mask)
            outputs.append(self.out(read))
        return torch.stack(outputs, dim=1)
