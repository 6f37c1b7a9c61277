"""Eval/train mix-ups: dropout or batch norm left in training mode during evaluation, random
evaluation outputs, evaluation that changes running statistics, spectral normalization evaluated
before its first training forward. Each planted bug is written the way users write it; the same
model done right (and a model with nothing mode-dependent) gives none of these findings."""

from __future__ import annotations

import warnings
from typing import Any, Callable

import lightning.pytorch as pl
import mlflow
import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch import nn
from torch.nn.utils import parametrizations

import mlflow_plugins
from _models import codes, mlp
from mlflow_plugins import EvalModeCallback, Severity
from mlflow_plugins.analysis import EvalCheck, EvalMode, RuleSet

EVAL_CODES = {"EVAL_IN_TRAIN_MODE", "EVAL_NOT_DETERMINISTIC", "EVAL_UPDATES_STATISTICS", "EVAL_BEFORE_INIT"}


# models ---------------------------------------------------------------------------------------

class DropoutBN(nn.Module):
    """An MLP with batch norm and dropout: everything `.eval()` must switch."""

    def __init__(self) -> None:
        super().__init__()
        self.fc = nn.Linear(16, 32)
        self.bn = nn.BatchNorm1d(32)
        self.drop = nn.Dropout(0.3)
        self.out = nn.Linear(32, 4)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.out(self.drop(F.relu(self.bn(self.fc(x)))))


class FunctionalDropout(nn.Module):
    """`F.dropout(h, 0.5)` is always on (training defaults to True); right: training=self.training."""

    def __init__(self, right: bool = False) -> None:
        super().__init__()
        self.fc, self.out, self.right = nn.Linear(16, 32), nn.Linear(32, 4), right

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = F.relu(self.fc(x))
        h = F.dropout(h, 0.5, training=self.training) if self.right else F.dropout(h, 0.5)
        return self.out(h)


class Blocks(nn.Module):
    """Residual blocks with dropout, kept in a plain Python list (the bug) or an nn.ModuleList."""

    def __init__(self, module_list: bool = False) -> None:
        super().__init__()
        blocks = [nn.Sequential(nn.Linear(16, 16), nn.ReLU(), nn.Dropout(0.2)) for _ in range(2)]
        self.blocks = nn.ModuleList(blocks) if module_list else blocks
        self.out = nn.Linear(16, 4)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for block in self.blocks:
            x = x + block(x)
        return self.out(x)


class FunctionalBatchNorm(nn.Module):
    """A hand-written batch norm that always normalizes with batch statistics and updates its
    running ones (`training=True` copied from a training loop); right: training=self.training."""

    def __init__(self, right: bool = False) -> None:
        super().__init__()
        self.fc, self.out, self.right = nn.Linear(16, 32), nn.Linear(32, 4), right
        self.register_buffer("running_mean", torch.zeros(32))
        self.register_buffer("running_var", torch.ones(32))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = F.batch_norm(self.fc(x), self.running_mean, self.running_var,
                         training=self.training if self.right else True)
        return self.out(F.relu(h))


class Encoder(nn.Module):
    """Freezes its batch-norm statistics by overriding `train()`; the bug drops `mode`, so
    `.eval()` (which is `train(False)`) switches everything back to training."""

    def __init__(self, passes_mode: bool = False) -> None:
        super().__init__()
        self.body = nn.Sequential(nn.Linear(16, 32), nn.BatchNorm1d(32), nn.ReLU(), nn.Dropout(0.3))
        self.passes_mode = passes_mode

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.body(x)

    def train(self, mode: bool = True) -> "Encoder":
        super().train(mode) if self.passes_mode else super().train()
        self.body[1].eval()  # frozen statistics, in both modes
        return self


class WithEncoder(nn.Module):
    def __init__(self, passes_mode: bool = False) -> None:
        super().__init__()
        self.encoder, self.head = Encoder(passes_mode), nn.Linear(32, 4)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.encoder(x))


