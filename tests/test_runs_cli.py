"""`fixlab runs`: the runs of an experiment with their health, and closing runs whose process died
without ending them (SIGKILL, power loss). Real MLflow on a temporary SQLite store, real processes."""

from __future__ import annotations

import socket
import subprocess
import sys

import mlflow
import pytest

from mlflow_plugins.cli import main as fixlab
from mlflow_plugins.liveness import HOST_TAG, PID_START_TAG, PID_TAG, process_alive, process_tags


def _dead_process_tags() -> dict[str, str]:
    child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(30)"])
    tags = process_tags(child.pid)
    child.kill()
    child.wait()
    return tags


def test_liveness_of_this_process_a_dead_one_and_ones_it_cannot_see() -> None:
    assert process_alive(process_tags()) is True
    assert process_alive(_dead_process_tags()) is False
    assert process_alive({**process_tags(), PID_START_TAG: "1"}) is False  # the pid was recycled
    assert process_alive({**process_tags(), HOST_TAG: socket.gethostname() + "-elsewhere"}) is None
    assert process_alive({}) is None and process_alive({HOST_TAG: socket.gethostname(), PID_TAG: "x"}) is None


def test_new_runs_are_tagged_with_their_process(tracking_uri) -> None:
    with mlflow.start_run() as run:
        pass
    tags = mlflow.MlflowClient().get_run(run.info.run_id).data.tags
    assert {k: tags[k] for k in (HOST_TAG, PID_TAG)} == {k: process_tags()[k] for k in (HOST_TAG, PID_TAG)}


def _fixlab(args: list[str], capsys) -> tuple[int, str, str]:
    capsys.readouterr()
    code = fixlab(args)
    out = capsys.readouterr()
    return code, out.out, out.err


def test_runs_lists_health_and_closes_only_stale_runs(tracking_uri, capsys) -> None:
    client = mlflow.MlflowClient()
    experiment = client.create_experiment("e")
    done = client.create_run(experiment, run_name="done", tags={"fixlab.health": "critical"})
    client.set_terminated(done.info.run_id, "FINISHED")
    dead = client.create_run(experiment, run_name="dead", tags=_dead_process_tags())
    alive = client.create_run(experiment, run_name="alive", tags=process_tags())
    elsewhere = client.create_run(experiment, run_name="elsewhere",
                                  tags={**_dead_process_tags(), HOST_TAG: "another-host"})

    code, out, _ = _fixlab(["runs", "--experiment", "e"], capsys)
    assert code == 0 and "critical" in out and out.count("\n") == 2 + 4
    assert "RUNNING (stale)" in next(line for line in out.splitlines() if "dead" in line)
    assert "stale" not in next(line for line in out.splitlines() if " alive " in line)

    code, out, _ = _fixlab(["runs", "--experiment", "e", "--stale"], capsys)
    assert code == 0 and dead.info.run_id in out and alive.info.run_id not in out and "elsewhere" not in out

    code, out, _ = _fixlab(["runs", "--experiment", "e", "--stale", "--close"], capsys)
    assert code == 0 and "closed 1 stale run(s) as KILLED" in out
    closed = client.get_run(dead.info.run_id)
    assert closed.info.status == "KILLED" and closed.data.tags["fixlab.outcome"].startswith("killed: process ")
    for untouched in (alive, elsewhere):
        assert client.get_run(untouched.info.run_id).info.status == "RUNNING"


@pytest.mark.parametrize("args, message", [
    (["runs", "--experiment", "nope"], "experiment='nope' does not exist; allowed: one of"),
    (["runs", "--experiment", "Default", "--close"], "--close is allowed only with --stale"),
])
def test_runs_refuses_bad_input_in_one_line(tracking_uri, capsys, args, message) -> None:
    code, _, err = _fixlab(args, capsys)
    assert code == 2 and message in err and err.count("\n") == 1
