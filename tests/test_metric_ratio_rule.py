"""Rules over two metrics: `Rule.metric(..., relative_to=...)` (document 004's PU_PRIOR_MISMATCH,
a configured class prior far from the estimated one), and a user's `Rule` that declares the
metrics it `reads`, fed by the Lightning callback like `Rule.metric`."""

from __future__ import annotations

import json
import math

import mlflow
import pytest
import torch

from _models import Wrapped, codes, data, mlp
from mlflow_plugins import Finding, GradientHealthCallback, MetricValue, Rule, RuleSet

PRIOR = dict(relative_to="pu/prior_estimated", below=0.8, above=1.25, for_epochs=2,
             code="PU_PRIOR_MISMATCH", hint="set the class prior to the estimated one")
CONFIGURED, ESTIMATED = "pu/prior_configured", "pu/prior_estimated"


def _prior_rule(**kwargs) -> Rule:
    return Rule.metric(CONFIGURED, **{**PRIOR, **kwargs})


def _epochs(rules: RuleSet, priors: list[tuple[float, float]], *, first: int = 0,
            reference_first: bool = False) -> list[Finding]:
    """Epoch e (from `first`) logs (configured, estimated) at step 10 * e; the findings."""
    found = []
    for epoch, (configured, estimated) in enumerate(priors, start=first):
        values = [MetricValue(CONFIGURED, configured, 10 * epoch, epoch),
                  MetricValue(ESTIMATED, estimated, 10 * epoch, epoch)]
        for value in reversed(values) if reference_first else values:
            found += rules.observe(value)
    return found


def _judge(rule: Rule, values: list[tuple[str, float, int, int | None]]) -> list[Finding]:
    """Each (name, value, step, epoch) observed in turn by a fresh RuleSet; the findings."""
    rules = RuleSet([rule])
    return [f for name, value, step, epoch in values
            for f in rules.observe(MetricValue(name, value, step, epoch))]


# --- the ratio rule, alone ----------------------------------------------------------------------

@pytest.mark.parametrize("reference_first", [False, True], ids=["metric-first", "reference-first"])
def test_ratio_above_the_bound_for_epochs_in_a_row(reference_first):
    # ratios 1.0, 1.59, 1.0, 1.59, 1.59: the run of two starts at epoch 3 (step 30)
    priors = [(0.3, 0.3), (0.3, 0.189), (0.3, 0.3), (0.3, 0.189), (0.3, 0.189)]
    [found] = _epochs(RuleSet([_prior_rule()]), priors, reference_first=reference_first)
    assert (found.code, found.where, found.step, found.severity.value) == \
        ("PU_PRIOR_MISMATCH", CONFIGURED, 30, "warning")
    assert found.evidence == {"value": pytest.approx(0.3 / 0.189), "metric_value": 0.3,
                              "reference_value": 0.189, "below": 0.8, "above": 1.25,
                              "for_epochs": 2, "last_step": 40, "epoch": 4}
    assert found.message == ("pu/prior_configured / pu/prior_estimated = 1.587 (0.3 / 0.189), "
                             "outside 0.8 to 1.25 for 2 epochs in a row (steps 30 to 40)")
    assert found.hint == PRIOR["hint"]


def test_ratio_below_the_bound():
    rule = Rule.metric("a", relative_to="b", below=0.5, for_epochs=1, code="A_LOW")
    [found] = _judge(rule, [("a", 1.0, 0, 0), ("b", 4.0, 0, 0)])
    assert found.evidence["value"] == 0.25
    assert found.message == "a / b = 0.25 (1 / 4), below 0.5 for 1 epoch in a row (steps 0 to 0)"


def test_a_healthy_ratio_gives_no_finding():
    # the priors move together (ratios 1.0-1.2): never a mismatch, however many epochs
    priors = [(0.3, 0.3), (0.36, 0.3), (0.25, 0.3), (0.31, 0.3)] * 3
    assert not _epochs(RuleSet([_prior_rule(for_epochs=1)]), priors)
    assert not _epochs(RuleSet([_prior_rule(for_epochs=1)]), priors, reference_first=True)