class StatefulRNN(nn.Module):
    """Carries its hidden state from batch to batch (truncated backpropagation through time),
    rebinding `self.hidden` each forward: repeating a forward must not move it on."""

    def __init__(self) -> None:
        super().__init__()
        self.rnn, self.out, self.hidden = nn.GRU(4, 16, batch_first=True), nn.Linear(16, 4), None

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # x: (B, 16) read as 4 steps of 4
        carried = self.hidden if self.hidden is not None and self.hidden.shape[1] == x.shape[0] else None
        out, self.hidden = self.rnn(x.view(x.shape[0], 4, 4), carried)
        self.hidden = self.hidden.detach()
        return self.out(out[:, -1])


def discriminator(parametrized: bool = False) -> nn.Module:
    """A spectral-norm discriminator (SN-GAN style), torch's old hook or the parametrization."""
    sn = parametrizations.spectral_norm if parametrized else nn.utils.spectral_norm
    torch.manual_seed(0)
    return nn.Sequential(sn(nn.Linear(16, 64)), nn.LeakyReLU(0.2), sn(nn.Linear(64, 64)),
                         nn.LeakyReLU(0.2), sn(nn.Linear(64, 4)))


def data(n: int = 32, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(n, 16, generator=g)
    return x, x[:, :4].argmax(1)


# plain PyTorch ------------------------------------------------------------------------------------

def evaluate(model: nn.Module, x: torch.Tensor, y: torch.Tensor) -> float:
    """The usual evaluation: batches under no_grad, a loss summed on the host."""
    with torch.no_grad():
        return sum(float(F.cross_entropy(model(xb), yb)) for xb, yb in zip(x.split(16), y.split(16)))


def train_and_evaluate(model: nn.Module, *, steps: int = 2, eval_first: bool = False,
                       call_eval: bool = True) -> Any:
    """A plain loop that evaluates under `monitor.evaluation()`: calling `model.eval()` first
    (right) or not (`call_eval=False`), before training (`eval_first`) or after it."""
    torch.manual_seed(0)
    x, y = data()
    opt = torch.optim.SGD(model.parameters(), lr=0.05) if list(model.parameters()) else \
        torch.optim.SGD([nn.Parameter(torch.zeros(1))], lr=0.05)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # the console lines of the findings
        with mlflow_plugins.watch(model, opt, log_every=1) as monitor:
            def validate() -> None:
                if call_eval:
                    model.eval()
                with monitor.evaluation():
                    evaluate(model, x, y)
                model.train()

            if eval_first:
                validate()
            for _ in range(steps):
                opt.zero_grad()
                F.cross_entropy(model(x), y).backward()
                opt.step()
            validate()
    return monitor


def found(monitor: Any) -> dict[str, Any]:
    return {f.code: f for f in monitor.findings if f.code in EVAL_CODES}


PLAIN = [  # (planted bug, its code, what it names) and the same model done right
    pytest.param(lambda: DropoutBN(), {"call_eval": False}, "EVAL_IN_TRAIN_MODE", "bn, drop",
                 id="no-model.eval-under-no_grad"),
    pytest.param(lambda: FunctionalDropout(), {}, "EVAL_NOT_DETERMINISTIC", None, id="F.dropout-default-training"),
    pytest.param(lambda: Blocks(), {}, "EVAL_IN_TRAIN_MODE", "blocks[0].2, blocks[1].2", id="plain-list-of-blocks"),
    pytest.param(lambda: FunctionalBatchNorm(), {}, "EVAL_UPDATES_STATISTICS",
                 "FunctionalBatchNorm.running_mean, FunctionalBatchNorm.running_var",
                 id="functional-batch-norm-training-True"),
    pytest.param(lambda: discriminator(), {"eval_first": True}, "EVAL_BEFORE_INIT", "0, 2, 4",
                 id="spectral-norm-evaluated-first"),
]


@pytest.mark.parametrize("make,how,code,names", PLAIN)
def test_plain_pytorch_planted_bug_is_found(make: Callable[[], nn.Module], how: dict, code: str, names: str | None):
    findings = found(train_and_evaluate(make(), **how))
    assert set(findings) == {code}, findings  # one bug, one finding: explained symptoms are not repeated
    f = findings[code]
    assert f.severity is Severity.WARNING and "{" not in f.message
    assert f.where == type(make()).__name__
    if names is not None:
        assert names in f.message
    if code == "EVAL_NOT_DETERMINISTIC":
        assert f.evidence["rel_diff"] > 0.1 and f.evidence["max_abs_diff"] > 0


HEALTHY_PLAIN = [
    pytest.param(lambda: DropoutBN(), {}, id="dropout-bn-with-model.eval"),
    pytest.param(lambda: FunctionalDropout(right=True), {}, id="F.dropout-training=self.training"),
    pytest.param(lambda: Blocks(module_list=True), {}, id="ModuleList"),
    pytest.param(lambda: FunctionalBatchNorm(right=True), {}, id="functional-batch-norm-training=self.training"),
    pytest.param(lambda: discriminator(), {}, id="spectral-norm-evaluated-after-training"),
    pytest.param(lambda: discriminator(parametrized=True), {"eval_first": True},
                 id="parametrized-spectral-norm-evaluated-first"),  # 15 power iterations at construction
    pytest.param(mlp, {"call_eval": False}, id="nothing-mode-dependent-no-model.eval"),
    pytest.param(StatefulRNN, {}, id="stateful-rnn-carries-its-hidden-state"),
]


@pytest.mark.parametrize("make,how", HEALTHY_PLAIN)
def test_plain_pytorch_healthy_model_has_no_eval_finding(make: Callable[[], nn.Module], how: dict):
    monitor = train_and_evaluate(make(), **how)
    assert not found(monitor) and "DIAGNOSTICS_FAILED" not in codes(monitor.findings), monitor.findings


def test_the_check_leaves_no_trace_on_rng_buffers_or_steps():
    """The two repeated passes change neither the user's RNG stream nor the batch-norm statistics
    (here updated by the user's own forwards, in training mode)."""
    def run(watched: bool) -> tuple[torch.Tensor, torch.Tensor]:
        torch.manual_seed(0)
        model, (x, _) = DropoutBN(), data()
        torch.manual_seed(1)
        opt = torch.optim.SGD(model.parameters(), lr=0.05)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)
            monitor = mlflow_plugins.watch(model, opt) if watched else None
            with monitor.evaluation() if watched else torch.no_grad(), torch.no_grad():
                model(x), model(x)  # training mode: dropout draws, batch norm updates
            if watched:
                monitor.close()
        return torch.rand(3), model.bn.running_mean.clone()

    (rand_a, mean_a), (rand_b, mean_b) = run(True), run(False)
    torch.testing.assert_close(rand_a, rand_b, rtol=0, atol=0)
    torch.testing.assert_close(mean_a, mean_b, rtol=0, atol=0)


