"""Readable run names: the entry point, the run's health once known, and the seed.

`repr_broken-seed0` while the run trains, `repr_broken-critical-seed0` when it is done, so the
MLflow runs list says which runs are sick. A name the user chose (`mlflow run --run-name`) is
kept; MLflow's generated ones ("bold-cat-123") are replaced.
"""

from __future__ import annotations

__all__ = ["run_name", "generated"]


def run_name(entry_point: str, seed: int, health: str | None = None) -> str:
    """The name of a project run: entry point, health (once known) and seed."""
    return "-".join([entry_point, *([health] if health else []), f"seed{seed}"])


def generated(name: str | None) -> bool:
    """Whether `name` is empty or one MLflow made up (predicate-noun-number), not a user's."""
    if not name:
        return True
    from mlflow.utils.name_utils import _GENERATOR_NOUNS, _GENERATOR_PREDICATES

    parts = name.split("-")
    return (len(parts) == 3 and parts[0] in _GENERATOR_PREDICATES and parts[1] in _GENERATOR_NOUNS
            and parts[2].isdigit())
