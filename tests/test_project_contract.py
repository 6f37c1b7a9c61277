"""What the skeleton (`projects/common`) expects of every project, checked once for all of them.

A project is a config, a model, a data module and a claims file: its package exposes `SPEC`,
`PARAMS`, `Config`, `check_inputs` and (loaded on first use) `train_and_evaluate`; MLproject has an
entry point per variant whose parameters are the project's and whose defaults are the config's.
Each project's end-to-end run is in `test_resume.py` (the uninterrupted reference) and its own tests.
"""

from __future__ import annotations

import dataclasses
import importlib
import inspect
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from mlflow_plugins.claims import load_claims
from projects.common.config import RunConfig
from projects.common.entry import project_names
from projects.common.params import parse_params
from projects.common.spec import ProjectSpec

REPO = Path(__file__).resolve().parents[1]
MLPROJECT = yaml.safe_load((REPO / "MLproject").read_text())
SHARED_FIELDS = {f.name for f in dataclasses.fields(RunConfig)}


def _entry_points(name: str) -> dict[str, dict]:
    """MLproject's entry points that run project `name`'s entry script."""
    script = f"python -m projects.{name}.train "
    return {entry: point for entry, point in MLPROJECT["entry_points"].items()
            if " ".join(point["command"].split()).startswith(script)}


def test_every_project_is_found() -> None:
    assert {"repr_gradflow", "cpc_snn_gw"} <= set(project_names())


@pytest.fixture(params=project_names())
def project(request):
    return importlib.import_module(f"projects.{request.param}")


def test_the_package_exposes_the_skeletons_names(project) -> None:
    name = project.__name__.split(".")[-1]
    assert isinstance(project.SPEC, ProjectSpec) and project.SPEC.name == name
    assert issubclass(project.Config, RunConfig) and project.Config.__dataclass_params__.frozen
    assert callable(project.check_inputs)
    assert "resume" in inspect.signature(project.train_and_evaluate).parameters
    assert callable(importlib.import_module(f"projects.{name}.train").main)


def test_the_document_has_a_title_and_its_citations_name_codes(project) -> None:
    from mlflow_plugins.findings import check_code
    from projects.common.documents import TITLES

    assert project.SPEC.document in TITLES, "add the document's readable title to projects/common/documents.py"
    assert all(check_code(code) for code in project.SPEC.citations)  # a built-in code or the project's own
    assert all(text.startswith(project.SPEC.document_label + ": ") for text in project.SPEC.cited().values())


def test_params_are_config_fields_and_the_shared_ones_are_there(project) -> None:
    fields = {f.name for f in dataclasses.fields(project.Config)}
    names = {p.name for p in project.PARAMS}
    assert names <= fields, f"parameters that are not config fields: {sorted(names - fields)}"
    assert {"seed", "epochs", "lr", "log_every", "policy"} <= names
    assert SHARED_FIELDS <= fields


def test_config_round_trips_through_json_and_logs_flat_params(project) -> None:
    config = project.Config.from_params(parse_params(project.PARAMS, []))
    assert project.Config.from_json(config.to_json()) == config
    assert all(v is None or isinstance(v, (str, int, float, bool)) for v in config.to_params().values())
    with pytest.raises(ValueError, match="unknown fields"):
        project.Config.from_json('{"no_such_field": 1}')


def test_mlproject_entry_points_match_params_and_config_defaults(project) -> None:
    points = _entry_points(project.SPEC.name)
    assert points, f"no MLproject entry point runs projects.{project.SPEC.name}.train"
    params = {p.name for p in project.PARAMS}
    for entry, point in points.items():
        declared = {k: v["default"] for k, v in point["parameters"].items()}
        command = " ".join(point["command"].split())
        fixed = dict(arg.removeprefix("--").split(" ", 1) for arg in
                     command.removeprefix(f"python -m projects.{project.SPEC.name}.train ").split(" --")
                     if "{" not in arg)
        assert set(declared) | set(fixed) == params, entry
        for name in declared:
            assert f"--{name} {{{name}}}" in command, entry
        values = parse_params(project.PARAMS, [f"--{k}={v}" for k, v in {**declared, **fixed}.items()])
        config = project.Config.from_params(values)
        assert config.entry_point == entry
        defaults = project.Config(**{k: v for k, v in values.items() if k in fixed})
        assert config == defaults, f"{entry}: MLproject defaults differ from the config's"


def test_every_claim_names_an_entry_point_of_the_project(project) -> None:
    claims = load_claims(project.SPEC.claims_file)
    assert claims.document == project.SPEC.document
    entries = set(_entry_points(project.SPEC.name))
    assert {c.variant for c in claims.claims} <= entries


def test_importing_the_project_loads_nothing_heavy(project) -> None:
    """A bad parameter is refused before torch, JAX or MLflow load: the config side is light."""
    code = (f"import sys, {project.__name__}, {project.__name__}.train; "
            "print(sorted(m for m in ('torch', 'jax', 'mlflow', 'lightning') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "[]"
