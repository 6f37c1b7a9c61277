"""`RunConfig`: the fields every project's run has, and the one way configs are built and stored.

A project's config is a frozen dataclass deriving from `RunConfig`; it adds its own fields (each
with a commented default) and overrides the shared defaults it needs. Standard library only, so
an entry script rejects a bad parameter before anything heavy is imported.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, fields
from typing import Any, Mapping, TypeVar

__all__ = ["RunConfig"]

C = TypeVar("C", bound="RunConfig")


@dataclass(frozen=True)
class RunConfig:
    """The shared fields of one tracked run."""

    seed: int = 0                   # seeds the data, the split, the weights and the shuffle
    epochs: int = 10
    lr: float | None = None         # the optimizer's learning rate; a project may give None a meaning
    log_every: int = 10             # steps between gradient statistics / metric flushes
    policy: str = "warn"            # on critical findings: warn | skip_step | stop
    experiment_name: str = ""       # standalone runs only (`mlflow run` picks its own); "" = the project's
    cache_dir: str | None = None    # generated data; default: $FIXLAB_CACHE or ~/.cache/fixlab

    @property
    def entry_point(self) -> str:
        """The MLproject entry point of this run, also its `fixlab.variant` tag and run name."""
        return str(getattr(self, "variant"))

    @classmethod
    def from_params(cls: type[C], values: Mapping[str, Any], **overrides: Any) -> C:
        """A config from `parse_params(PARAMS, ...)`'s result (None means the default)."""
        given = {k: v for k, v in values.items() if v is not None}
        return cls(**{**given, **overrides})

    def to_params(self) -> dict[str, Any]:
        """Every field, flat, for MLflow params (sequences joined by commas)."""
        return {k: ",".join(map(str, v)) if isinstance(v, (tuple, list)) else v
                for k, v in asdict(self).items()}

    def to_json(self) -> str:
        """The config exactly, for the run's checkpoint folder (what `fixlab resume` rebuilds)."""
        return json.dumps(asdict(self), sort_keys=True)

    @classmethod
    def from_json(cls: type[C], text: str) -> C:
        """The config `to_json` wrote; JSON lists become the tuples the fields hold.

        Raises:
            ValueError: the text is not a config of this class (unknown or missing fields).
        """
        data = json.loads(text)
        known = {f.name for f in fields(cls)}
        if not isinstance(data, dict) or set(data) - known:
            extra = sorted(set(data) - known) if isinstance(data, dict) else data
            raise ValueError(f"not a {cls.__name__}: unknown fields {extra}")
        return cls(**{k: tuple(v) if isinstance(v, list) else v for k, v in data.items()})