def test_an_evaluation_that_raises_ends_the_evaluation():
    """The error reaches the user; later forwards are training steps again; nested blocks are one."""
    model, (x, y) = DropoutBN(), data()
    opt = torch.optim.SGD(model.parameters(), lr=0.05)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        with mlflow_plugins.watch(model, opt) as monitor:
            with pytest.raises(KeyError), monitor.evaluation(), monitor.evaluation():
                assert monitor.evals.active
                raise KeyError("batch")
            assert not monitor.evals.active
            opt.zero_grad()
            F.cross_entropy(model(x), y).backward()
            opt.step()
    assert monitor.step == 1 and not found(monitor)


def test_the_finding_reaches_the_run(tracking_uri):
    with mlflow.start_run() as run:
        monitor = train_and_evaluate(FunctionalDropout())
    tags = mlflow.MlflowClient().get_run(run.info.run_id).data.tags
    assert "EVAL_NOT_DETERMINISTIC" in tags["fixlab.findings"].split(",")
    assert tags["fixlab.health"] == "warning" and "EVAL_NOT_DETERMINISTIC" in codes(monitor.findings)


# Lightning ---------------------------------------------------------------------------------------

class Classifier(pl.LightningModule):
    """A LightningModule around `net`. `restores_train`: validation_step ends with `self.train()`
    ("back to training", the bug: the next batches are evaluated in training mode);
    `calls_net`: validation_step calls `self.net(x)` rather than `self(x)`."""

    def __init__(self, net: nn.Module, *, restores_train: bool = False, calls_net: bool = False) -> None:
        super().__init__()
        self.net, self.restores_train, self.calls_net = net, restores_train, calls_net

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)

    def training_step(self, batch: Any, batch_idx: int) -> torch.Tensor:
        x, y = batch
        return F.cross_entropy(self(x), y)

    def validation_step(self, batch: Any, batch_idx: int) -> None:
        x, y = batch
        logits = self.net(x) if self.calls_net else self(x)
        self.log("val/loss", F.cross_entropy(logits, y))
        if self.restores_train:
            self.train()

    def configure_optimizers(self) -> torch.optim.Optimizer:
        return torch.optim.SGD(self.parameters(), lr=0.05)


