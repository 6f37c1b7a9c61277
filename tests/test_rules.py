"""Rules users add: `Rule.metric` and `Rule` subclasses, recorded exactly like the built-ins."""

from __future__ import annotations

import json
from pathlib import Path

import mlflow
import pytest
import torch

from _models import NoGradBranch, Wrapped, codes, data, mlp, train_lightning, train_plain
import mlflow_plugins
from mlflow_plugins import (Finding, GradientHealthCallback, GradSnapshot, MetricValue, Rule,
                            RuleSet, run_report)

STARVED = dict(below=0.2, for_epochs=3, code="PSEUDO_LABELS_UNUSED",
               hint="lower the confidence threshold, or check that weak and strong views differ")


class TotalNormAbove(Rule):
    """A user's rule over the plugin's gradient snapshot: its own code, a critical severity."""

    name, accepts = "total_norm_above", (GradSnapshot,)

    def __init__(self, limit: float) -> None:
        self.limit = limit

    def init(self) -> bool:
        return False  # reported yet?

    def update(self, snap: GradSnapshot, reported: bool) -> tuple[list[Finding], bool]:
        if reported or not snap.total_norm > self.limit:
            return [], reported
        return [Finding("TOTAL_NORM_HIGH", "critical", snap.step, "<total>",
                        {"grad_norm": snap.total_norm, "limit": self.limit}, "clip at the limit")], True


class Broken(Rule):
    name, accepts = "broken", (GradSnapshot,)

    def init(self) -> None:
        return None

    def update(self, snap, state):  # noqa: ANN001, ANN201
        raise KeyError("the rule's own bug")


# --- the metric rule, alone -------------------------------------------------------------------

def _judge(rule: Rule, values: list[tuple[float, int, int | None]]) -> list[Finding]:
    rules = RuleSet([rule])
    return [f for value, step, epoch in values for f in rules.observe(MetricValue("m", value, step, epoch))]


def test_metric_rule_needs_consecutive_epochs():
    rule = Rule.metric("m", below=0.2, for_epochs=3, code="LOW_M")
    # epoch 0 low, 1 recovers, 2-4 low: fires in epoch 4, the run started at epoch 2's step
    found = _judge(rule, [(0.1, 10, 0), (0.5, 20, 1), (0.1, 30, 2), (0.1, 40, 3), (0.1, 50, 4), (0.1, 60, 5)])
    assert [(f.code, f.where, f.step, f.evidence["epoch"]) for f in found] == [("LOW_M", "m", 30, 4)]
    assert found[0].severity.value == "warning" and found[0].evidence["for_epochs"] == 3


def test_metric_rule_judges_an_epoch_by_its_last_value():
    rule = Rule.metric("m", below=0.2, for_epochs=2, code="LOW_M")
    # epoch 0 ends high after a low batch; epochs 1 and 2 end low
    assert not _judge(rule, [(0.1, 1, 0), (0.9, 2, 0), (0.1, 3, 1)])
    assert _judge(Rule.metric("m", below=0.2, for_epochs=2, code="LOW_M"),
                  [(0.9, 1, 0), (0.1, 2, 0), (0.9, 3, 1), (0.1, 4, 1)]) \
        and len(_judge(rule, [(0.1, 5, 2)])) == 0  # the rule's state belongs to its RuleSet


def test_metric_rule_above_and_steps_and_nan():
    rule = Rule.metric("m", above=10.0, for_steps=2, code="HIGH_M", severity="critical")
    assert [f.step for f in _judge(rule, [(11.0, 0, None), (float("nan"), 1, None), (12.0, 2, None),
                                          (13.0, 3, None)])] == [2]
    assert not _judge(rule, [(1.0, s, None) for s in range(5)])  # healthy: silent


def test_metric_rule_ignores_other_metrics():
    rules = RuleSet([Rule.metric("m", below=1.0, code="LOW_M")])
    assert not rules.observe(MetricValue("other", 0.0, 0, 0))


