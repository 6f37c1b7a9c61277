"""What a scheduler, `timeout` or CI does to `mlflow run`, and what the run says afterwards.

SIGTERM to `mlflow run`, or SIGKILL of `mlflow run` alone, must stop training (which `mlflow run`
does not pass on): the run ends KILLED with its report written. SIGKILL of both leaves a run no
process can end: `fixlab runs --stale --close` ends it. Real `mlflow run` processes on SQLite.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import mlflow

REPO = Path(__file__).resolve().parents[2]
LONG = ["-P", "n_samples=24", "-P", "n_classes=4", "-P", "epochs=100000", "-P", "batch_size=8", "-P", "log_every=1"]


def _children(pid: int) -> list[int]:
    found = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/stat") as stat:
                    if int(stat.read().rsplit(")", 1)[1].split()[1]) == pid:
                        found.append(int(entry))
            except (OSError, ValueError, IndexError):
                continue
    return found


def _alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as stat:
            return stat.read().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


def _start(store: Path) -> tuple[subprocess.Popen, mlflow.MlflowClient, str, int]:
    """`mlflow run . -e repr_fixed` training for a long time; (process, client, run id, training pid)
    once the run holds metrics."""
    uri = f"sqlite:///{store / 'mlflow.db'}"
    client = mlflow.MlflowClient(tracking_uri=uri)
    client.search_experiments()  # the store exists before `mlflow run` and this test both open it
    env = {**os.environ, "MLFLOW_TRACKING_URI": uri, "FIXLAB_CACHE": str(store / "cache"),
           "FIXLAB_CHECKPOINTS": str(store / "checkpoints")}
    for name in ("MLFLOW_RUN_ID", "MLFLOW_EXPERIMENT_ID", "MLFLOW_EXPERIMENT_NAME"):
        env.pop(name, None)
    process = subprocess.Popen([sys.executable, "-m", "mlflow", "run", ".", "-e", "repr_fixed", "--env-manager",
                                "local", "--experiment-name", "signals", *LONG], cwd=REPO, env=env,
                               stdout=subprocess.DEVNULL, stderr=open(store / "mlflow_run.log", "w"),
                               start_new_session=True)  # its own process group, as a job has
    deadline = time.monotonic() + 180
    while time.monotonic() < deadline:
        assert process.poll() is None, (store / "mlflow_run.log").read_text()[-3000:]
        experiment = client.get_experiment_by_name("signals")
        runs = client.search_runs([experiment.experiment_id]) if experiment else []
        if runs and "train/loss_step" in runs[0].data.metrics:
            (child,) = _children(process.pid)
            return process, client, runs[0].info.run_id, child
        time.sleep(0.2)
    process.kill()
    raise AssertionError("the run logged no training metric within 180 s")


def _wait_gone(pid: int, seconds: float = 60) -> float:
    start = time.monotonic()
    while _alive(pid):
        assert time.monotonic() - start < seconds, f"training process {pid} still runs {seconds} s later"
        time.sleep(0.1)
    return time.monotonic() - start


def test_stopping_mlflow_run_stops_training_and_ends_the_run_killed(tmp_path) -> None:
    """SIGTERM ends `mlflow run` at once without passing it on (SIGKILL of `mlflow run` reaches
    training the same way: the kernel's parent-death signal)."""
    process, client, run_id, training = _start(tmp_path)
    process.send_signal(signal.SIGTERM)
    process.wait(timeout=60)
    _wait_gone(training)
    run = client.get_run(run_id)
    assert run.info.status == "KILLED"
    assert run.data.tags.get("fixlab.health") in ("ok", "warning", "critical")  # the report was written
    assert {a.path for a in client.list_artifacts(run_id, "fixlab")} >= {"fixlab/report.html", "fixlab/findings.json"}


def test_a_run_whose_processes_were_all_killed_is_closed_by_fixlab_runs_stale(tmp_path) -> None:
    process, client, run_id, training = _start(tmp_path)
    os.killpg(process.pid, signal.SIGKILL)  # the whole job at once, like a power cut
    process.wait(timeout=60)
    _wait_gone(training)
    assert client.get_run(run_id).info.status == "RUNNING"  # no process was left to end it
    env = {**os.environ, "MLFLOW_TRACKING_URI": f"sqlite:///{tmp_path / 'mlflow.db'}"}
    closed = subprocess.run([sys.executable, "-m", "mlflow_plugins.cli", "runs", "--experiment", "signals", "--stale",
                             "--close"], env=env, capture_output=True, text=True, timeout=120)
    assert closed.returncode == 0 and run_id in closed.stdout, closed.stderr
    run = client.get_run(run_id)
    assert run.info.status == "KILLED" and run.data.tags["fixlab.outcome"].startswith("killed: process ")
