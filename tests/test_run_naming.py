"""Runs say what they are in the MLflow runs list: the project's experiment under `mlflow run`,
a readable name with the health, a user's own choices kept."""

from __future__ import annotations

from pathlib import Path

from mlflow.utils.name_utils import _generate_random_name

from projects.common.experiment_provider import ProjectExperiment, project_of_mlflow_run
from projects.common.run_name import generated, run_name

REPO = Path(__file__).resolve().parents[1]


def test_an_mlflow_run_of_a_fixlab_entry_point_names_its_project():
    run = ["/venv/bin/mlflow", "run", str(REPO)]
    assert project_of_mlflow_run([*run, "-e", "repr_broken", "--env-manager", "local"]) == "repr_gradflow"
    assert project_of_mlflow_run([*run, "--env-manager", "local", "-P", "seed=1",
                                  "--entry-point=cpc_fixed"]) == "cpc_snn_gw"
    assert project_of_mlflow_run([*run, "-P", "e=1", "--entry-point", "aresgw_baseline"]) == "cpc_snn_gw"


def test_anything_else_is_left_to_mlflow(tmp_path):
    (tmp_path / "MLproject").write_text("name: other\nentry_points:\n  main:\n"
                                        "    command: python -m projects.repr_gradflow.train\n")
    assert project_of_mlflow_run(["mlflow", "run", str(tmp_path)]) is None  # not fixlab's project
    assert project_of_mlflow_run(["mlflow", "run", str(REPO), "-e", "no_such_entry"]) is None
    assert project_of_mlflow_run(["mlflow", "ui"]) is None
    assert project_of_mlflow_run(["python", "train.py"]) is None
    assert project_of_mlflow_run(["mlflow", "run", "https://github.com/x/y", "-e", "repr_broken"]) is None


def test_a_named_experiment_wins_over_the_project(monkeypatch):
    monkeypatch.setattr("sys.argv", ["mlflow", "run", str(REPO), "-e", "repr_fixed"])
    monkeypatch.delenv("MLFLOW_EXPERIMENT_NAME", raising=False)
    monkeypatch.delenv("MLFLOW_EXPERIMENT_ID", raising=False)
    assert ProjectExperiment().in_context()
    monkeypatch.setenv("MLFLOW_EXPERIMENT_NAME", "mine")
    assert not ProjectExperiment().in_context()


def test_run_names_are_readable_and_a_users_name_is_kept():
    assert run_name("repr_broken", 0) == "repr_broken-seed0"
    assert run_name("repr_broken", 3, "critical") == "repr_broken-critical-seed3"
    assert all(generated(_generate_random_name()) for _ in range(100))
    assert generated("") and generated(None)
    assert not generated("my-baseline-1") and not generated("repr_broken-seed0")
