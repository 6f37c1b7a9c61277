"""API misuse is a configuration error: one line naming the argument and what is allowed.

Each case here used to be accepted (or failed with an unnamed error); training must not start
with a typo'd run id, a second monitor on a hooked model, or the other framework's objects.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.request

import jax.numpy as jnp
import mlflow
import optax
import pytest
import torch
from flax import nnx

from _models import Wrapped, mlp, train_lightning
import mlflow_plugins
from mlflow_plugins import AmpNanCallback, GradientHealthCallback, NormalizationEffectCallback
from mlflow_plugins.jax import monitored, watch_jax


def _watch(**kwargs):
    model = mlp()
    return mlflow_plugins.watch(model, torch.optim.SGD(model.parameters(), 0.1), **kwargs)


def _hooks(model: torch.nn.Module, optimizer: torch.optim.Optimizer) -> int:
    return (len(model._forward_hooks) + len(model._forward_pre_hooks)
            + len(optimizer._optimizer_step_pre_hooks) + len(optimizer._optimizer_step_post_hooks))


# --- an unknown run id ------------------------------------------------------------------------

def test_watch_refuses_an_unknown_run_id_before_training(tracking_uri):
    model = mlp()
    opt = torch.optim.SGD(model.parameters(), 0.1)
    message = (r"^run_id='typo' is not a run in tracking URI sqlite:///\S+mlflow\.db; allowed: "
               r"the id of an existing run there")
    with pytest.raises(ValueError, match=message):
        mlflow_plugins.watch(model, opt, run_id="typo")
    assert _hooks(model, opt) == 0  # nothing was hooked: training never ran under it


def test_watch_refuses_an_unknown_mlflow_run_id_from_the_environment(tracking_uri, monkeypatch):
    monkeypatch.setenv("MLFLOW_RUN_ID", "typo-env")
    with pytest.raises(ValueError, match=r"^MLFLOW_RUN_ID='typo-env' \(from the environment\) is "
                                         r"not a run in tracking URI sqlite:///"):
        _watch()


def test_watch_jax_refuses_an_unknown_run_id(tracking_uri):
    with pytest.raises(ValueError, match=r"^run_id='typo' is not a run in tracking URI sqlite:///"):
        watch_jax({"w": jnp.ones(3)}, run_id="typo")


def test_callbacks_refuse_an_unknown_mlflow_run_id_before_the_first_step(tracking_uri, monkeypatch):
    monkeypatch.setenv("MLFLOW_RUN_ID", "typo-env")  # no MLFlowLogger: the callbacks read the env
    module = Wrapped(mlp())
    with pytest.raises(ValueError, match=r"^MLFLOW_RUN_ID='typo-env' \(from the environment\) is "
                                         "not a run in tracking URI"):
        train_lightning(module, [GradientHealthCallback(log_every=1)], steps=3)
    assert module.global_step == 0


def test_a_deleted_run_is_refused(tracking_uri):
    client = mlflow.MlflowClient()
    run = client.create_run("0")
    client.delete_run(run.info.run_id)
    with pytest.raises(ValueError, match=rf"^run_id='{run.info.run_id}' is a deleted run in tracking "
                                         r"URI sqlite:///\S+; allowed: an active run"):
        _watch(run_id=run.info.run_id)


def test_an_existing_run_is_accepted_and_the_active_run_is_not_looked_up(tracking_uri):
    run = mlflow.MlflowClient().create_run("0")
    _watch(run_id=run.info.run_id).close()
    with mlflow.start_run():
        _watch().close()  # the active run exists by construction


@pytest.mark.parametrize("run_id", [mlflow.entities.RunInfo, 42, ""])
def test_run_id_must_be_a_run_id_string(run_id):
    with pytest.raises(ValueError, match=r"^run_id=.* is not allowed; allowed: a run id string"):
        _watch(run_id=run_id)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_a_store_that_cannot_be_reached_is_a_warning_not_an_error(tracking_uri, monkeypatch, tmp_path):
    """Nothing listens on the port: the check cannot tell, so training goes on (STYLE rule 7)."""
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "0")  # keep close() from retrying for minutes
    monkeypatch.chdir(tmp_path)  # what close() cannot send is spooled under the working directory
    uri = f"http://127.0.0.1:{_free_port()}"
    with pytest.warns(RuntimeWarning, match=r"could not check run_id='abc' in tracking URI http://"):
        monitor = _watch(run_id="abc", tracking_uri=uri)
    monitor.close()


def test_a_store_that_does_not_answer_does_not_hold_up_training(tracking_uri, monkeypatch, tmp_path):
    """A server that accepts but never answers: the check gives up after its deadline."""
    from mlflow_plugins import run_check

    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "0")
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(run_check, "CHECK_TIMEOUT_S", 0.5)
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen()
    accepted: list[socket.socket] = []
    threading.Thread(target=lambda: accepted.append(server.accept()[0]), daemon=True).start()
    try:
        start = time.perf_counter()
        with pytest.warns(RuntimeWarning, match=r"could not check run_id='abc'.*no answer within 0.5 s"):
            monitor = watch_jax({"w": jnp.ones(3)}, run_id="abc",
                                tracking_uri=f"http://127.0.0.1:{server.getsockname()[1]}")
        waited = time.perf_counter() - start
    finally:
        for conn in accepted:
            conn.close()
        server.close()
    assert waited < 5.0, f"construction waited {waited:.1f} s for a silent server"
    monitor.close()  # the server is gone now: close() spools what it cannot send, in tmp_path


def test_a_tracking_server_says_which_run_ids_exist(tmp_path, monkeypatch):
    """Through a real `mlflow server` (what `mlflow run` against a server gives): the REST
    store's not-found is a configuration error too, and a real run is accepted."""
    monkeypatch.chdir(tmp_path)
    port = _free_port()
    server = subprocess.Popen(
        [sys.executable, "-m", "mlflow", "server", "--backend-store-uri", f"sqlite:///{tmp_path}/db",
         "--default-artifact-root", "mlflow-artifacts:/", "--artifacts-destination", str(tmp_path / "art"),
         "--host", "127.0.0.1", "--port", str(port), "--workers", "1"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True,
        env={**os.environ, "MLFLOW_SERVER_ENABLE_JOB_EXECUTION": "false", "MLFLOW_DISABLE_TELEMETRY": "true"})
    uri = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                with urllib.request.urlopen(f"{uri}/health", timeout=2):
                    break
            except OSError:
                assert server.poll() is None and time.monotonic() < deadline, "mlflow server did not start"
                time.sleep(0.25)
        with pytest.raises(ValueError, match=rf"^run_id='typo' is not a run in tracking URI {uri}; allowed"):
            _watch(run_id="typo", tracking_uri=uri)
        run = mlflow.MlflowClient(tracking_uri=uri).create_run("0")
        _watch(run_id=run.info.run_id, tracking_uri=uri).close()
        assert mlflow.MlflowClient(tracking_uri=uri).get_run(run.info.run_id).data.tags["fixlab.health"] == "ok"
    finally:
        os.killpg(server.pid, signal.SIGTERM)
        server.wait(timeout=20)


# --- one open monitor per model ----------------------------------------------------------------

def test_a_second_watch_on_the_same_model_is_refused_until_the_first_closes():
    model = mlp()
    opt = torch.optim.SGD(model.parameters(), 0.1)
    first = mlflow_plugins.watch(model, opt)
    hooks = _hooks(model, opt)
    with pytest.raises(ValueError, match=r"^model=Sequential is already watched by an open monitor; "
                                         r"allowed: one open watch\(\) per model: close the first"):
        mlflow_plugins.watch(model, opt)
    assert _hooks(model, opt) == hooks  # the refused one hooked nothing
    first.close()
    with mlflow_plugins.watch(model, opt):  # once closed, the model can be watched again
        pass
    other = mlp()  # another model is independent
    with mlflow_plugins.watch(other, torch.optim.SGD(other.parameters(), 0.1)):
        pass


# --- the other framework's objects -------------------------------------------------------------

def test_watch_jax_refuses_a_torch_module():
    with pytest.raises(ValueError, match=r"^params=Sequential is a torch.nn.Module; allowed: a JAX "
                                         r"parameter pytree.*for PyTorch use mlflow_plugins.watch"):
        watch_jax(mlp())


def test_watch_jax_refuses_a_flax_module_and_non_array_leaves():
    model = nnx.Linear(3, 2, rngs=nnx.Rngs(0))
    with pytest.raises(ValueError, match=r"^params=Linear is a Flax NNX module; allowed: its "
                                         r"parameter state, nnx.state\(model, nnx.Param\)"):
        watch_jax(model)
    with pytest.raises(ValueError, match=r"^params leaf \['w'\] is str; allowed: arrays"):
        watch_jax({"w": "weights", "b": jnp.ones(2)})
    with pytest.raises(ValueError, match=r"^params leaf \['w'\] is a torch.Tensor; allowed: JAX"):
        watch_jax({"w": torch.ones(2)})


@pytest.mark.parametrize("model,what", [
    (nnx.Linear(3, 2, rngs=nnx.Rngs(0)), "Linear is a Flax NNX module"),
    ({"w": jnp.ones(3)}, "dict is a JAX pytree"),
])
def test_watch_refuses_jax_objects(model, what):
    opt = torch.optim.SGD(mlp().parameters(), 0.1)
    with pytest.raises(ValueError, match=rf"^model={what}; allowed: a torch.nn.Module; for JAX use "
                                         r"mlflow_plugins.jax.watch_jax\(params\)"):
        mlflow_plugins.watch(model, opt)


def test_watch_jax_still_takes_its_own_inputs():
    params = nnx.state(nnx.Linear(3, 2, rngs=nnx.Rngs(0)), nnx.Param)
    with watch_jax(params) as monitor:
        monitor.observe(0, monitored(optax.sgd(0.1)).init(params))


# --- thresholds and norm_modules through every entry point ---------------------------------------

THRESHOLDS = [
    ({"amp_skip_fraction": None}, r"^amp_skip_fraction=None is out of range; allowed: a finite number > 0"),
    ({"amp_skip_fraction": "0.1"}, r"^amp_skip_fraction='0.1' is out of range; allowed: a finite number > 0"),
    ({"exploding": "100"}, r"^exploding='100' is out of range; allowed: a finite number > 0"),
    ({"never_updated_steps": None}, r"^never_updated_steps=None is out of range; allowed: an integer >= 1"),
]
_OWNER = {"amp_skip_fraction": AmpNanCallback, "exploding": GradientHealthCallback,
          "never_updated_steps": GradientHealthCallback}


@pytest.mark.parametrize("kwargs,message", THRESHOLDS)
@pytest.mark.parametrize("entry", ["watch", "watch_jax", "callback"])
def test_thresholds_are_checked_everywhere(entry, kwargs, message):
    with pytest.raises(ValueError, match=message):
        if entry == "watch":
            _watch(**kwargs)
        elif entry == "watch_jax":
            watch_jax({"w": jnp.ones(3)}, **kwargs)
        else:
            _OWNER[next(iter(kwargs))](**kwargs)


def test_norm_modules_must_be_a_list_not_a_string():
    message = r"^norm_modules='LayerNorm' is not allowed; allowed: a list of module paths or class names"
    with pytest.raises(ValueError, match=message):
        _watch(norm_modules="LayerNorm")
    with pytest.raises(ValueError, match=message):
        NormalizationEffectCallback(norm_modules="LayerNorm")
