"""Eval/train mix-ups in Flax NNX: `monitor.evaluation(model)` names a dropout that drew random
numbers or batch statistics that changed during evaluation (`model.eval()` forgotten), judged
from the model's state, so a mode decided by an argument at call time is judged right too."""

from __future__ import annotations

import jax.numpy as jnp
import pytest
from flax import nnx

from _jax_models import IN, OUT, data
from mlflow_plugins.jax import watch_jax


class Classifier(nnx.Module):
    def __init__(self, rngs: nnx.Rngs, *, call_time_flag: bool = False) -> None:
        self.dense = nnx.Linear(IN, 32, rngs=rngs)
        self.bn = nnx.BatchNorm(32, rngs=rngs)
        self.drop = nnx.Dropout(0.5, rngs=rngs)
        self.head = nnx.Linear(32, OUT, rngs=rngs)
        self.call_time_flag = call_time_flag

    def __call__(self, x: jnp.ndarray, *, train: bool = True) -> jnp.ndarray:
        h = self.dense(x)
        if self.call_time_flag:  # the Linen habit: the mode passed at call time
            h = self.drop(nnx.relu(self.bn(h, use_running_average=not train)), deterministic=not train)
        else:
            h = self.drop(nnx.relu(self.bn(h)))
        return self.head(h)


@nnx.jit(static_argnames="train")
def _predict(model: Classifier, x: jnp.ndarray, train: bool) -> jnp.ndarray:
    return model(x, train=train)


def _evaluate(model: Classifier, *, call_eval: bool, train_flag: bool = False) -> list:
    params = nnx.state(model, nnx.Param)
    x, _ = data()
    with watch_jax(params, log_every=1) as monitor:
        if call_eval:
            model.eval()
        with monitor.evaluation(model):
            for _ in range(3):
                _predict(model, x, train_flag)
        model.train()
    return monitor.findings


def test_a_forgotten_eval_names_the_dropout_and_the_batch_norm():
    (found,) = _evaluate(Classifier(nnx.Rngs(0)), call_eval=False)
    assert found.code == "EVAL_IN_TRAIN_MODE" and found.evidence["modules"] == "drop, bn"


def test_model_eval_is_healthy():
    assert _evaluate(Classifier(nnx.Rngs(0)), call_eval=True) == []


def test_a_mode_passed_at_call_time_is_judged_by_what_happened():
    healthy = _evaluate(Classifier(nnx.Rngs(0), call_time_flag=True), call_eval=False, train_flag=False)
    assert healthy == []  # the attributes say "training", the calls said otherwise: no finding
    (found,) = _evaluate(Classifier(nnx.Rngs(0), call_time_flag=True), call_eval=False, train_flag=True)
    assert found.code == "EVAL_IN_TRAIN_MODE"


def test_evaluation_needs_the_nnx_model():
    params = nnx.state(Classifier(nnx.Rngs(0)), nnx.Param)
    with watch_jax(params) as monitor:
        with pytest.raises(ValueError, match="model=dict is not allowed"):
            with monitor.evaluation({}):
                pass
