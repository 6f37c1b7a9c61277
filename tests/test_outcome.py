"""A run's tags say what happened to it: `fixlab.outcome`, and a health that is never `ok` for a
run whose training failed (issue 9, item 2)."""

from __future__ import annotations

import signal

import jax.numpy as jnp
import lightning.pytorch as pl
import mlflow
import optax
import pytest
import torch
from lightning.pytorch.loggers import MLFlowLogger

from _models import SqrtAtZero, Wrapped, data, mlp, train_lightning, train_plain
import mlflow_plugins
from mlflow_plugins import AmpNanCallback, GradientHealthCallback, NormalizationEffectCallback
from mlflow_plugins.jax import monitored, watch_jax


def _tags(run_id: str) -> dict[str, str]:
    return mlflow.MlflowClient().get_run(run_id).data.tags


def _report(run_id: str) -> str:
    path = mlflow.artifacts.download_artifacts(run_id=run_id, artifact_path="fixlab/report.html")
    with open(path, encoding="utf-8") as f:
        return f.read()


def _outcome_line(page: str) -> str:
    """The outcome as the report shows it, which must come before the findings."""
    assert "<h2>Findings</h2>" in page
    head = page.split("<h2>Findings</h2>")[0]
    assert "class='outcome'" in head, "the outcome is not at the top of the report"
    return head.split("class='outcome'")[1].split("</p>")[0]


def _plain_loop_raising(error: BaseException, steps_before: int = 2) -> str:
    """A plain PyTorch loop under `watch` inside `mlflow.start_run()` that raises `error`."""
    model = mlp()
    opt = torch.optim.SGD(model.parameters(), 0.1)
    x, y = data()
    with pytest.raises(type(error)):
        with mlflow.start_run() as run:
            with mlflow_plugins.watch(model, opt, log_every=1):
                for step in range(steps_before + 1):
                    if step == steps_before:
                        raise error
                    opt.zero_grad()
                    torch.nn.functional.cross_entropy(model(x), y).backward()
                    opt.step()
    return run.info.run_id


def test_a_plain_loop_that_raises_is_tagged_failed_and_not_ok(tracking_uri):
    run_id = _plain_loop_raising(RuntimeError("data loader died\nTraceback lines follow"))
    assert mlflow.MlflowClient().get_run(run_id).info.status == "FAILED"
    tags = _tags(run_id)
    assert tags["fixlab.outcome"] == "failed: RuntimeError: data loader died"
    assert tags["fixlab.health"] == "critical"  # the diagnostics saw nothing: the run still failed
    assert tags["fixlab.findings"] == "none"
    page = _report(run_id)
    assert "failed: RuntimeError: data loader died" in _outcome_line(page)
    assert ">critical</span>" in page  # the badge says what the tag says


def test_ctrl_c_or_sigterm_is_tagged_killed(tracking_uri):
    run_id = _plain_loop_raising(KeyboardInterrupt("signal 15"))
    tags = _tags(run_id)
    assert tags["fixlab.outcome"] == "killed: KeyboardInterrupt: signal 15"
    assert tags["fixlab.health"] == "warning"


def test_a_monitor_closing_normally_does_not_claim_the_run_finished(tracking_uri):
    with mlflow.start_run() as run:
        train_plain(mlp(), steps=3)
    tags = _tags(run.info.run_id)
    assert tags["fixlab.health"] == "ok" and "fixlab.outcome" not in tags
    assert "class='outcome'" not in _report(run.info.run_id)


def test_a_stop_the_policy_asked_for_is_the_outcome(tracking_uri):
    with mlflow.start_run() as run:
        with pytest.raises(mlflow_plugins.TrainingStopped):
            train_plain(SqrtAtZero(), steps=5, monitor_kwargs={"policy": "stop"})
    outcome = _tags(run.info.run_id)["fixlab.outcome"]
    assert outcome.startswith("failed: TrainingStopped: fixlab stopped training at step 0: NONFINITE")


def test_watch_jax_records_the_exception_that_ended_training(tracking_uri):
    params = {"w": jnp.ones(3)}
    tx = monitored(optax.sgd(0.1))
    state = tx.init(params)
    with mlflow.start_run() as run:
        with pytest.raises(ValueError):
            with watch_jax(params) as monitor:
                _, state = tx.update({"w": jnp.ones(3)}, state, params)
                monitor.observe(0, state)
                raise ValueError("shapes (3,) and (4,) do not match")
    tags = _tags(run.info.run_id)
    assert tags["fixlab.outcome"] == "failed: ValueError: shapes (3,) and (4,) do not match"
    assert tags["fixlab.health"] == "critical"


class _FailsAtStep(Wrapped):
    def __init__(self, error: BaseException, at: int = 2) -> None:
        super().__init__(mlp())
        self.error, self.at = error, at

    def training_step(self, batch, batch_idx):
        if self.global_step == self.at:
            raise self.error
        return super().training_step(batch, batch_idx)


def _callbacks() -> list[pl.Callback]:
    return [GradientHealthCallback(log_every=1), AmpNanCallback(log_every=1),
            NormalizationEffectCallback(log_every=1)]


def test_lightning_callbacks_record_the_exception(tracking_uri):
    logger = MLFlowLogger(experiment_name="outcome", tracking_uri=tracking_uri)
    with pytest.raises(RuntimeError, match="CUDA out of memory"):
        train_lightning(_FailsAtStep(RuntimeError("CUDA out of memory (simulated)")), _callbacks(),
                        steps=5, logger=logger)
    run = mlflow.MlflowClient().get_run(logger.run_id)
    assert run.info.status == "FAILED"  # the logger's doing
    assert run.data.tags["fixlab.outcome"] == "failed: RuntimeError: CUDA out of memory (simulated)"
    assert run.data.tags["fixlab.health"] == "critical"
    assert "CUDA out of memory" in _outcome_line(_report(logger.run_id))