def test_a_later_value_of_the_period_replaces_the_earlier():
    rule = Rule.metric("a", relative_to="b", above=1.25, for_epochs=1, code="A_HIGH")
    # epoch 0: 1.0, until a later a (with the b already known) makes it 2.0: judged when both are known
    assert [(f.evidence["epoch"], f.evidence["value"], f.evidence["reference_value"]) for f in _judge(
        rule, [("a", 1.0, 0, 0), ("b", 1.0, 0, 0), ("a", 2.0, 1, 0)])] == [(0, 2.0, 1.0)]
    # the same for a later b
    assert [(f.evidence["value"], f.evidence["reference_value"]) for f in _judge(
        rule, [("a", 1.0, 0, 0), ("b", 2.0, 0, 0), ("b", 0.5, 1, 0)])] == [(2.0, 0.5)]
    # the run of bad periods counts the period's last ratio, not every ratio seen in it
    two = Rule.metric("a", relative_to="b", above=1.25, for_epochs=2, code="A_HIGH")
    assert not _judge(two, [("a", 2.0, 0, 0), ("b", 1.0, 0, 0), ("b", 2.0, 1, 0),  # epoch 0 ends at 1.0
                            ("a", 2.0, 2, 1), ("b", 1.0, 2, 1)])                   # epoch 1 at 2.0
    [found] = _judge(two, [("a", 1.0, 0, 0), ("b", 1.0, 0, 0), ("a", 2.0, 1, 0),  # epoch 0 ends at 2.0
                           ("b", 1.0, 2, 1), ("a", 3.0, 2, 1)])                    # epoch 1 at 3.0
    assert (found.step, found.evidence["value"], found.evidence["metric_value"]) == (1, 3.0, 3.0)


def test_per_step_ratio_pairs_values_of_the_same_step():
    rule = Rule.metric("a", relative_to="b", above=1.25, for_steps=2, code="A_HIGH")
    # step 0's a never meets step 1's b: step 0 is not judged, so the run starts at step 1
    found = _judge(rule, [("a", 5.0, 0, None), ("b", 1.0, 1, None), ("a", 5.0, 1, None),
                          ("a", 5.0, 2, None), ("b", 1.0, 2, None)])
    assert [(f.step, f.evidence["last_step"], "epoch" in f.evidence) for f in found] == [(1, 2, False)]


@pytest.mark.parametrize("reference", [0.0, float("nan"), float("inf"), None],
                         ids=["zero", "nan", "inf", "missing"])
def test_an_undefined_ratio_is_not_judged_and_breaks_the_run(reference):
    rule = Rule.metric("a", relative_to="b", above=1.25, for_epochs=2, code="A_HIGH")
    middle = [] if reference is None else [("b", reference, 10, 1)]
    # bad, undefined, bad: never two bad epochs in a row
    values = [("a", 2.0, 0, 0), ("b", 1.0, 0, 0), ("a", 2.0, 10, 1), *middle,
              ("a", 2.0, 20, 2), ("b", 1.0, 20, 2)]
    assert not _judge(rule, values)
    # the epoch after it starts a new run
    [found] = _judge(rule, values + [("a", 2.0, 30, 3), ("b", 1.0, 30, 3)])
    assert found.step == 20 and found.evidence["epoch"] == 3


def test_ratio_rule_reads_only_its_two_metrics():
    rule = Rule.metric("a", relative_to="b", above=1.25, code="A_HIGH")
    assert rule.reads == ("a", "b") and rule.per == "step" and rule.metric == "a"
    assert not _judge(rule, [("a", 2.0, 0, None), ("c", 1.0, 0, None)])
    assert Rule.metric("a", above=1.0, code="A_HIGH").reads == ("a",)


def test_ratio_rule_name_and_repr():
    rule = _prior_rule()
    assert rule.name == "metric:PU_PRIOR_MISMATCH:pu/prior_configured/pu/prior_estimated"
    assert repr(rule) == ("Rule.metric('pu/prior_configured', relative_to='pu/prior_estimated', "
                          "below=0.8, above=1.25, for_epochs=2, code='PU_PRIOR_MISMATCH')")
    assert _prior_rule(name="prior").name == "prior"
    # the same metric alone and relative to another are two rules
    alone = Rule.metric(CONFIGURED, above=0.5, code="PU_PRIOR_MISMATCH")
    assert len(RuleSet([_prior_rule(), alone]).rules) == 2


def test_ratio_state_round_trips_mid_run():
    """A checkpoint mid-run (even mid-epoch) continues to the findings of an uninterrupted run."""
    priors = [(0.3, 0.3), (0.3, 0.189), (0.3, 0.19), (0.3, 0.3), (0.3, 0.1), (0.3, 0.1)]
    whole = RuleSet([_prior_rule()])
    expected = _epochs(whole, priors)
    assert [(f.step, f.evidence["epoch"]) for f in expected] == [(10, 2)]
    first = RuleSet([_prior_rule()])
    _epochs(first, priors[:1])
    first.observe(MetricValue(CONFIGURED, 0.3, 10, 1))  # epoch 1 half logged
    state = json.loads(json.dumps(first.state_dict()))  # plain: JSON and weights_only-safe
    resumed = RuleSet([_prior_rule()])
    resumed.load_state_dict(state)
    found = resumed.observe(MetricValue(ESTIMATED, 0.189, 10, 1)) + _epochs(resumed, priors[2:], first=2)
    assert [f.to_dict() for f in found] == [f.to_dict() for f in expected]
    assert [f.to_dict() for f in _epochs(RuleSet([_prior_rule()]), priors[2:], first=2)] != \
        [f.to_dict() for f in expected]  # without the state it would not continue the run