@pytest.mark.parametrize("kwargs,message", [
    ({"code": "low"}, r"code='low' is not a finding code; allowed: upper-case letters"),
    ({"code": "LOW"}, r"Rule.metric needs below= and/or above=; got neither"),
    ({"code": "LOW", "below": "0.2"}, r"below='0.2' is out of range; allowed: a finite number"),
    ({"code": "LOW", "below": 0.2, "for_epochs": 0}, r"for_epochs=0 is out of range; allowed: an integer >= 1"),
    ({"code": "LOW", "below": 0.2, "for_steps": 2, "for_epochs": 2}, r"are both set; allowed: one of them"),
    ({"code": "LOW", "below": 0.2, "severity": "fatal"}, r"severity='fatal' is not a severity; allowed: \['info'"),
])
def test_metric_rule_arguments_are_checked(kwargs, message):
    with pytest.raises(ValueError, match=message):
        Rule.metric("m", **kwargs)


def test_rule_sets_reject_what_is_not_a_rule():
    with pytest.raises(ValueError, match=r"rules share the name\(s\) \['metric:LOW:m'\]"):
        RuleSet([Rule.metric("m", below=1, code="LOW"), Rule.metric("m", below=2, code="LOW")])
    with pytest.raises(ValueError, match=r"rules entry 'LOW' is not a rule: it lacks"):
        RuleSet(["LOW"])
    with pytest.raises(ValueError, match=r"has accepts=\(\); allowed: a non-empty tuple"):
        RuleSet([type("NoInput", (Rule,), {"name": "no_input", "init": lambda self: None,
                                           "update": lambda self, summary, state: ([], state)})()])
    with pytest.raises(TypeError, match="abstract method"):  # a rule must say how it judges
        type("NoUpdate", (Rule,), {"name": "no_update", "accepts": (GradSnapshot,),
                                   "init": lambda self: None})()


@pytest.mark.parametrize("rules,message", [
    (Rule.metric("m", below=1, code="LOW"), r"rules=Rule.metric\('m', below=1, for_steps=1, code='LOW'\) is not allowed; allowed: a list of rules"),
    ("LOW", r"rules='LOW' is not allowed; allowed: a list of rules"),
])
def test_rules_argument_must_be_a_list(rules, message):
    model = mlp()
    with pytest.raises(ValueError, match=message):
        mlflow_plugins.watch(model, torch.optim.SGD(model.parameters(), 0.1), rules=rules)
    with pytest.raises(ValueError, match=message):
        GradientHealthCallback(rules=rules)


def test_rule_states_are_plain_and_round_trip():
    rules = RuleSet([Rule.metric("m", below=0.2, for_epochs=2, code="LOW_M"), TotalNormAbove(1.0)])
    rules.observe(MetricValue("m", 0.1, 0, 0))
    state = json.loads(json.dumps(rules.state_dict()))  # plain: JSON and weights_only-safe
    again = RuleSet([Rule.metric("m", below=0.2, for_epochs=2, code="LOW_M"), TotalNormAbove(1.0)])
    again.load_state_dict(state)
    assert [f.code for f in again.observe(MetricValue("m", 0.1, 5, 1))] == ["LOW_M"]


# --- in plain PyTorch, recorded like a built-in -------------------------------------------------

def _epochs(monitor, rates):
    for epoch, rate in enumerate(rates):
        monitor.log_metrics({"train/pseudo_label_rate": rate}, step=10 * epoch, epoch=epoch)