def fit(module: pl.LightningModule, *, sanity: int = 0, logger: Any = False) -> EvalModeCallback:
    """One epoch of 2 training batches, then validation over 2 batches (and the sanity check's)."""
    callback = EvalModeCallback()
    x, y = data(32)
    loader = lambda: torch.utils.data.DataLoader(torch.utils.data.TensorDataset(x, y), batch_size=16)  # noqa: E731
    trainer = pl.Trainer(max_epochs=1, accelerator="cpu", devices=1, logger=logger, callbacks=[callback],
                         enable_checkpointing=False, enable_progress_bar=False,
                         enable_model_summary=False, num_sanity_val_steps=sanity)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        trainer.fit(module, loader(), loader())
    return callback


LIGHTNING = [
    pytest.param(lambda: Classifier(DropoutBN(), restores_train=True), {}, "EVAL_IN_TRAIN_MODE", "net.bn, net.drop",
                 id="validation_step-calls-self.train"),
    pytest.param(lambda: Classifier(WithEncoder()), {}, "EVAL_IN_TRAIN_MODE", "net.encoder.body.3",
                 id="submodule-train-override-drops-mode"),
    pytest.param(lambda: Classifier(FunctionalDropout(), calls_net=True), {}, "EVAL_NOT_DETERMINISTIC", None,
                 id="F.dropout-called-through-a-child"),
    pytest.param(lambda: Classifier(discriminator()), {"sanity": 1}, "EVAL_BEFORE_INIT", "net.0, net.2, net.4",
                 id="spectral-norm-in-the-sanity-check"),
]


@pytest.mark.parametrize("make,how,code,names", LIGHTNING)
def test_lightning_planted_bug_is_found(make: Callable[[], pl.LightningModule], how: dict, code: str,
                                        names: str | None):
    findings = {f.code: f for f in fit(make(), **how).findings}
    assert set(findings) == {code}, findings
    assert findings[code].where == "Classifier"
    if names is not None:
        assert names in findings[code].message
    if code == "EVAL_BEFORE_INIT":
        assert findings[code].step == 0  # the sanity check, before the first training step


HEALTHY_LIGHTNING = [
    pytest.param(lambda: Classifier(DropoutBN()), {}, id="dropout-bn"),
    pytest.param(lambda: Classifier(WithEncoder(passes_mode=True)), {}, id="train-override-passes-mode"),
    pytest.param(lambda: Classifier(FunctionalDropout(right=True), calls_net=True), {}, id="F.dropout-right"),
    pytest.param(lambda: Classifier(discriminator()), {"sanity": 0}, id="spectral-norm-no-sanity-check"),
    pytest.param(lambda: Classifier(mlp()), {"sanity": 1}, id="nothing-mode-dependent"),
]


@pytest.mark.parametrize("make,how", HEALTHY_LIGHTNING)
def test_lightning_healthy_model_has_no_finding(make: Callable[[], pl.LightningModule], how: dict):
    assert fit(make(), **how).findings == []