def test_update_is_pure():
    rule = _prior_rule(for_epochs=1)
    state = rule.init()
    frozen = json.dumps(state)
    _, after_a = rule.update(MetricValue(CONFIGURED, 0.3, 0, 0), state)
    snapshot = json.dumps(after_a)
    found, _ = rule.update(MetricValue(ESTIMATED, 0.1, 0, 0), after_a)
    assert found and json.dumps(state) == frozen and json.dumps(after_a) == snapshot


@pytest.mark.parametrize("kwargs,message", [
    ({"relative_to": ""}, r"relative_to='' is not allowed; allowed: None or the name of a metric "
                          r"other than metric='m' \(a non-empty string\)"),
    ({"relative_to": "m"}, r"relative_to='m' is not allowed; allowed: None or the name of a metric other than metric='m'"),
    ({"relative_to": 3}, r"relative_to=3 is not allowed; allowed: None or the name of a metric"),
    ({"relative_to": "r", "above": math.inf}, r"above=inf is out of range; allowed: a finite number"),
    ({"relative_to": "r"}, r"Rule.metric needs below= and/or above=; got neither"),
])
def test_ratio_rule_arguments_are_checked(kwargs, message):
    with pytest.raises(ValueError, match=message):
        Rule.metric("m", code="M_RATIO", **kwargs)


# --- a user's rule declaring the metrics it reads ---------------------------------------------

class Seen(Rule):
    """Collects every metric value it gets (as plain tuples) and reports nothing."""

    accepts = (MetricValue,)

    def __init__(self, reads: tuple[str, ...], per: str, name: str = "seen") -> None:
        self.reads, self.per, self.name = reads, per, name

    def init(self) -> tuple:
        return ()

    def update(self, value: MetricValue, state: tuple) -> tuple[list[Finding], tuple]:
        return [], (*state, (value.name, value.value, value.epoch))


@pytest.mark.parametrize("reads,per,message", [
    ("a", "epoch", r"rule 'seen' has reads='a'; allowed: a tuple of metric names"),
    (("a", ""), "epoch", r"rule 'seen' has reads=\('a', ''\); allowed: a tuple of metric names"),
    (("a",), "batch", r"rule 'seen' has per='batch'; allowed: 'step' or 'epoch'"),
])
def test_reads_and_per_are_checked(reads, per, message):
    with pytest.raises(ValueError, match=message):
        RuleSet([Seen(reads, per)])


def test_log_metrics_needs_the_epoch_for_any_metric_an_epoch_rule_reads():
    import mlflow_plugins

    model = mlp()
    with mlflow_plugins.watch(model, torch.optim.SGD(model.parameters(), 0.05),
                              rules=[_prior_rule(), Seen(("c",), "epoch")]) as monitor:
        with pytest.raises(ValueError, match=r"epoch=None, but rules count epochs of \['c', 'pu/prior_estimated'\]"):
            monitor.log_metrics({ESTIMATED: 0.3, "c": 1.0, "other": 2.0}, step=0)
        monitor.log_metrics({"other": 2.0}, step=0)  # nobody counts epochs of it
        monitor.log_metrics({CONFIGURED: 0.3, ESTIMATED: 0.1}, step=10, epoch=0)
        monitor.log_metrics({CONFIGURED: 0.3, ESTIMATED: 0.1}, step=20, epoch=1)
    assert codes(monitor.findings) == {"PU_PRIOR_MISMATCH"}


# --- Lightning ----------------------------------------------------------------------------------

class TwoMetrics(Wrapped):
    """Logs two metrics per epoch from its training step, as document 004's project logs priors."""

    def __init__(self, a: list[float], b: list[float]) -> None:
        super().__init__(torch.nn.Linear(16, 4))
        self.a, self.b = a, b

    def training_step(self, batch, batch_idx):  # noqa: ANN001, ANN201
        loss = super().training_step(batch, batch_idx)
        self.log("a", self.a[self.current_epoch], on_step=False, on_epoch=True)
        self.log("b", self.b[self.current_epoch], on_step=False, on_epoch=True)
        return loss


