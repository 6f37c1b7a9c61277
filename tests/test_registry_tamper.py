"""A registered fixlab model holds data only: tampering with any of its files never runs code.

Each kind of registered model (a torch checkpoint, the GW detector pyfunc) is registered once;
then, file by file, its stored artifact is tampered with (a malicious pickle in place of the
file, code appended to a .py, an MLmodel edited to name a code path, a models-from-code file,
a cloudpickled python_model, another flavor, a YAML python tag) and every loader the README
calls safe is run on it. A canary (a directory that the planted code creates) must never
appear, and a refusal must be one line. MLflow's own `mlflow.pyfunc.load_model` is safe against
tampered *data* (it runs our installed loader module), but it obeys whatever an MLmodel says:
the last test pins that limitation, which is why the README names our loaders.
"""

from __future__ import annotations

import os
import pickle
import shutil
from pathlib import Path
from typing import Any, Callable

import mlflow
import numpy as np
import pytest
import torch
import yaml
from mlflow.models import ModelSignature
from mlflow.types import Schema, TensorSpec

from _entry import run_main
from jax_modules.cpc_snn_gw import ModelConfig, build_model
from lightning_modules.repr_gradflow.model import ReprGradflowNet, ReprNetConfig
from mlflow_plugins.registry import (Evidence, load_champion, load_champion_pyfunc, load_pyfunc,
                                     register_checkpoint, register_pyfunc)
from projects.cpc_snn_gw import predict, serving
from _mlgwsc_files import strain_file

EVIDENCE = Evidence(steps=10, baseline=0.0)
DETECTOR = ModelConfig(kind="cpc", encoder_widths=(4, 8), encoder_strides=(4, 8), latent_dim=8, context_dim=8)
WINDOW = (2, 2048)  # what predict.py cuts from a strain file: 1 s of H1 and L1 at 2048 Hz


class Payload:
    """Unpickling this creates the canary directory."""

    def __init__(self, path: Path) -> None:
        self.path = str(path)

    def __reduce__(self):
        return (os.makedirs, (self.path,))


def _register_torch(tmp: Path) -> None:
    torch.manual_seed(0)
    net = ReprGradflowNet(ReprNetConfig(n_channels=3, n_classes=4, reservoir_size=8, conv_channels=2,
                                        kernel_sizes=(3,)))
    register_checkpoint(net, project="tamper-torch", run_id=_new_run(), metric="val/acc", value=0.5,
                        health="ok", evidence=EVIDENCE, input_example=torch.randn(2, 20, 3))


def _register_detector(tmp: Path) -> None:
    signature = ModelSignature(inputs=Schema([TensorSpec(np.dtype(np.float32), (-1, *WINDOW))]),
                               outputs=Schema([TensorSpec(np.dtype(np.float32), (-1,))]))
    register_pyfunc(serving.__name__, serving.save(build_model(DETECTOR, seed=0), tmp / "detector"),
                    signature=signature, input_example=np.zeros((2, *WINDOW), np.float32),
                    pip_requirements=["numpy"], project="tamper-detector", run_id=_new_run(),
                    metric="val/auc", value=0.7, health="ok", evidence=EVIDENCE)


def _new_run() -> str:
    with mlflow.start_run() as run:
        pass
    return run.info.run_id


class Stored:
    """One registered model's stored artifact, and a pristine copy to restore it from."""

    def __init__(self, project: str, backup: Path) -> None:
        client = mlflow.MlflowClient()
        model_id = client.get_model_version_by_alias(project, "champion").source.removeprefix("models:/")
        self.project = project
        self.root = Path(client.get_logged_model(model_id).artifact_location.removeprefix("file://"))
        self.backup = backup
        shutil.copytree(self.root, backup)

    def files(self) -> list[str]:
        return sorted(str(p.relative_to(self.backup)) for p in self.backup.rglob("*") if p.is_file())

    def restore(self) -> None:
        shutil.rmtree(self.root)
        shutil.copytree(self.backup, self.root)


@pytest.fixture(scope="module")
def stored(module_store, tmp_path_factory) -> dict[str, Stored]:
    mlflow.set_experiment("tamper")
    tmp = tmp_path_factory.mktemp("tamper")
    _register_torch(tmp)
    _register_detector(tmp)
    return {kind: Stored(f"tamper-{kind}", tmp / f"pristine-{kind}") for kind in ("torch", "detector")}


# ---------------------------------------------------------------- how a file is tampered with


