"""One project run from start to summary: `open_run` holds the MLflow run, `finish_run` closes it.

Every project's `train_and_evaluate` has the same shape:

    with open_run(SPEC, config, resume=resume) as run:    # tagged run, report, checkpoint folder
        run.log_params({...})
        ... train; the fixlab monitors/callbacks record into run.report ...
        return finish_run(run, findings=..., metrics=..., register=..., headline=...)

`open_run` starts the run (or continues `resume`, an earlier run that died), holds its checkpoint
folder (`RunFolder`) and its one health report, and on a continued run makes every metric logged
through it, the report and the Lightning logger skip the steps the run already holds. `finish_run`
does the run's tail once for every project: health, the document's claims, the report sections,
registration by the champion rule, and the summary.
"""

from __future__ import annotations

from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from typing import Any, Callable, Iterator, Mapping, Sequence

import mlflow

from mlflow_plugins.claims import claims_html, evaluate, load_claims, log_claims
from mlflow_plugins.findings import NO_CODES, Finding, finding_codes, overall_health
from mlflow_plugins.outcome import error_line
from mlflow_plugins.recording import LoggedSteps
from mlflow_plugins.registry import RegistrationResult
from mlflow_plugins.report_command import where_to_look
from mlflow_plugins.run_record import RunReport, run_report
from mlflow_plugins.store import tracking_uri
from projects.common.config import RunConfig
from projects.common.entry import RunSummary
from projects.common.resume import resumable_folder
from projects.common.run_folder import CHECKPOINTS_TAG, RunFolder
from projects.common.run_name import generated, run_name
from projects.common.spec import ProjectSpec
from projects.common.tracking import fixlab_tags, log_params_once, set_tags_now, tracked_run

__all__ = ["ProjectRun", "open_run", "finish_run"]

RESUMES_TAG = "fixlab.resumes"  # how many times the run was continued after dying
REGISTERED_TAG = "fixlab.registered"  # "true: version N (why)" or "false: why"
DOCUMENT_TITLE_TAG = "fixlab.document_title"  # "Document 001 (Representation learning ...)"


@dataclass
class ProjectRun:
    """The open run of a project: what training and `finish_run` need.

    Attributes:
        run_id: the MLflow run.
        report: the run's health report; monitors and callbacks of this run write into it.
        folder: the run's checkpoint folder (held by this process).
        resumed: whether this continues a run that died (then `folder` may hold a checkpoint).
        logged: the metric steps the run held when it was continued (empty for a new run).
        named: whether fixlab names the run (`run_name`): not when the user chose its name.
    """

    spec: ProjectSpec
    config: RunConfig
    run_id: str
    report: RunReport
    folder: RunFolder
    resumed: bool
    logged: LoggedSteps
    named: bool = True

    def log_params(self, params: Mapping[str, Any]) -> None:
        """Log the params the run does not have yet (MLflow params cannot change)."""
        log_params_once(self.run_id, params)

    def log_metrics(self, metrics: Mapping[str, float | None], step: int = 0) -> None:
        """Log one step's metrics through the run's recorder (batched, never waiting on the server;
        a continued run skips the steps it holds); None values are skipped."""
        self.report.log({k: v for k, v in metrics.items() if v is not None}, step)


@contextmanager
def open_run(spec: ProjectSpec, config: RunConfig, *, resume: str | None = None) -> Iterator[ProjectRun]:
    """The project's MLflow run for the block: tagged, with its report and checkpoint folder.

    A new run gets the folder `RunFolder.for_run(run_id)` and records `config` there. A continued
    run (`resume`) uses the folder its tag `fixlab.checkpoints` names, locked before the run is
    touched, so a run still being trained elsewhere is refused and left as it is. The folder is
    removed when the block completes (the run is FINISHED and its model is in MLflow) and kept
    otherwise.

    Raises:
        ResumeError: the run `resume` cannot be continued (finished, not a project run, its
            folder gone, or another live process is training it).
        Whatever the block raises, after the run has been marked FAILED or KILLED.
    """
    tags = {**fixlab_tags(spec.name, config.entry_point, spec.document), DOCUMENT_TITLE_TAG: spec.document_label}
    with ExitStack() as stack:
        if resume:
            previous = mlflow.MlflowClient().get_run(resume)
            recorded = previous.data.tags
            folder = stack.enter_context(resumable_folder(previous).hold())
        active = stack.enter_context(tracked_run(experiment=config.experiment_name or spec.name, tags=tags,
                                                 run_name=run_name(config.entry_point, config.seed),
                                                 resume=resume))
        run_id = active.info.run_id
        named = _ours(active.info.run_name, config)
        if named:
            _rename(run_id, run_name(config.entry_point, config.seed))
        if resume:
            set_tags_now(run_id, {RESUMES_TAG: str(int(recorded.get(RESUMES_TAG, "0")) + 1)})
        else:
            folder = stack.enter_context(RunFolder.for_run(run_id).hold())
            folder.write_config(spec.name, config.to_json())
            set_tags_now(run_id, {CHECKPOINTS_TAG: str(folder.path)})
        with run_report(run_id) as report:
            report.use_citations(spec.cited())
            logged = report.resume() if resume else LoggedSteps()
            yield ProjectRun(spec, config, run_id, report, folder, bool(resume), logged, named)
        folder.remove()