def _fit(module, callback, epochs: int = 4):
    import lightning.pytorch as pl

    x, y = data()
    loader = torch.utils.data.DataLoader(torch.utils.data.TensorDataset(x, y), batch_size=16)
    trainer = pl.Trainer(max_epochs=epochs, accelerator="cpu", devices=1, logger=False,
                         callbacks=[callback], enable_checkpointing=False, enable_progress_bar=False,
                         enable_model_summary=False, limit_train_batches=3, log_every_n_steps=1)
    trainer.fit(module, loader)


def _mismatch() -> Rule:
    return Rule.metric("a", relative_to="b", above=1.25, for_epochs=1, code="X_MISMATCH")


def test_lightning_ratio_rule_is_recorded_in_the_run(tracking_uri):
    callback = GradientHealthCallback(rules=[_mismatch()])
    with mlflow.start_run() as run:
        _fit(TwoMetrics([0.3, 0.3, 0.3, 0.3], [0.3, 0.3, 0.189, 0.3]), callback)
    [found] = [f for f in callback.findings if f.code == "X_MISMATCH"]
    assert found.where == "a" and found.evidence["epoch"] == 2
    assert found.evidence["metric_value"] == pytest.approx(0.3)
    assert found.evidence["reference_value"] == pytest.approx(0.189)
    assert found.evidence["value"] == pytest.approx(0.3 / 0.189, rel=1e-6)
    assert found.step == found.evidence["last_step"] == 9  # three steps an epoch: epoch 2 ends at 9
    tags = mlflow.MlflowClient().get_run(run.info.run_id).data.tags
    assert "X_MISMATCH" in tags["fixlab.findings"].split(",") and tags["fixlab.health"] == "warning"


def test_lightning_matching_ratio_gives_no_finding(tracking_uri):
    callback = GradientHealthCallback(rules=[_mismatch()])
    with mlflow.start_run() as run:
        _fit(TwoMetrics([0.3, 0.2, 0.36, 0.3], [0.3, 0.2, 0.3, 0.25]), callback)  # ratios up to 1.2
    assert not callback.findings  # a healthy linear model: nothing at all
    tags = mlflow.MlflowClient().get_run(run.info.run_id).data.tags
    assert (tags["fixlab.findings"], tags["fixlab.health"]) == ("none", "ok")


def test_lightning_feeds_a_users_rule_the_metrics_it_reads():
    callback = GradientHealthCallback(rules=[Seen(("b", "a"), "epoch")])
    _fit(TwoMetrics([1.0, 2.0, 3.0], [10.0, 20.0, 30.0]), callback, epochs=3)
    # once an epoch, both metrics (sorted by name), each epoch's own values
    assert callback.rules.states["seen"] == (("a", 1.0, 0), ("b", 10.0, 0), ("a", 2.0, 1),
                                             ("b", 20.0, 1), ("a", 3.0, 2), ("b", 30.0, 2))
    steps = GradientHealthCallback(rules=[Seen(("a",), "step")])
    _fit(TwoMetrics([1.0, 2.0, 3.0], [10.0, 20.0, 30.0]), steps, epochs=3)
    # after every step, what callback_metrics holds then: an epoch-level "a" once its epoch ended
    assert steps.rules.states["seen"] == (("a", 1.0, 1),) * 3 + (("a", 2.0, 2),) * 3


class DipsMidEpoch(Wrapped):
    """Logs "m" after every step: 0.1 on an epoch's first batches, 1.0 on its last."""

    def __init__(self) -> None:
        super().__init__(torch.nn.Linear(16, 4))

    def training_step(self, batch, batch_idx):  # noqa: ANN001, ANN201
        loss = super().training_step(batch, batch_idx)
        self.log("m", 1.0 if batch_idx == 2 else 0.1, on_step=True, on_epoch=False)
        return loss


def test_a_value_read_after_a_batch_never_reaches_a_rule_that_counts_epochs():
    # A step rule on "m" makes the callback read it after every batch; the epoch rule must judge
    # each epoch by its last value only (1.0), not by a mid-epoch 0.1 read for the step rule.
    low = Rule.metric("m", below=0.5, for_epochs=1, code="M_LOW_EPOCH")
    high = Rule.metric("m", above=100.0, for_steps=1, code="M_HIGH_STEP")
    stepwise = Rule.metric("m", below=0.5, for_steps=2, code="M_LOW_STEPS")
    callback = GradientHealthCallback(rules=[low, high, stepwise])
    _fit(DipsMidEpoch(), callback, epochs=2)
    assert codes(callback.findings) == {"M_LOW_STEPS"}  # two low steps in a row: the step rule sees them
