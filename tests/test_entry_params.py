"""Entry-script parameters and MLflow run handling (projects.common), via repr_gradflow's script.

Every bad parameter must be refused with exit code 2 and one stderr line naming it, before any
MLflow run is started or the tracking store is touched.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import mlflow
import numpy as np
import pytest
import torch

from projects.common import (
    Param,
    ParamError,
    choice,
    integer,
    optional_file,
    parse_params,
    real,
    tracked_run,
)
from _entry import run_main
from projects.repr_gradflow.config import ReprGradflowConfig
from projects.repr_gradflow.train import main

REPO = Path(__file__).resolve().parents[1]


def _run_script(args: list[str], tmp_path: Path) -> subprocess.CompletedProcess:
    env = {**os.environ, "MLFLOW_TRACKING_URI": f"sqlite:///{tmp_path / 'store' / 'mlflow.db'}",
           "FIXLAB_CACHE": str(tmp_path / "cache")}
    env.pop("MLFLOW_RUN_ID", None)
    (tmp_path / "store").mkdir(exist_ok=True)
    return subprocess.run([sys.executable, "-m", "projects.repr_gradflow.train", *args], cwd=REPO, env=env,
                          capture_output=True, text=True, timeout=120)


def _bad_files(tmp_path: Path) -> dict[str, str]:
    garbage = tmp_path / "garbage.npz"
    garbage.write_bytes(b"garbage")
    labels = tmp_path / "labels.npz"
    np.savez(labels, X=np.zeros((8, 5, 3), dtype=np.float32), y=np.arange(8) + 60)
    corrupt = tmp_path / "corrupt.ckpt"
    corrupt.write_bytes(b"\x80\x02 this is not a checkpoint")
    foreign = tmp_path / "foreign.ckpt"
    torch.save({"layer.weight": torch.zeros(2, 2)}, foreign)
    return {"garbage": str(garbage), "labels": str(labels), "corrupt": str(corrupt),
            "foreign": str(foreign), "missing": str(tmp_path / "missing.npz")}


BAD = [
    (["--variant", "medium"], "variant", "one of broken, fixed"),
    (["--epochs", "0"], "epochs", "an integer"),
    (["--epochs", "abc"], "epochs", "an integer"),
    (["--epochs", "2.5"], "epochs", "an integer"),
    (["--n_samples", "-3"], "n_samples", "an integer"),
    (["--n_samples", "100"], "n_samples", "2 * n_classes"),
    (["--n_classes", "1"], "n_classes", "an integer"),
    (["--batch_size", "0"], "batch_size", "an integer"),
    (["--lr", "0"], "lr", "a finite number > 0"),
    (["--lr", "nan"], "lr", "a finite number"),
    (["--lr", "fast"], "lr", "a finite number"),
    (["--seed", "-1"], "seed", "an integer"),
    (["--log_every", "0"], "log_every", "an integer"),
    (["--policy", "panic"], "policy", "one of warn, skip_step, stop"),
    (["--colour", "blue"], "colour", "known parameters"),
    (["--epochs"], "epochs", "followed by a value"),
    (["--data_path", "{missing}"], "data_path", "no such file"),
    (["--data_path", "{garbage}"], "data_path", "unreadable"),
    (["--data_path", "{labels}"], "data_path", "labels range over [60, 67]"),
    (["--init_checkpoint", "{missing}"], "init_checkpoint", "no such file"),
    (["--init_checkpoint", "{corrupt}"], "init_checkpoint", "corrupt or not a torch checkpoint"),
    (["--init_checkpoint", "{foreign}"], "init_checkpoint", "does not fit the network"),
]


def _one_line_exit_2_no_run(result, name: str, expected: str, store: Path) -> None:
    lines = result.stderr.strip().splitlines()
    assert result.returncode == 2, result.stderr
    assert len(lines) == 1, result.stderr
    assert f"{name}=" in lines[0] and expected in lines[0], lines[0]
    assert result.stdout == ""
    # Nothing touched the tracking store: no database, hence no run.
    assert not store.exists()


@pytest.mark.parametrize("args, name, expected", BAD, ids=[" ".join(a) for a, _, _ in BAD])
def test_bad_parameter_exits_2_with_one_line_and_no_run(tmp_path: Path, args: list[str], name: str,
                                                        expected: str, monkeypatch, capsys) -> None:
    files = _bad_files(tmp_path)
    store = tmp_path / "store" / "mlflow.db"
    result = run_main(main, [a.format(**files) for a in args], store, monkeypatch, capsys)
    _one_line_exit_2_no_run(result, name, expected, store)


def test_under_mlflow_run_a_rejected_parameter_says_so_on_the_run(tracking_uri: str, monkeypatch, capsys) -> None:
    """`mlflow run` creates the run before the script can check anything: it ends FAILED, and
    its outcome tag names the rejected parameter."""
    with mlflow.start_run() as run:  # what `mlflow run` made before starting the script
        pass
    monkeypatch.setenv("MLFLOW_RUN_ID", run.info.run_id)
    capsys.readouterr()
    assert main(["--epochs", "0"]) == 2
    assert capsys.readouterr().err.count("\n") == 1
    outcome = mlflow.MlflowClient().get_run(run.info.run_id).data.tags["fixlab.outcome"]
    assert outcome.startswith("failed: ParamError: invalid parameter epochs='0'")


def test_bad_parameter_in_its_own_interpreter(tmp_path: Path) -> None:
    """The script as `mlflow run` starts it: a fresh interpreter, exit code and stderr."""
    result = _run_script(["--lr", "fast"], tmp_path)
    _one_line_exit_2_no_run(result, "lr", "a finite number", tmp_path / "store" / "mlflow.db")


def test_parse_params_converts_and_defaults() -> None:
    params = (Param("n", integer(minimum=1), "3"), Param("x", real(maximum=1.0), "0.5"),
              Param("mode", choice("a", "b"), "a"), Param("path", optional_file(), None))
    assert parse_params(params, []) == {"n": 3, "x": 0.5, "mode": "a", "path": None}
    assert parse_params(params, ["--n", "4.0", "--x=-2", "--path", ""]) == {"n": 4, "x": -2.0, "mode": "a",
                                                                            "path": None}
    with pytest.raises(ParamError, match=r"invalid parameter n='0'; allowed: an integer >= 1"):
        parse_params(params, ["--n", "0"])
    with pytest.raises(ParamError, match=r"x='inf'"):
        parse_params(params, ["--x", "inf"])


def test_config_checks_cross_parameter_limits() -> None:
    with pytest.raises(ParamError, match=r"n_samples=10.*>= 2 \* n_classes = 20"):
        ReprGradflowConfig(n_samples=10, n_classes=10)
    ReprGradflowConfig(n_samples=10, n_classes=10, data_path="/any.npz")  # the file decides
    assert ReprGradflowConfig(variant="broken").entry_point == "repr_broken"


# --------------------------------------------------------------------------- tracked_run


def _status(run_id: str) -> str:
    return mlflow.MlflowClient().get_run(run_id).info.status


@pytest.fixture
def standalone(tracking_uri: str, monkeypatch: pytest.MonkeyPatch) -> str:
    """A fresh store, and no run or experiment chosen through the environment."""
    for name in ("MLFLOW_RUN_ID", "MLFLOW_EXPERIMENT_ID", "MLFLOW_EXPERIMENT_NAME"):
        monkeypatch.delenv(name, raising=False)  # also undoes what mlflow.set_experiment exports
    return tracking_uri


def test_tracked_run_marks_failure_failed(standalone: str) -> None:
    with pytest.raises(RuntimeError, match="boom"):
        with tracked_run(experiment="t", tags={"fixlab.project": "p"}) as run:
            raise RuntimeError("boom")
    assert _status(run.info.run_id) == "FAILED"
    assert mlflow.MlflowClient().get_run(run.info.run_id).data.tags["fixlab.project"] == "p"
    assert mlflow.active_run() is None


def test_tracked_run_marks_interrupt_killed(standalone: str) -> None:
    with pytest.raises(KeyboardInterrupt):
        with tracked_run(experiment="t", tags={}) as run:
            raise KeyboardInterrupt
    assert _status(run.info.run_id) == "KILLED"


def test_tracked_run_reuses_mlflow_run_id(standalone: str, monkeypatch: pytest.MonkeyPatch) -> None:
    client = mlflow.MlflowClient()
    created = client.create_run(client.create_experiment("from_mlflow_run"))
    monkeypatch.setenv("MLFLOW_RUN_ID", created.info.run_id)
    with tracked_run(experiment="ignored", tags={"fixlab.variant": "v"}) as run:
        assert run.info.run_id == created.info.run_id
    assert _status(created.info.run_id) == "FINISHED"
    assert client.get_experiment_by_name("ignored") is None
    assert len(client.search_runs([created.info.experiment_id])) == 1


@pytest.mark.parametrize("lightning_style", [False, True])
def test_a_fitting_init_checkpoint_is_accepted(tmp_path: Path, lightning_style: bool) -> None:
    from lightning_modules.repr_gradflow import ReprGradflowNet
    from projects.repr_gradflow.config import check_inputs, load_init_state, net_config

    config = ReprGradflowConfig(n_samples=24, n_classes=4)
    state = ReprGradflowNet(net_config(config, n_channels=3)).state_dict()
    path = tmp_path / "init.ckpt"
    torch.save({"state_dict": {f"net.{k}": v for k, v in state.items()}} if lightning_style else state, path)
    config = ReprGradflowConfig(n_samples=24, n_classes=4, init_checkpoint=str(path))
    check_inputs(config)
    loaded = load_init_state(str(path))
    assert set(loaded) == set(state) and all(torch.equal(loaded[k], state[k]) for k in state)
    with pytest.raises(ParamError, match=r"init_checkpoint=.*does not fit the network: wrong shapes"):
        check_inputs(ReprGradflowConfig(n_samples=24, n_classes=5, init_checkpoint=str(path)))


def test_tracked_run_marks_sigterm_killed(standalone: str) -> None:
    import signal

    before = signal.getsignal(signal.SIGTERM)
    with pytest.raises(KeyboardInterrupt):
        with tracked_run(experiment="t", tags={}) as run:
            os.kill(os.getpid(), signal.SIGTERM)
    assert _status(run.info.run_id) == "KILLED"
    assert signal.getsignal(signal.SIGTERM) == before


def test_a_repeated_signal_does_not_cut_off_closing_the_run(standalone: str) -> None:
    """A scheduler's second SIGTERM (or Ctrl-C pressed again) arrives while the run is being closed:
    only the first interrupts, so the cleanup that follows it runs to the end."""
    import signal

    cleaned = []
    with pytest.raises(KeyboardInterrupt):
        with tracked_run(experiment="t", tags={}) as run:
            try:
                os.kill(os.getpid(), signal.SIGTERM)
            finally:
                os.kill(os.getpid(), signal.SIGTERM)  # the repeat, during cleanup
                cleaned.append(True)
    assert cleaned == [True] and _status(run.info.run_id) == "KILLED"


def test_tracked_run_marks_a_signal_killed_when_a_library_turns_it_into_an_exit(standalone: str) -> None:
    """Lightning catches the interrupt, shuts down and exits with 1: still a stop, not a failure."""
    import signal

    before = signal.getsignal(signal.SIGINT)
    with pytest.raises(SystemExit):
        with tracked_run(experiment="t", tags={}) as run:
            try:
                os.kill(os.getpid(), signal.SIGINT)
            except KeyboardInterrupt:
                raise SystemExit(1)
    assert _status(run.info.run_id) == "KILLED"
    assert signal.getsignal(signal.SIGINT) == before
    with pytest.raises(SystemExit):
        with tracked_run(experiment="t", tags={}) as failed:
            raise SystemExit(1)
    assert _status(failed.info.run_id) == "FAILED"