def test_users_metric_rule_is_recorded_like_a_builtin(tracking_uri):
    model = mlp()
    opt = torch.optim.SGD(model.parameters(), 0.05)
    starved = Rule.metric("train/pseudo_label_rate", **STARVED)
    with mlflow.start_run() as run:
        with mlflow_plugins.watch(model, opt, rules=[starved]) as monitor:
            _epochs(monitor, [0.3, 0.1, 0.05, 0.1])
    [found] = [f for f in monitor.findings if f.code == "PSEUDO_LABELS_UNUSED"]
    assert found.where == "train/pseudo_label_rate" and found.hint == STARVED["hint"]
    stored = mlflow.MlflowClient().get_run(run.info.run_id)
    assert stored.data.tags["fixlab.health"] == "warning"
    assert "PSEUDO_LABELS_UNUSED" in stored.data.tags["fixlab.findings"].split(",")
    assert stored.data.metrics["train/pseudo_label_rate"] == pytest.approx(0.1)  # logged too
    root = Path(mlflow.artifacts.download_artifacts(run_id=run.info.run_id, artifact_path="fixlab"))
    assert [f["code"] for f in json.loads((root / "findings.json").read_text())["findings"]] == ["PSEUDO_LABELS_UNUSED"]
    page = (root / "report.html").read_text()
    assert "PSEUDO_LABELS_UNUSED" in page and "lower the confidence threshold" in page


def test_users_metric_rule_is_silent_when_healthy(tracking_uri):
    model = mlp()
    with mlflow.start_run() as run:
        with mlflow_plugins.watch(model, torch.optim.SGD(model.parameters(), 0.05),
                                  rules=[Rule.metric("train/pseudo_label_rate", **STARVED)]) as monitor:
            _epochs(monitor, [0.1, 0.1, 0.5, 0.1, 0.1])  # never three low epochs in a row
    assert not monitor.findings
    assert mlflow.MlflowClient().get_run(run.info.run_id).data.tags["fixlab.health"] == "ok"


def test_epoch_rule_needs_the_epoch():
    model = mlp()
    with mlflow_plugins.watch(model, torch.optim.SGD(model.parameters(), 0.05),
                              rules=[Rule.metric("train/pseudo_label_rate", **STARVED)]) as monitor:
        with pytest.raises(ValueError, match=r"epoch=None, but rules count epochs of \['train/pseudo_label_rate'\]"):
            monitor.log_metrics({"train/pseudo_label_rate": 0.1})


def test_users_summary_rule_can_stop_training():
    with pytest.raises(mlflow_plugins.TrainingStopped, match="TOTAL_NORM_HIGH at <total>"):
        train_plain(mlp(), steps=3, loss_scale=1e4, monitor_kwargs={"rules": [TotalNormAbove(10.0)],
                                                                     "policy": "stop", "exploding": 1e9})
    healthy = train_plain(mlp(), steps=5, monitor_kwargs={"rules": [TotalNormAbove(1e6)]})
    assert "TOTAL_NORM_HIGH" not in codes(healthy.findings)


def test_a_failing_rule_is_on_the_record_and_training_goes_on(tracking_uri):
    with mlflow.start_run() as run:
        with pytest.warns(RuntimeWarning, match=r"DIAGNOSTICS_FAILED \(warning\) at rule broken"):
            monitor = train_plain(mlp(), steps=4, monitor_kwargs={"rules": [Broken()]})
    [failed] = [f for f in monitor.findings if f.code == "DIAGNOSTICS_FAILED"]
    assert failed.where == "rule broken" and "the rule's own bug" in failed.evidence["error"]
    assert mlflow.MlflowClient().get_run(run.info.run_id).data.tags["fixlab.health"] == "warning"


