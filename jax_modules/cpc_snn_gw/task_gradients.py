"""Where each loss pushes the CPC encoder, and how much of the spike bridge can pass a gradient.

Document 000 blames "gradient problems (L2 normalization + surrogate grads)" and "multi-task
conflicts (InfoNCE vs classification competing)" for the original model's failure. These
measurements test both on the run itself: the encoder's gradient from the classification loss
alone and from InfoNCE alone, the cosine between the two, and for the spike bridge the firing
rate and the fraction of its inputs close enough to threshold for the surrogate to pass a
gradient (fast sigmoid: |v| < 1 / slope, where it is above a quarter of its peak).
"""

from __future__ import annotations

from typing import Callable

import jax
import jax.numpy as jnp
import optax
from flax import nnx

from .infonce import infonce_loss

TaskProbe = Callable[[nnx.State, nnx.State, jax.Array, jax.Array], dict[str, jax.Array]]


def _subtree_matrix(grads: nnx.State, module: str) -> jax.Array:
    """The gradients of the leaves under `module`, as (tasks, n) rows."""
    leaves = [leaf for path, leaf in jax.tree_util.tree_flatten_with_path(grads)[0]
              if getattr(path[0], "key", None) == module]
    return jnp.concatenate([leaf.reshape(leaf.shape[0], -1) for leaf in leaves], axis=1)


def make_task_probe(graphdef: nnx.GraphDef, module: str = "encoder") -> TaskProbe:
    """A jitted (params, rest, x, y) -> metrics of a CPC classifier on one batch.

    Metrics: `encoder_grad_bce`, and with an InfoNCE predictor `encoder_grad_infonce` and
    `encoder_grad_cosine`; with a spike bridge `spike_rate` and `surrogate_active`.
    """

    def losses(params: nnx.State, rest: nnx.State, x: jax.Array, y: jax.Array) -> tuple[jax.Array, dict]:
        model = nnx.merge(graphdef, params, rest)
        out = model.outputs(x)
        task = [optax.sigmoid_binary_cross_entropy(out.logits, y.astype(jnp.float32)).mean()]
        if out.predictions is not None:
            task.append(infonce_loss(out.predictions, out.latents)[0])
        aux = {}
        if getattr(model, "bridge", None) is not None:
            bridge = model.bridge
            threshold = bridge.threshold[...] if isinstance(bridge.threshold, nnx.Param) else bridge.threshold
            v = out.context - threshold
            aux = {"spike_rate": jnp.mean(v > 0), "surrogate_active": jnp.mean(jnp.abs(v) * bridge.slope < 1.0)}
        nnx.pop(model, nnx.Intermediate)  # probes may sow; nothing here reads it
        return jnp.stack(task), aux

    @jax.jit
    def probe(params: nnx.State, rest: nnx.State, x: jax.Array, y: jax.Array) -> dict[str, jax.Array]:
        grads, aux = jax.jacrev(losses, has_aux=True)(params, rest, x, y)
        g = _subtree_matrix(grads, module)
        norms = jnp.linalg.norm(g, axis=1)
        metrics = {"encoder_grad_bce": norms[0], **aux}
        if g.shape[0] > 1:
            metrics["encoder_grad_infonce"] = norms[1]
            metrics["encoder_grad_cosine"] = jnp.dot(g[0], g[1]) / jnp.maximum(norms[0] * norms[1], 1e-30)
        return metrics

    return probe
