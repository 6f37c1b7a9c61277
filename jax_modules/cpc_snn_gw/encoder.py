"""CPC encoder: strided 1-D convolutions to latents z, optional L2 normalization, GRU context c."""

from __future__ import annotations

import jax
import jax.numpy as jnp
from flax import nnx

from mlflow_plugins.jax.modules import L2Normalize


class CPCEncoder(nnx.Module):
    """(B, T, C) channels-last strain -> latents z (B, S, latent_dim) and context c (B, S, context_dim).

    Each strided convolution (kernel 2 * stride, GELU) shortens time by its stride; a kernel-3
    projection without activation gives z, so z keeps its sign and magnitude. With
    `l2_normalize`, z is divided by its norm per step (document 000's bug #2); the normalization is
    the submodule `self.l2` (None when off) so diagnostics can find and probe it. A GRU over z
    gives the autoregressive context c_t, which has seen z_1 .. z_t.

    Args:
        in_channels: C.
        widths / strides: one convolution per entry; S = ceil(T / prod(strides)).
        latent_dim / context_dim: sizes of z and c.
        l2_normalize: normalize each z_t to unit L2 norm.
    """

    def __init__(self, in_channels: int, widths: tuple[int, ...], strides: tuple[int, ...], *,
                 latent_dim: int, context_dim: int, l2_normalize: bool, rngs: nnx.Rngs) -> None:
        if len(widths) != len(strides):
            raise ValueError(f"strides has {len(strides)} entries; allowed: one per width ({len(widths)})")
        sizes = (in_channels, *widths)
        self.convs = nnx.List([
            nnx.Conv(a, b, kernel_size=2 * s, strides=s, padding="SAME", rngs=rngs)
            for a, b, s in zip(sizes[:-1], sizes[1:], strides)])
        self.project = nnx.Conv(sizes[-1], latent_dim, kernel_size=3, padding="SAME", rngs=rngs)
        self.l2 = L2Normalize() if l2_normalize else None
        self.context_dim = context_dim
        self.gru = nnx.GRUCell(latent_dim, context_dim, rngs=rngs)

    def encode(self, x: jax.Array) -> jax.Array:
        """Latents z (B, S, latent_dim) of x (B, T, C)."""
        for conv in self.convs:
            x = nnx.gelu(conv(x))
        z = self.project(x)
        return self.l2(z) if self.l2 is not None else z

    def contextualize(self, z: jax.Array) -> jax.Array:
        """Context c (B, S, context_dim): the GRU's state after each latent step."""

        # A plain lax.scan (not nnx.RNN's nnx.scan) only reads the cell's parameters, so the model
        # also works when closed over by jax.jit / jax.grad instead of being split and merged.
        def step(h: jax.Array, z_t: jax.Array) -> tuple[jax.Array, jax.Array]:
            h, _ = self.gru(h, z_t)
            return h, h

        h0 = jnp.zeros((z.shape[0], self.context_dim), z.dtype)
        _, c = jax.lax.scan(step, h0, jnp.swapaxes(z, 0, 1))
        return jnp.swapaxes(c, 0, 1)

    def __call__(self, x: jax.Array) -> tuple[jax.Array, jax.Array]:
        z = self.encode(x)
        return z, self.contextualize(z)