def test_plain_monitor_state_round_trip():
    """K=3: two steps, a checkpoint, a new monitor restored from it: the third step finds it."""
    model = NoGradBranch()
    x, y = data()
    opt = torch.optim.SGD(model.parameters(), 0.05)

    def steps(monitor, n):
        for _ in range(n):
            opt.zero_grad()
            torch.nn.functional.cross_entropy(model(x), y).backward()
            opt.step()

    with mlflow_plugins.watch(model, opt) as first:
        steps(first, 2)
    assert "GRAD_NEVER_UPDATED" not in codes(first.findings)
    state = first.state_dict()
    torch.save(state, buffer := __import__("io").BytesIO())
    buffer.seek(0)
    with mlflow_plugins.watch(model, opt) as fresh:  # without the state: starts counting again
        steps(fresh, 1)
    assert "GRAD_NEVER_UPDATED" not in codes(fresh.findings)
    with mlflow_plugins.watch(model, opt) as resumed:
        resumed.load_state_dict(torch.load(buffer, weights_only=True))
        steps(resumed, 1)
    [found] = [f for f in resumed.findings if f.where == "representation.weight"]
    assert found.code == "GRAD_NEVER_UPDATED" and found.evidence["steps_without_gradient"] == 3
    assert found.step == 0 and resumed.step == 3


# --- Lightning ----------------------------------------------------------------------------------

class RateLogged(Wrapped):
    """Logs a made-up pseudo-label rate per epoch, as document 004's project would."""

    def __init__(self, rates: list[float]) -> None:
        super().__init__(mlp())
        self.rates = rates

    def on_train_epoch_end(self) -> None:
        self.log("train/pseudo_label_rate", self.rates[self.current_epoch])


def _fit_epochs(module, callbacks, epochs, *, ckpt_path=None, **kwargs):
    import lightning.pytorch as pl
    x, y = data()
    loader = torch.utils.data.DataLoader(torch.utils.data.TensorDataset(x, y), batch_size=32)
    trainer = pl.Trainer(max_epochs=epochs, accelerator="cpu", devices=1, logger=False,
                         callbacks=callbacks, enable_progress_bar=False, enable_model_summary=False,
                         log_every_n_steps=1, **kwargs)
    trainer.fit(module, loader, ckpt_path=ckpt_path)
    return trainer


def test_lightning_metric_rule():
    cb = GradientHealthCallback(rules=[Rule.metric("train/pseudo_label_rate", **STARVED)])
    _fit_epochs(RateLogged([0.5, 0.1, 0.1, 0.1]), [cb], 4, enable_checkpointing=False)
    [found] = [f for f in cb.findings if f.code == "PSEUDO_LABELS_UNUSED"]
    assert found.evidence["epoch"] == 3
    quiet = GradientHealthCallback(rules=[Rule.metric("train/pseudo_label_rate", **STARVED)])
    _fit_epochs(RateLogged([0.1, 0.1, 0.5, 0.1]), [quiet], 4, enable_checkpointing=False)
    assert "PSEUDO_LABELS_UNUSED" not in codes(quiet.findings)


class Detached(RateLogged):
    """Document 001's bug (a branch under no_grad) with three low pseudo-label epochs."""

    def __init__(self) -> None:
        super().__init__([0.1, 0.1, 0.1])
        self.model = NoGradBranch()


@pytest.mark.parametrize("restore", [True, False], ids=["resumed", "fresh"])
def test_lightning_resume_continues_the_rules(tmp_path, restore):
    """Two epochs of one step, a checkpoint, a resumed fit of one more: both rules need three
    (K=3 steps without a gradient; three low epochs), so both fire only if their state came back."""
    from lightning.pytorch.callbacks import ModelCheckpoint

    def callbacks():
        return [GradientHealthCallback(rules=[Rule.metric("train/pseudo_label_rate", **STARVED)]),
                ModelCheckpoint(dirpath=tmp_path, filename="last")]

    first = callbacks()
    _fit_epochs(Detached(), first, 2, limit_train_batches=1)
    assert not first[0].findings
    ckpt = tmp_path / "last.ckpt"
    assert torch.load(ckpt, weights_only=True)["callbacks"]  # rule states are plain values
    second = callbacks()
    if restore:
        _fit_epochs(Detached(), second, 3, limit_train_batches=1, ckpt_path=ckpt)
        found = {f.code: f for f in second[0].findings}
        assert found["GRAD_NEVER_UPDATED"].evidence["steps_without_gradient"] == 3
        assert found["GRAD_NEVER_UPDATED"].step == 0
        assert found["PSEUDO_LABELS_UNUSED"].evidence["epoch"] == 2
    else:  # the same last epoch without the checkpoint's state: nothing to continue from
        _fit_epochs(Detached(), second, 1, limit_train_batches=1)
        assert not second[0].findings