def finish_run(run: ProjectRun, *, findings: Sequence[Finding], metrics: Mapping[str, float | None],
               register: Callable[[str], RegistrationResult], headline: Sequence[str],
               sections: Mapping[str, str] | None = None) -> RunSummary:
    """The run's tail: health, the document's claims, report sections, registration, summary.

    Args:
        findings: every finding of the run's monitors and callbacks.
        metrics: the measured values the claims may name (None: not measured).
        register: logs and registers the model; given the run's health ("ok", "warning",
            "critical"), which the version is tagged with and which decides the `champion` alias. Not called again for a continued run that has
            already registered its model.
        headline: the project's own lines for the terminal.
        sections: more HTML sections for the report, by title (shown after the claims).
    """
    spec, config = run.spec, run.config
    health = overall_health(findings)
    measured = {k: v for k, v in metrics.items() if v is not None}
    results = evaluate(load_claims(spec.claims_file).for_variant(config.entry_point), measured)
    if not any(key.startswith("claims/") for key in run.logged.last):  # a continued run may have them
        log_claims(results, run.run_id)
    run.report.add_section(f"Claims of {spec.document_label}", claims_html(results))
    run.report.add_note(_claim_lines(spec, results))
    for title, html in (sections or {}).items():
        run.report.add_section(title, html)
    registration = _register_and_tag(run, lambda: (_registered(spec, run.run_id) if run.resumed else None)
                                     or register(health))
    if run.named:
        _rename(run.run_id, run_name(config.entry_point, config.seed, health))
    info = mlflow.MlflowClient().get_run(run.run_id).info
    return RunSummary(
        project=spec.name, registered_model=spec.registered_model, run_id=run.run_id,
        variant=config.entry_point, metrics=measured, headline=list(headline), health=health,
        findings=[code for code in finding_codes(findings).split(",") if code != NO_CODES],
        claims=[(r.claim.id, r.claim.expected, r.measured, r.verdict) for r in results],
        registered_version=registration.version, registration=registration.reason, run_name=info.run_name,
        look=where_to_look(tracking_uri(), info.experiment_id, run.run_id, info.artifact_uri))


def _ours(name: str | None, config: RunConfig) -> bool:
    """Whether fixlab names this run: MLflow made its name up, or fixlab named it before (a
    continued run); a name the user chose is kept."""
    mine = {run_name(config.entry_point, config.seed, health) for health in (None, "ok", "warning", "critical")}
    return generated(name) or name in mine


def _rename(run_id: str, name: str) -> None:
    mlflow.MlflowClient().update_run(run_id, name=name)


def _claim_lines(spec: ProjectSpec, results: Sequence[Any]) -> list[str]:
    """The claim verdicts as markdown lines for the run's description."""
    if not results:
        return []
    lines = [f"Claims of {spec.document_label}:"]
    for r in results:
        shown = "not measured" if r.measured is None else f"{r.measured:.4g}"
        lines.append(f"- {r.claim.id}: expected {r.claim.expected}, measured {shown}: **{r.verdict}**")
    return lines


def _register_and_tag(run: ProjectRun, register: Callable[[], RegistrationResult]) -> RegistrationResult:
    """`register()`, with the run's tag `fixlab.registered` saying what became of the model:
    `true: version N (why)` or `false: why`, also when registering raised (then re-raised: the run
    did not do all it was asked and ends FAILED)."""
    try:
        registration = register()
    except Exception as error:
        try:
            set_tags_now(run.run_id, {REGISTERED_TAG: f"false: {error_line(error)}"})
        except Exception:  # noqa: BLE001 - the store may be what failed; the error below says more
            pass
        raise
    said = (f"true: version {registration.version} ({registration.reason})" if registration.version is not None
            else f"false: {registration.reason}")
    set_tags_now(run.run_id, {REGISTERED_TAG: said})
    return registration


def _registered(spec: ProjectSpec, run_id: str) -> RegistrationResult | None:
    """The version run `run_id` registered before it died, if it got that far."""
    versions = mlflow.MlflowClient().search_model_versions(f"name='{spec.registered_model}' and run_id='{run_id}'")
    if not versions:
        return None
    version = max(int(v.version) for v in versions)
    return RegistrationResult(spec.registered_model, version, False,
                              f"registered as version {version} before the run was continued")
