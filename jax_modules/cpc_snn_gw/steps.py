"""Functional jitted train / eval / predict steps over (graphdef, params, rest).

Splitting once and merging inside `jax.jit` avoids nnx.jit's graph traversal on every call,
which dominates step time on a CPU. `rest` is all non-Param state (empty for these models).
"""

from __future__ import annotations

from typing import Any, Callable

import jax
import jax.numpy as jnp
import numpy as np
import optax
from flax import nnx

from .infonce import infonce_loss

Metrics = dict[str, jax.Array]
TrainStep = Callable[[nnx.State, nnx.State, Any, jax.Array, jax.Array],
                     tuple[nnx.State, Any, Metrics, nnx.State]]


def split_model(model: nnx.Module) -> tuple[nnx.GraphDef, nnx.State, nnx.State]:
    """(graphdef, params, rest): the model's structure, its nnx.Param state, everything else."""
    return nnx.split(model, nnx.Param, ...)


def _check_weight(infonce_weight: float) -> float:
    if isinstance(infonce_weight, bool) or not isinstance(infonce_weight, (int, float)) \
            or not 0 <= infonce_weight < float("inf"):
        raise ValueError(f"infonce_weight={infonce_weight!r} is out of range; allowed: a finite number >= 0")
    return float(infonce_weight)


def _loss_and_metrics(model: nnx.Module, x: jax.Array, y: jax.Array,
                      infonce_weight: float) -> tuple[jax.Array, Metrics]:
    """BCE of the logits (+ infonce_weight * InfoNCE), and scalar metrics of the batch."""
    out = model.outputs(x)
    labels = y.astype(jnp.float32)
    bce = optax.sigmoid_binary_cross_entropy(out.logits, labels).mean()
    metrics = {"bce": bce, "acc": jnp.mean((out.logits > 0) == (labels > 0.5))}
    loss = bce
    if infonce_weight > 0:
        if out.predictions is None:  # raised while tracing, before anything runs
            raise ValueError(f"infonce_weight={infonce_weight!r} needs a model built with infonce_weight > 0 "
                             f"(a CPC model with a FuturePredictor); allowed for this model: 0")
        nce, nce_acc = infonce_loss(out.predictions, out.latents)
        loss = bce + infonce_weight * nce
        metrics |= {"infonce": nce, "infonce_acc": nce_acc}
    return loss, {"loss": loss, **metrics}


def make_train_step(graphdef: nnx.GraphDef, tx: optax.GradientTransformation,
                    infonce_weight: float = 0.0) -> TrainStep:
    """A jitted step (params, rest, opt_state, x, y) -> (params, opt_state, metrics, intermediates).

    metrics: scalars "loss", "bce", "acc" (and "infonce", "infonce_acc" when infonce_weight > 0).
    intermediates: the nnx.Intermediate state sowed during the forward pass (may be empty).

    Example:
        graphdef, params, rest = split_model(model)
        tx = optax.adam(5e-5); opt_state = tx.init(params)
        step = make_train_step(graphdef, tx)
        params, opt_state, metrics, inter = step(params, rest, opt_state, x, y)
    """
    weight = _check_weight(infonce_weight)

    def loss_fn(params: nnx.State, rest: nnx.State, x: jax.Array, y: jax.Array):
        model = nnx.merge(graphdef, params, rest)
        loss, metrics = _loss_and_metrics(model, x, y, weight)
        intermediates = nnx.pop(model, nnx.Intermediate)
        return loss, (metrics, intermediates)

    @jax.jit
    def train_step(params, rest, opt_state, x, y):
        (_, (metrics, inter)), grads = jax.value_and_grad(loss_fn, has_aux=True)(params, rest, x, y)
        updates, opt_state = tx.update(grads, opt_state, params)
        params = optax.apply_updates(params, updates)
        return params, opt_state, metrics, inter

    return train_step


def make_eval_step(graphdef: nnx.GraphDef,
                   infonce_weight: float = 0.0) -> Callable[[nnx.State, nnx.State, jax.Array, jax.Array], Metrics]:
    """A jitted (params, rest, x, y) -> metrics, the train step's metrics without an update."""
    weight = _check_weight(infonce_weight)

    @jax.jit
    def eval_step(params, rest, x, y):
        return _loss_and_metrics(nnx.merge(graphdef, params, rest), x, y, weight)[1]

    return eval_step


def make_predict(graphdef: nnx.GraphDef) -> Callable[[nnx.State, nnx.State, jax.Array], jax.Array]:
    """A jitted (params, rest, x) -> probabilities (B,) = sigmoid(logit)."""

    @jax.jit
    def predict(params, rest, x):
        return jax.nn.sigmoid(nnx.merge(graphdef, params, rest)(x))

    return predict


def predict_in_batches(predict: Callable[[nnx.State, nnx.State, jax.Array], jax.Array], params: nnx.State,
                       rest: nnx.State, x: np.ndarray, batch: int = 256) -> np.ndarray:
    """`predict` over every window of x in batches of `batch` (the tail zero-padded, so one
    compiled shape serves any N); float32 (N,)."""
    x = np.asarray(x, dtype=np.float32)
    out = [np.zeros(0, np.float32)]
    for start in range(0, len(x), batch):
        chunk = x[start:start + batch]
        padded = np.concatenate([chunk, np.zeros((batch - len(chunk), *chunk.shape[1:]), np.float32)])
        out.append(np.asarray(predict(params, rest, padded), dtype=np.float32)[:len(chunk)])
    return np.concatenate(out)