def test_testing_an_early_checkpoint_keeps_what_fitting_found(tmp_path):
    """trainer.test(ckpt_path=best) restores callback states too; a best checkpoint taken before a
    finding must not wipe it (the project would then register a broken run as healthy)."""
    from lightning.pytorch.callbacks import ModelCheckpoint

    early = ModelCheckpoint(dirpath=tmp_path, filename="early-{epoch}", every_n_epochs=1, save_top_k=-1)
    callback = GradientHealthCallback()
    trainer = _fit_epochs(Detached(), [callback, early], 3, limit_train_batches=1, limit_val_batches=0)
    assert "GRAD_NEVER_UPDATED" in {f.code for f in callback.findings}  # K=3 steps of one a epoch: the third
    first = tmp_path / "early-epoch=0.ckpt"
    assert not torch.load(first, weights_only=True)["callbacks"][callback.state_key]["findings"]
    x, y = data()
    class Tested(Detached):
        def test_step(self, batch, batch_idx):
            return None

    trainer.test(Tested(), torch.utils.data.DataLoader(torch.utils.data.TensorDataset(x, y), batch_size=32),
                 ckpt_path=str(first), verbose=False, weights_only=True)
    assert "GRAD_NEVER_UPDATED" in {f.code for f in callback.findings}


def test_report_is_written_once_with_project_sections(tracking_uri, monkeypatch):
    from lightning.pytorch.loggers import MLFlowLogger
    from mlflow_plugins import AmpNanCallback, NormalizationEffectCallback
    from mlflow_plugins.recording import Recorder

    writes = []
    original = Recorder.write_findings
    monkeypatch.setattr(Recorder, "write_findings",
                        lambda self, *a, **k: (writes.append(self.run_id), original(self, *a, **k))[1])
    with mlflow.start_run() as run:
        logger = MLFlowLogger(run_id=run.info.run_id, tracking_uri=tracking_uri)
        callbacks = [GradientHealthCallback(log_every=1), AmpNanCallback(), NormalizationEffectCallback()]
        with run_report(run.info.run_id) as report:
            train_lightning(Wrapped(NoGradBranch()), callbacks, steps=4, logger=logger)
            report.add_section("Claims of my project", "<p>claim table</p>")
    assert writes == [run.info.run_id]
    root = Path(mlflow.artifacts.download_artifacts(run_id=run.info.run_id, artifact_path="fixlab"))
    page = (root / "report.html").read_text()
    assert "Claims of my project" in page and "GRAD_NEVER_UPDATED" in page


def test_a_monitor_never_closed_still_writes_its_report(tracking_uri, tmp_path):
    """A notebook-style `watch()` without `with` or `close()`: the findings reach the run at exit."""
    import subprocess
    import sys
    import textwrap

    client = mlflow.MlflowClient()
    run_id = client.create_run(client.get_experiment_by_name("Default").experiment_id).info.run_id
    script = textwrap.dedent(f"""
        import sys, torch
        sys.path.insert(0, {str(Path(__file__).parent)!r})
        import mlflow_plugins
        from _models import NoGradBranch, data
        model, (x, y) = NoGradBranch(), data()
        opt = torch.optim.SGD(model.parameters(), 0.05)
        monitor = mlflow_plugins.watch(model, opt, run_id={run_id!r}, tracking_uri={tracking_uri!r})
        for _ in range(4):
            opt.zero_grad(); torch.nn.functional.cross_entropy(model(x), y).backward(); opt.step()
    """)
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    tags = client.get_run(run_id).data.tags
    assert tags["fixlab.health"] == "critical" and "GRAD_NEVER_UPDATED" in tags["fixlab.findings"]