def _pickle_in_place(relative: str) -> Callable[[Path, Path], None]:
    def tamper(root: Path, canary: Path) -> None:
        path = root / relative
        if path.suffix == ".pt":  # what torch.load would read: a zip archive with a pickled object
            torch.save({"weight": torch.ones(1), "payload": Payload(canary)}, path)
        else:
            path.write_bytes(pickle.dumps(Payload(canary)))
    return tamper


def _edit_mlmodel(edit: Callable[[dict[str, Any], Path, Path], None]) -> Callable[[Path, Path], None]:
    def tamper(root: Path, canary: Path) -> None:
        conf = yaml.safe_load((root / "MLmodel").read_text())
        edit(conf, root, canary)
        (root / "MLmodel").write_text(yaml.safe_dump(conf))
    return tamper


def _code_path(conf: dict[str, Any], root: Path, canary: Path) -> None:
    """MLflow prepends `code` to sys.path and imports loader_module: the artifact's own module."""
    (root / "code").mkdir()
    (root / "code" / "evil_loader.py").write_text(
        f"import os\nos.makedirs({str(canary)!r})\ndef _load_pyfunc(path):\n    raise SystemExit\n")
    conf["flavors"]["python_function"].update(code="code", loader_module="evil_loader")


def _code_path_shadowing_ours(conf: dict[str, Any], root: Path, canary: Path) -> None:
    """A code path whose package has our loader's top-level name, keeping our loader_module."""
    top = conf["flavors"]["python_function"]["loader_module"].split(".")[0]
    (root / "code" / top).mkdir(parents=True)
    (root / "code" / top / "__init__.py").write_text(f"import os\nos.makedirs({str(canary)!r})\n")
    conf["flavors"]["python_function"]["code"] = "code"


def _models_from_code(conf: dict[str, Any], root: Path, canary: Path) -> None:
    (root / "model_code.py").write_text(f"import os\nos.makedirs({str(canary)!r})\n")
    pyfunc = conf["flavors"]["python_function"]
    pyfunc.update(loader_module="mlflow.pyfunc.model", model_code_path="model_code.py")
    pyfunc.pop("data")


def _cloudpickled_python_model(conf: dict[str, Any], root: Path, canary: Path) -> None:
    (root / "python_model.pkl").write_bytes(pickle.dumps(Payload(canary)))
    pyfunc = conf["flavors"]["python_function"]
    pyfunc.update(loader_module="mlflow.pyfunc.model", python_model="python_model.pkl", cloudpickle_version="3.1.1")
    pyfunc.pop("data")


def _pickled_pytorch_flavor(conf: dict[str, Any], root: Path, canary: Path) -> None:
    torch.save(Payload(canary), root / "model.pth")
    conf["flavors"]["pytorch"] = {"model_data": "model.pth", "pickle_module_name": "mlflow.pytorch.pickle_module",
                                  "pytorch_version": str(torch.__version__)}


def _yaml_python_tag(root: Path, canary: Path) -> None:
    text = (root / "MLmodel").read_text()
    (root / "MLmodel").write_text(text + f"hook: !!python/object/apply:os.makedirs [{str(canary)!r}]\n")


MLMODEL_EDITS: dict[str, Callable[[Path, Path], None]] = {
    "MLmodel: code path and its loader_module": _edit_mlmodel(_code_path),
    "MLmodel: code path shadowing our package": _edit_mlmodel(_code_path_shadowing_ours),
    "MLmodel: models from code": _edit_mlmodel(_models_from_code),
    "MLmodel: cloudpickled python_model": _edit_mlmodel(_cloudpickled_python_model),
    "MLmodel: a pickled pytorch flavor": _edit_mlmodel(_pickled_pytorch_flavor),
    "MLmodel: YAML python tag": _yaml_python_tag,
}


def _cases(stored: Stored) -> dict[str, Callable[[Path, Path], None]]:
    """Every file replaced by a pickle (or code appended to a .py), and every MLmodel edit."""
    cases: dict[str, Callable[[Path, Path], None]] = {}
    for relative in stored.files():
        if relative.endswith(".py"):
            cases[f"{relative}: code appended"] = lambda root, canary, r=relative: (root / r).open("a").write(
                f"\nimport os\nos.makedirs({str(canary)!r})\n")
        elif relative != "MLmodel":
            cases[f"{relative}: a malicious pickle"] = _pickle_in_place(relative)
    return {**cases, **MLMODEL_EDITS}