def test_lightning_interrupted_is_killed(tracking_uri):
    logger = MLFlowLogger(experiment_name="outcome", tracking_uri=tracking_uri)
    sigint = signal.getsignal(signal.SIGINT)
    try:
        with pytest.raises(SystemExit):  # Lightning turns Ctrl-C into a graceful sys.exit(1)
            train_lightning(_FailsAtStep(KeyboardInterrupt()), [GradientHealthCallback(log_every=1)],
                            steps=5, logger=logger)
    finally:
        signal.signal(signal.SIGINT, sigint)  # Lightning ignores SIGINT from then on
    tags = _tags(logger.run_id)
    assert tags["fixlab.outcome"] == "killed: KeyboardInterrupt"
    assert tags["fixlab.health"] == "warning"


# --- record_outcome: the one writer, for whoever ends the run -----------------------------------

def test_record_outcome_vocabulary(tracking_uri):
    from mlflow_plugins.run_record import record_outcome

    client = mlflow.MlflowClient()
    run_id = client.create_run("0").info.run_id
    assert record_outcome(run_id, "FINISHED") == "finished"
    assert _tags(run_id)["fixlab.outcome"] == "finished"
    assert "fixlab.health" not in _tags(run_id)  # no diagnostics ran: nothing to say about health
    other = client.create_run("0").info.run_id
    assert record_outcome(other, "failed", "exit code 3\nmore") == "failed: exit code 3"
    with pytest.raises(ValueError, match=r"^status='DONE' is not a run status; allowed: "
                                         r"\['FINISHED', 'FAILED', 'KILLED'\]"):
        record_outcome(run_id, "DONE")


def test_record_outcome_after_the_report_rewrites_tags_and_report(tracking_uri):
    """A project run: the monitors closed normally, then the run failed; later it was continued
    and finished, so the outcome and the health follow."""
    from mlflow_plugins.run_record import record_outcome

    with mlflow.start_run() as run:
        train_plain(mlp(), steps=3)
    run_id = run.info.run_id
    assert _tags(run_id)["fixlab.health"] == "ok"
    record_outcome(run_id, "FAILED", ValueError("claims.yaml: unknown metric 'val/acc'"))
    tags = _tags(run_id)
    assert tags["fixlab.outcome"] == "failed: ValueError: claims.yaml: unknown metric 'val/acc'"
    assert tags["fixlab.health"] == "critical"
    assert "unknown metric" in _outcome_line(_report(run_id))
    record_outcome(run_id, "FINISHED")
    tags = _tags(run_id)
    assert (tags["fixlab.outcome"], tags["fixlab.health"]) == ("finished", "ok")
    assert _outcome_line(_report(run_id)).endswith("finished")


def test_the_first_failure_names_the_cause(tracking_uri):
    """Lightning turns Ctrl-C into sys.exit(1): the run's end sees SystemExit, the callbacks saw
    the interrupt. A failure recorded later in the same process does not replace the first."""
    from mlflow_plugins.run_record import record_outcome

    run_id = _plain_loop_raising(KeyboardInterrupt("signal 15"))
    assert record_outcome(run_id, "FAILED", SystemExit(1)) == "killed: KeyboardInterrupt: signal 15"
    assert _tags(run_id)["fixlab.outcome"] == "killed: KeyboardInterrupt: signal 15"


def test_record_outcome_while_the_report_is_open_is_written_with_it(tracking_uri):
    from mlflow_plugins.run_record import record_outcome, run_report

    with mlflow.start_run() as run:
        with run_report(run.info.run_id):
            record_outcome(run.info.run_id, "KILLED", KeyboardInterrupt("signal 15"))
            assert "fixlab.outcome" not in _tags(run.info.run_id)  # written once, with the report
    tags = _tags(run.info.run_id)
    assert (tags["fixlab.outcome"], tags["fixlab.health"]) == ("killed: KeyboardInterrupt: signal 15", "warning")


def test_the_report_shows_the_outcome_first():
    from mlflow_plugins.findings import Finding
    from mlflow_plugins.outcome import OUTCOME_SECTION
    from mlflow_plugins.recording.report import render_report

    page = render_report([Finding.of("GRAD_VANISHING", 3, "fc.weight")],
                         sections={OUTCOME_SECTION: "failed: ValueError: <bad> input", "Claims": "<p>c</p>"})
    assert "failed: ValueError: &lt;bad&gt; input" in _outcome_line(page)  # escaped: it is text
    assert ">critical</span>" in page  # worse than the finding's warning
    assert page.count("<h2>") == 2  # Findings, Claims: the outcome is not a section of its own


def test_a_clean_exit_is_not_a_failure(tracking_uri):
    from mlflow_plugins.outcome import outcome_text, status_of

    assert [status_of(e) for e in (SystemExit(0), SystemExit(None), SystemExit(2), KeyboardInterrupt(),
                                   ValueError())] == ["FINISHED", "FINISHED", "FAILED", "KILLED", "FAILED"]
    assert outcome_text("KILLED", KeyboardInterrupt()) == "killed: KeyboardInterrupt"
    run_id = _plain_loop_raising(SystemExit(0))
    tags = _tags(run_id)
    assert "fixlab.outcome" not in tags and tags["fixlab.health"] == "ok"
