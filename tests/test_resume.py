"""Kill a project run with SIGKILL at a random step, `fixlab resume` it, and compare its metric
histories with an uninterrupted run of the same config: same steps, same values, no step twice.

Every run is a real process (the entry script, then the `fixlab` command) on a real SQLite store.
One project per training loop: the plain PyTorch loop (repr_gradflow), the JAX loop (cpc_snn_gw)
and Lightning's (fixmatch_pu, whose state is the richest of the Lightning projects: the EMA
teacher, the optimizer and the ramp-up). poetry_ae and cvkan resume through the same Lightning
code (`projects.common.lightning_fit`); their cases were dropped to keep the suite within its
time budget.
"""

from __future__ import annotations

import math
import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import mlflow
import pytest

REPO = Path(__file__).resolve().parents[1]
# (entry module, tiny parameters, optimizer steps in the run, steps per epoch)
PROJECTS = {
    "repr_gradflow": ("projects.repr_gradflow.train",
                      ["--variant", "fixed", "--n_samples", "48", "--n_classes", "4", "--epochs", "6",
                       "--batch_size", "8", "--log_every", "2"], 6 * 5, 5),
    # fresh training windows every epoch: the numpy stream they are drawn from is part of the train state
    "cpc_snn_gw": ("projects.cpc_snn_gw.train",
                   ["--variant", "cpc_fixed", "--n_train", "64", "--n_val", "32", "--n_test", "64", "--epochs", "4",
                    "--batch_size", "16", "--log_every", "2", "--fresh_data", "true", "--waveform_bank", "16"],
                   4 * 4, 4),
    "fixmatch_pu": ("projects.fixmatch_pu.train",
                    ["--variant", "debugged", "--epochs", "3", "--n_micrographs", "8", "--particles_per_micrograph",
                     "10", "--negatives_per_micrograph", "30", "--width", "4", "--batch_size", "8",
                     "--positive_batch_size", "2", "--log_every", "2"], 3 * 9, 9),
}


def _kill_step(n_steps: int, per_epoch: int) -> int:
    """A random step; half the time an epoch's last step, where a checkpoint is written while the
    epoch's metrics are still being logged (a kill there once lost them)."""
    draw = random.Random()
    if draw.random() < 0.5:
        return draw.randrange(per_epoch - 1, n_steps - 2, per_epoch)
    return draw.randrange(1, n_steps - 2)


def _env(store: Path, experiment: str, cache: Path | None = None) -> dict[str, str]:
    env = {**os.environ, "MLFLOW_TRACKING_URI": f"sqlite:///{store / 'mlflow.db'}",
           "FIXLAB_CACHE": str(cache or store / "cache"), "FIXLAB_CHECKPOINTS": str(store / "checkpoints"),
           "MLFLOW_EXPERIMENT_NAME": experiment, "PYTHONPATH": str(REPO)}
    env.pop("MLFLOW_RUN_ID", None)
    return env


def _start(module: str, args: list[str], store: Path, experiment: str, cache: Path | None = None
           ) -> subprocess.Popen:
    """The entry script in its own process; its stderr goes to `<experiment>.log` (a pipe nobody
    reads while it runs could fill and stall it)."""
    with open(store / f"{experiment}.log", "w") as log:
        return subprocess.Popen([sys.executable, "-m", module, *args], cwd=store,
                                env=_env(store, experiment, cache), stdout=subprocess.DEVNULL, stderr=log)


def _log(store: Path, experiment: str) -> str:
    return (store / f"{experiment}.log").read_text()[-3000:]


def _only_run(client: mlflow.MlflowClient, experiment: str):
    found = client.get_experiment_by_name(experiment)
    runs = client.search_runs([found.experiment_id]) if found else []
    return runs[0] if len(runs) == 1 else None


def _kill_at(process: subprocess.Popen, client: mlflow.MlflowClient, store: Path, experiment: str, step: int) -> str:
    """SIGKILL `process` once its run holds a metric at `step` or later; the run's id."""
    deadline = time.monotonic() + 480  # generous: the machine may be busy
    while time.monotonic() < deadline:
        assert process.poll() is None, f"the run ended before step {step}: {_log(store, experiment)}"
        run = _only_run(client, experiment)
        if run is not None:
            steps = [m.step for key in run.data.metrics for m in client.get_metric_history(run.info.run_id, key)]
            if steps and max(steps) >= step:
                process.send_signal(signal.SIGKILL)
                process.wait()
                return run.info.run_id
        time.sleep(0.05)
    process.kill()
    raise AssertionError(f"no metric at step {step} within 480 s")


def _histories(client: mlflow.MlflowClient, run_id: str) -> dict[str, list[tuple[int, float | str]]]:
    """Every metric's (step, value) points in step order; left out: timings (perf/*) and whether the
    data came from the cache (whichever run came first may have generated it)."""
    run = client.get_run(run_id)
    return {key: sorted((m.step, "nan" if math.isnan(m.value) else m.value)  # NaN equals NaN here
                        for m in client.get_metric_history(run_id, key))
            for key in run.data.metrics if not key.startswith("perf/") and key != "data/generated"}


@pytest.mark.parametrize("project", sorted(PROJECTS))
def test_a_killed_run_resumes_into_the_same_run_with_the_uninterrupted_metrics(project, tmp_path, shared_data_cache):
    module, args, n_steps, per_epoch = PROJECTS[project]
    client = mlflow.MlflowClient(tracking_uri=f"sqlite:///{tmp_path / 'mlflow.db'}")
    reference = _start(module, args, tmp_path, "uninterrupted", shared_data_cache)  # beside the run to kill
    kill_step = _kill_step(n_steps, per_epoch)
    victim = _start(module, args, tmp_path, "killed", shared_data_cache)
    run_id = _kill_at(victim, client, tmp_path, "killed", kill_step)
    assert reference.wait(timeout=600) == 0, _log(tmp_path, "uninterrupted")
    assert client.get_run(run_id).info.status == "RUNNING"  # SIGKILL: the run could not mark itself
    folder = Path(client.get_run(run_id).data.tags["fixlab.checkpoints"])
    assert folder.is_dir() and folder.parent == tmp_path / "checkpoints"

    resumed = subprocess.run([sys.executable, "-m", "mlflow_plugins.cli", "resume", run_id], cwd=tmp_path,
                             env=_env(tmp_path, "killed", shared_data_cache), capture_output=True, text=True,
                             timeout=600)
    assert resumed.returncode == 0, f"killed at step {kill_step}: {resumed.stderr[-3000:]}"

    expected = _histories(client, _only_run(client, "uninterrupted").info.run_id)
    got = _histories(client, run_id)
    assert sorted(got) == sorted(expected), f"killed at step {kill_step}"
    differ = {key: (got[key], points) for key, points in expected.items() if got[key] != points}
    assert not differ, f"after a kill at step {kill_step}: {differ}"
    run = client.get_run(run_id)
    assert run.info.status == "FINISHED" and run.data.tags["fixlab.resumes"] == "1"
    assert run.data.tags["fixlab.health"] == client.get_run(_only_run(client, "uninterrupted").info.run_id
                                                            ).data.tags["fixlab.health"]
    assert not folder.exists()  # finished: the model is in MLflow, the checkpoints are gone
    assert len(_only_run(client, "killed").info.run_id) and len(client.search_runs(
        [client.get_experiment_by_name("killed").experiment_id])) == 1  # no second run was opened
