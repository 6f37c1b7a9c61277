"""The registration gate every flavor shares: evidence, version tags, and the honest ``champion`` alias.

The alias ``champion`` moves only to a version whose run passes the gate and beats the current
champion on the project's selection metric (DESIGN.md, "MLflow conventions" -> Registry). A run
passes the gate when its health is not critical *and* it shows the evidence a verdict needs: its diagnostics
observed enough optimizer steps to judge (a 2-step run cannot have tripped a 3-step rule), and its
selection metric beats a stated baseline (chance level, or the project's floor). A refused run is
registered without the alias, or not at all (``register_refused=False``); the version's
``fixlab.gate`` tag says why. The model itself is logged by a flavor module (`torch_models`,
`pyfunc_models`); this module sees only the logged model's id.
"""

from __future__ import annotations

import math
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any, Iterator

from ..findings import check_health
from ..paging import all_pages
from ..thresholds import Thresholds

CHAMPION = "champion"
MODEL_NAME = "model"
HEALTH_TAG = "fixlab.health"
RUN_TAG = "fixlab.run_id"
METRIC_TAG = "fixlab.selection_metric"
GATE_TAG = "fixlab.gate"
STEPS_TAG = "fixlab.steps_observed"
STEPS_NEEDED_TAG = "fixlab.steps_needed"
BASELINE_TAG = "fixlab.baseline"


def metric_tag(metric: str) -> str:
    """The model-version tag that holds the value of `metric` (e.g. ``fixlab.metric.val/acc``)."""
    return f"fixlab.metric.{metric}"


def steps_needed(thresholds: Thresholds | None = None) -> int:
    """The fewest optimizer steps after which the built-in rules can call a run healthy.

    That is the longest window a rule that decides health needs: GRAD_NEVER_UPDATED's K (a
    critical finding only after K steps without a gradient). The windowed rules that only warn
    (GRAD_NORM_OUT_OF_RANGE, AMP_STEPS_SKIPPED) do not decide health, so they do not count.
    """
    return (thresholds or Thresholds()).never_updated_steps


@dataclass(frozen=True)
class Evidence:
    """What a run shows besides its health, for the champion gate.

    Args:
        steps: the optimizer steps the run's diagnostics observed.
        baseline: the value the selection metric must beat: chance level for a classifier
            (1/n_classes for accuracy, 0.5 for ROC AUC) or the project's own floor. NaN means
            not known, and the gate refuses.
        steps_needed: the fewest steps the diagnostics need to judge (`steps_needed(thresholds)`
            of the thresholds the run's monitors used).

    Raises:
        ValueError: a count that is not an integer in range, or a baseline that is not a number.

    Example:
        >>> Evidence(steps=trainer.global_step, baseline=1 / n_classes)
    """

    steps: int
    baseline: float
    steps_needed: int = field(default_factory=steps_needed)

    def __post_init__(self) -> None:
        for name, minimum in (("steps", 0), ("steps_needed", 1)):
            count = getattr(self, name)
            if isinstance(count, bool) or not isinstance(count, int) or count < minimum:
                raise ValueError(f"{name}={count!r} is out of range; allowed: an integer >= {minimum}")
        if isinstance(self.baseline, bool) or not isinstance(self.baseline, (int, float)):
            raise ValueError(f"baseline={self.baseline!r} is not a number; allowed: a float (NaN: not known)")
        object.__setattr__(self, "baseline", float(self.baseline))


@dataclass(frozen=True)
class RegistrationResult:
    """What a registration did: the version (None if not registered) and why (the gate's verdict)."""

    name: str
    version: int | None
    became_champion: bool
    reason: str


def _beats(value: float, other: float, greater_is_better: bool) -> bool:
    return value > other if greater_is_better else value < other


def refusals(*, metric: str, value: float, health: str, evidence: Evidence,
             greater_is_better: bool) -> list[str]:
    """Why the gate refuses the alias to this run (empty: it passes), one clause per reason."""
    reasons = []
    if check_health(health) == "critical":
        reasons.append("the run's health is critical")
    if evidence.steps < evidence.steps_needed:
        reasons.append(f"{evidence.steps} steps observed, the diagnostics need {evidence.steps_needed}")
    if not math.isfinite(value):
        reasons.append(f"{metric}={value} is not finite")
    elif math.isnan(evidence.baseline):
        reasons.append(f"no baseline for {metric} is known")
    elif not _beats(value, evidence.baseline, greater_is_better):
        reasons.append(f"{metric}={value:.4g} does not beat the baseline {evidence.baseline:.4g}")
    return reasons


def _against_champion(client: Any, project: str, metric: str, value: float,
                      greater_is_better: bool) -> tuple[bool, str]:
    """For a run that passed the gate: whether it takes the alias, and the verdict."""
    current = _champion_version(client, project)
    if current is None:
        return True, f"champion: the first version to pass the gate, {metric}={value:.6g}"
    try:
        best = float(current.tags[metric_tag(metric)])
    except (KeyError, ValueError):
        return False, (f"kept v{current.version}: {CHAMPION} v{current.version} has no numeric tag "
                       f"{metric_tag(metric)!r} to compare {metric} with")
    direction = "higher" if greater_is_better else "lower"
    if _beats(value, best, greater_is_better):
        return True, (f"champion: {metric}={value:.6g} beats {CHAMPION} v{current.version} "
                      f"({best:.6g}; {direction} is better)")
    return False, (f"kept v{current.version}: {metric}={value:.6g} does not beat {CHAMPION} "
                   f"v{current.version} ({best:.6g}; {direction} is better)")