def test_lightning_finding_reaches_the_mlflow_run(tracking_uri):
    from lightning.pytorch.loggers import MLFlowLogger

    logger = MLFlowLogger(experiment_name="eval", tracking_uri=tracking_uri)
    fit(Classifier(discriminator()), sanity=1, logger=logger)
    tags = mlflow.MlflowClient().get_run(logger.run_id).data.tags
    assert tags["fixlab.findings"] == "EVAL_BEFORE_INIT" and tags["fixlab.health"] == "warning"


# the rule ----------------------------------------------------------------------------------------

RULE_CASES = [  # (the check, the codes it gives)
    (EvalCheck(3, "Net"), []),
    (EvalCheck(3, "Net", max_abs_diff=0.0, rel_diff=0.0), []),
    (EvalCheck(3, "Net", max_abs_diff=1e-9, rel_diff=1e-7), []),  # kernel noise, not randomness
    (EvalCheck(3, "Net", max_abs_diff=0.4, rel_diff=0.2), ["EVAL_NOT_DETERMINISTIC"]),
    (EvalCheck(3, "Net", max_abs_diff=float("inf"), rel_diff=float("nan")), ["EVAL_NOT_DETERMINISTIC"]),
    (EvalCheck(3, "Net", train_mode=("bn", "drop"), stochastic=("drop",), max_abs_diff=0.4, rel_diff=0.2,
               changed=("bn.running_mean",)), ["EVAL_IN_TRAIN_MODE"]),  # the cause explains both symptoms
    (EvalCheck(3, "Net", train_mode=("bn",), max_abs_diff=0.4, rel_diff=0.2,
               changed=("bn.running_mean", "norm.running_var")),
     ["EVAL_IN_TRAIN_MODE", "EVAL_NOT_DETERMINISTIC", "EVAL_UPDATES_STATISTICS"]),
    (EvalCheck(0, "Net", uninitialised=("disc.0",)), ["EVAL_BEFORE_INIT"]),
]


@pytest.mark.parametrize("check,expected", RULE_CASES)
def test_the_rule(check: EvalCheck, expected: list[str]):
    findings, _ = EvalMode().update(check, EvalMode().init())
    assert [f.code for f in findings] == expected
    assert all(f.where == "Net" and f.step == check.step and "{" not in f.message for f in findings)


def test_the_rule_names_the_unexplained_statistics_and_reports_once():
    rules = RuleSet([EvalMode()])
    check = EvalCheck(5, "Net", train_mode=("bn",), changed=("bn.running_mean", "norm.running_var"))
    first = rules.observe(check)
    stats = next(f for f in first if f.code == "EVAL_UPDATES_STATISTICS")
    assert stats.evidence == {"n_buffers": 1, "buffers": "norm.running_var"}
    assert rules.observe(EvalCheck(9, "Net", train_mode=("drop",), changed=("x.running_mean",))) == []
    restored = RuleSet([EvalMode()])
    restored.load_state_dict(rules.state_dict())  # a resumed run does not report them again
    assert restored.observe(check) == []


def test_many_places_are_counted_and_the_first_named():
    check = EvalCheck(1, "Net", train_mode=tuple(f"drop{i}" for i in range(8)), stochastic=("drop0",))
    (f,), _ = EvalMode().update(check, EvalMode().init())
    assert f.evidence == {"n_modules": 8, "modules": "drop0, drop1, drop2, drop3, drop4, ..."}
    assert f.message == "8 module(s) in training mode while evaluating, from step 1: drop0, drop1, drop2, drop3, drop4, ..."


@pytest.mark.parametrize("bad", [0, 1, -1e-3, float("nan"), True, "1e-4"])
def test_rel_tol_is_validated(bad: Any):
    with pytest.raises(ValueError, match=r"rel_tol=.* is out of range; allowed: a number strictly between 0 and 1"):
        EvalMode(bad)
    with pytest.raises(ValueError, match=r"rel_tol="):
        EvalModeCallback(rel_tol=bad)


def test_the_callback_state_key_names_its_tolerance():
    assert EvalModeCallback().state_key == EvalModeCallback().state_key != EvalModeCallback(rel_tol=1e-3).state_key
    assert np.isclose(EvalModeCallback(rel_tol=1e-3).rel_tol, 1e-3)