# ---------------------------------------------------------------- the loaders the README calls safe


def _safe_loaders(kind: str, project: str, tmp: Path, monkeypatch, capsys) -> dict[str, Callable[[], Any]]:
    uri = f"models:/{project}@champion"
    loaders: dict[str, Callable[[], Any]] = {
        "load_pyfunc": lambda: load_pyfunc(uri),
        "load_champion_pyfunc": lambda: load_champion_pyfunc(project),
    }
    if kind == "torch":
        loaders["load_champion"] = lambda: load_champion(project)
    else:
        strain, out = strain_file(tmp / "strain.hdf"), tmp / "scores.csv"
        store = Path(mlflow.get_tracking_uri().removeprefix("sqlite:///"))

        def predict_py() -> None:
            result = run_main(predict.main, ["--model", uri, "--data_path", str(strain), "--out", str(out)],
                              store, monkeypatch, capsys)
            if result.returncode != 0:
                lines = result.stderr.strip().splitlines()
                assert result.returncode == 2 and len(lines) == 1 and "invalid parameter model=" in lines[0], lines
                raise ValueError(lines[0])
        loaders["predict.py"] = predict_py
    return loaders


def _outcome(load: Callable[[], Any]) -> str:
    """'loaded', or the one-line refusal (anything else fails the test)."""
    try:
        load()
    except ValueError as e:
        assert "\n" not in str(e), f"a refusal of more than one line: {e}"
        return str(e)
    return "loaded"


#: Files no loader reads (environments, examples, registry metadata): tampering them may go unnoticed.
UNREAD = {"conda.yaml", "python_env.yaml", "requirements.txt", "input_example.json", "serving_input_example.json",
          "registered_model_meta"}


@pytest.mark.parametrize("kind", ["torch", "detector"])
def test_no_tampered_file_runs_code_under_our_loaders(kind, stored, tmp_path, monkeypatch, capsys):
    model = stored[kind]
    assert not [f for f in model.files() if f.endswith((".py", ".pkl", ".pickle"))], model.files()
    loaders = _safe_loaders(kind, model.project, tmp_path, monkeypatch, capsys)
    for i, (case, tamper) in enumerate(_cases(model).items()):
        canary = tmp_path / f"canary-{i}"
        model.restore()
        tamper(model.root, canary)
        for name, load in loaders.items():
            outcome = _outcome(load)
            assert not canary.exists(), f"{case}: {name} ran the planted code"
            if case.split(":")[0] not in UNREAD:  # the MLmodel and the data: always refused
                assert outcome != "loaded", f"{case}: {name} loaded a tampered model"
    model.restore()
    assert {name: _outcome(load) for name, load in loaders.items()} == dict.fromkeys(loaders, "loaded")


@pytest.mark.parametrize("kind", ["torch", "detector"])
def test_mlflow_pyfunc_load_model_never_runs_tampered_data(kind, stored, tmp_path):
    """MLflow's loader imports our installed loader module, which reads the data files as data."""
    model = stored[kind]
    file_cases = {c: t for c, t in _cases(model).items() if not c.startswith("MLmodel")}
    assert sum(c.startswith("data/") for c in file_cases) == 2, file_cases
    for i, (case, tamper) in enumerate(file_cases.items()):
        canary = tmp_path / f"canary-{i}"
        model.restore()
        tamper(model.root, canary)
        outcome = _outcome(lambda: mlflow.pyfunc.load_model(f"models:/{model.project}@champion"))
        assert not canary.exists(), f"{case}: mlflow.pyfunc.load_model ran the planted code"
        assert outcome != "loaded" or case.split(":")[0] in UNREAD, f"{case}: loaded a tampered model"
    model.restore()


def test_mlflow_pyfunc_load_model_obeys_an_edited_mlmodel(stored, tmp_path):
    """The limitation the README states: MLflow runs what an MLmodel names; our loaders refuse it."""
    model, canary = stored["torch"], tmp_path / "canary"
    model.restore()
    MLMODEL_EDITS["MLmodel: models from code"](model.root, canary)
    with pytest.raises(Exception):  # the planted file defines no model; it has run by then
        mlflow.pyfunc.load_model(f"models:/{model.project}@champion")
    assert canary.exists()
    shutil.rmtree(canary)
    with pytest.raises(ValueError, match=r"was refused: its MLmodel names code to run \(model_code_path"):
        load_champion(model.project)
    assert not canary.exists()
    model.restore()