def _ensure_registered_model(client: Any, name: str) -> None:
    from mlflow.exceptions import MlflowException

    try:
        client.get_registered_model(name)
    except MlflowException as e:
        if e.error_code != "RESOURCE_DOES_NOT_EXIST":
            raise
        client.create_registered_model(name)


def _champion_version(client: Any, project: str) -> Any | None:
    from mlflow.exceptions import MlflowException

    try:
        return client.get_model_version_by_alias(project, CHAMPION)
    except MlflowException:
        return None


def check_common_args(*, project: Any, run_id: Any, metric: Any, value: Any, health: Any, evidence: Any) -> float:
    """Validate the arguments every flavor's register function takes; returns `value` as a float."""
    check_health(health)
    for name, text in (("project", project), ("run_id", run_id), ("metric", metric)):
        if not isinstance(text, str) or not text.strip():
            raise ValueError(f"{name}={text!r} is invalid; allowed: a non-empty string")
    if not isinstance(evidence, Evidence):
        raise ValueError(f"evidence is a {type(evidence).__name__}; allowed: an Evidence "
                         "(steps observed, baseline)")
    try:
        return float(value)
    except (TypeError, ValueError):
        raise ValueError(f"value={value!r} is not a number; allowed: a float") from None


def existing_run(run_id: str, tracking_uri: str | None) -> Any:
    """An `MlflowClient` for `tracking_uri`, after checking that `run_id` is a run there.

    Raises:
        ValueError: the run does not exist.
    """
    import mlflow
    from mlflow.exceptions import MlflowException

    client = mlflow.MlflowClient(tracking_uri=tracking_uri)
    try:
        client.get_run(run_id)
    except MlflowException as e:
        raise ValueError(f"run_id={run_id!r} is not a run in {client.tracking_uri} "
                         f"({e.message})") from None
    return client


def register_logged_model(client: Any, model_id: str, *, project: str, run_id: str, metric: str,
                          value: float, health: str, evidence: Evidence, greater_is_better: bool = True,
                          register_refused: bool = True) -> RegistrationResult:
    """Register the logged model `model_id` under `project`, tagged, moving the alias honestly.

    The version is tagged ``fixlab.gate`` (the verdict: ``champion: ...``, ``kept vN: ...`` or
    ``refused: ...``), ``fixlab.health`` (the run's: ``ok``/``warning``/``critical``), ``fixlab.selection_metric``,
    ``fixlab.metric.<metric>`` (the value), ``fixlab.steps_observed``, ``fixlab.steps_needed``,
    ``fixlab.baseline`` and ``fixlab.run_id``.
    """
    refused = refusals(metric=metric, value=value, health=health, evidence=evidence,
                       greater_is_better=greater_is_better)
    if refused:
        crown, verdict = False, "refused: " + "; ".join(refused)
        if not register_refused:
            return RegistrationResult(project, None, False, f"{verdict} (register_refused=False: the model "
                                      "is logged to the run but not registered)")
    else:
        crown, verdict = _against_champion(client, project, metric, value, greater_is_better)
    _ensure_registered_model(client, project)
    tags = {GATE_TAG: verdict, HEALTH_TAG: health, METRIC_TAG: metric,
            metric_tag(metric): repr(value), STEPS_TAG: str(evidence.steps),
            STEPS_NEEDED_TAG: str(evidence.steps_needed), BASELINE_TAG: repr(evidence.baseline), RUN_TAG: run_id}
    with tracking(client.tracking_uri):  # MLflow's SQL registry resolves models:/<id> with the global URI
        version = client.create_model_version(project, source=f"models:/{model_id}", run_id=run_id,
                                              tags=tags, model_id=model_id).version
    if crown:
        client.set_registered_model_alias(project, CHAMPION, version)
    return RegistrationResult(project, int(version), crown, verdict)


def registered_names(client: Any) -> list[str]:
    """Every registered model's name in the client's store, sorted (all pages)."""
    return sorted(m.name for m in all_pages(client.search_registered_models))


def champion(client: Any, project: str) -> Any:
    """The model version that holds `project`'s champion alias.

    Raises:
        ValueError: one line: the registered model does not exist (listing those that do), or
            it has no champion.
    """
    from mlflow.exceptions import MlflowException

    try:
        client.get_registered_model(project)
    except MlflowException as e:
        if e.error_code != "RESOURCE_DOES_NOT_EXIST":
            raise
        raise ValueError(f"registered model {project!r} does not exist in {client.tracking_uri}; "
                         f"registered models: {registered_names(client) or 'none'}") from None
    version = _champion_version(client, project)
    if version is None:
        raise ValueError(f"registered model {project!r} has no {CHAMPION!r} alias: no version has "
                         "passed the gate")
    return version


@contextmanager
def tracking(uri: str | None) -> Iterator[None]:
    """Point MLflow's fluent API at `uri` for the block: model *logging* only has the fluent one.

    Afterwards the process-wide URI is what it was, unset included (`set_tracking_uri` also
    exports ``MLFLOW_TRACKING_URI`` to subprocesses). Loading never uses this: it takes the client
    of its own URI (`fetch.model_files`).
    """
    import mlflow
    from mlflow.tracking._tracking_service.utils import is_tracking_uri_set

    if uri is None:
        yield
        return
    previous = mlflow.get_tracking_uri() if is_tracking_uri_set() else None
    mlflow.set_tracking_uri(uri)
    try:
        yield
    finally:
        mlflow.set_tracking_uri(previous)
