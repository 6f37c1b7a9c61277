"""The shape every entry script shares: check every parameter, then import the heavy code and run.

Standard library only, so a bad parameter is refused (one line, exit code 2, no MLflow run)
before torch, JAX or MLflow are loaded.

A project package (`projects/<name>/__init__.py`) exposes `SPEC`, `PARAMS`, `Config`,
`check_inputs` (all standard library) and, loaded on first use, `train_and_evaluate`; its
entry script is then `project_main("projects.<name>", argv)`.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass, field
from typing import Any, Callable, Mapping, Sequence

from projects.common.params import Param, ParamError, parse_params, report_param_error


@dataclass
class RunSummary:
    """What a tracked run measured and decided, for the terminal."""

    project: str
    registered_model: str
    run_id: str
    variant: str
    metrics: dict[str, float]
    health: str
    findings: list[str]
    headline: list[str] = field(default_factory=list)  # the project's own metric lines
    # (claim id, expected range, measured value, verdict)
    claims: list[tuple[str, str, float | None, str]] = field(default_factory=list)
    registered_version: int | None = None
    registration: str = ""
    run_name: str = ""
    # Where to look next (`report_command.where_to_look`): the report, `mlflow ui`, the run's address.
    look: dict[str, str | None] = field(default_factory=dict)

    def text(self) -> str:
        """A few lines: the run, its metrics, health, claim verdicts, registration, where to look."""
        lines = [f"{self.project} {self.variant}: run {self.run_name or self.run_id} ({self.run_id})",
                 *(f"  {h}" for h in self.headline),
                 f"  health {self.health}; findings: {', '.join(self.findings) or 'none'}"]
        for cid, expected, measured, verdict in self.claims:
            shown = "n/a" if measured is None else f"{measured:.4g}"
            lines.append(f"  claim {cid}: expected {expected}, measured {shown} -> {verdict}")
        version = "not registered" if self.registered_version is None else f"version {self.registered_version}"
        lines.append(f"  model {self.registered_model}: {version} ({self.registration})")
        if self.look.get("report"):
            lines.append(f"  report   {self.look['report']}  (or: fixlab report {self.run_id})")
        if self.look.get("ui_command"):
            lines += [f"  open it  {self.look['ui_command']}", f"           then {self.look['url']}"]
        elif self.look.get("url"):
            lines.append(f"  open it  {self.look['url']}")
        return "\n".join(lines)


def run_entry(argv: Sequence[str] | None, *, prog: str, description: str, params: Sequence[Param],
              make_config: Callable[[Mapping[str, Any]], Any], check_inputs: Callable[[Any], None],
              load_runner: Callable[[], Callable[[Any], RunSummary]]) -> int:
    """Parse and check the parameters, then run; the exit code.

    Args:
        make_config: the config from the parsed values (raises `ParamError`).
        check_inputs: opens the files the config names (raises `ParamError`).
        load_runner: imports and returns the training function; called only for a good config. It
            may raise `ParamError` too, for an input it can judge only once loaded (a registered
            model), before it opens its run: reported the same way.
    """
    try:
        values = parse_params(params, argv, prog=prog, description=description)
        config = make_config(values)
        check_inputs(config)
        from projects.common.console import quiet_console  # standard library; Lightning's banners off
        quiet_console()
        print(load_runner()(config).text())
    except ParamError as error:
        _tag_rejected_run(error)
        return report_param_error(error, prog)
    return 0


def _tag_rejected_run(error: ParamError) -> None:
    """Under `mlflow run`, MLflow created the run before the parameters could be checked: say
    on it why it ends FAILED (`fixlab.outcome=failed: ParamError: ...`), so it is easy to filter."""
    import os

    run_id = os.environ.get("MLFLOW_RUN_ID")
    if run_id:
        from mlflow_plugins.run_record import record_outcome  # loads MLflow: only for a rejected run

        record_outcome(run_id, "FAILED", error)


def project_names() -> list[str]:
    """Every project: the packages under `projects/` other than `common`."""
    import pkgutil

    import projects

    return sorted(m.name for m in pkgutil.iter_modules(projects.__path__) if m.ispkg and m.name != "common")


def project_main(package: str, argv: Sequence[str] | None = None, *, description: str = "") -> int:
    """The entry script of project `package` (e.g. "projects.repr_gradflow"); the exit code."""
    project = importlib.import_module(package)

    def load_runner() -> Callable[[Any], RunSummary]:  # imports torch/JAX and MLflow: only for a good config
        return project.train_and_evaluate

    return run_entry(argv, prog=project.SPEC.name, description=description or project.__doc__.splitlines()[0],
                     params=project.PARAMS, make_config=project.Config.from_params,
                     check_inputs=project.check_inputs, load_runner=load_runner)
