"""Entry point `gw_search_eval`: the registered detector as a search over continuous strain, judged
as MLGWSC-1 judges searches, beside the matched filter; `python -m projects.cpc_snn_gw.search_eval`.

In one MLflow run: generate (or reuse from the data cache) `duration` seconds of foreground and
background strain with injections every 24 +/- 3 s (MLGWSC-1 data set 1, `strain_generate`); search
both files with the network (`model`) and with the matched filter (an `mf_bank` x `mf_bank` mass grid
of `mf_template`-second IMRPhenomD templates); evaluate each (`mlgwsc_eval`: false-alarm rate per
month from the background, sensitive distance from the foreground's found injections); log the
sensitive distance and found fraction at the resolved false-alarm rates, the search speed (seconds of
strain per wall-clock second) and the peak memory, the figure of sensitive distance against
false-alarm rate, and the trigger and evaluation files.

When `model` is the default (`models:/cpc-snn-gw@champion`) and the registry has no champion (a
clean checkout), a quick `cpc_fixed` is trained first (`train_and_evaluate` with the default
`CpcGwConfig`, its own run), and its registered version is searched: the champion if its gate gave
it the alias, else its version by number. A bad parameter: one line, exit code 2, no run.
"""

from __future__ import annotations

import math
import os
import resource
import shutil
import sys
import tempfile
import time
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator, Sequence

from projects.common.config import RunConfig
from projects.common.entry import run_entry
from projects.common.params import Param, ParamError, integer, real
from projects.cpc_snn_gw.search_cli import DEFAULT_MODEL, NETWORK_SEARCH, REPORTED_FARS, sensitivity_table
from projects.cpc_snn_gw.config import SPEC
from projects.cpc_snn_gw.predict import model_uri

__all__ = ["PARAMS", "SearchEvalConfig", "main", "search_and_evaluate"]

PROG = "gw_search_eval"
STRAIN_FORMAT = 1  # bump when strain_generate writes other data for the same spec (cache key)


@dataclass(frozen=True)
class SearchEvalConfig(RunConfig):
    """One search evaluation. Defaults are the quick run: 1 hour of strain, about 10 minutes on two
    CPU cores from a clean checkout (training the champion and generating the data included)."""

    variant: str = PROG
    experiment_name: str = SPEC.name
    model: str = DEFAULT_MODEL
    duration: float = 3600.0       # seconds of foreground and of background strain
    stride: float = 0.125          # seconds between the network's windows / the filter's bins
    chunk: float = 128.0           # seconds searched at once with one PSD estimate
    threshold: float = 0.2         # the network's trigger threshold (probability)
    cluster: float = 1.0           # keep the loudest trigger within +/- this many seconds
    mf_bank: int = 8               # matched filter: templates on an mf_bank x mf_bank mass grid
    mf_template: float = 1.0       # seconds per template (merger at 3/4 of it)
    mf_threshold: float = 5.5      # the matched filter's trigger threshold (network SNR)

    def search_config(self, detector: str) -> Any:
        from projects.cpc_snn_gw.search import SearchConfig

        threshold = self.threshold if detector == "network" else self.mf_threshold
        return SearchConfig(threshold=threshold, stride=self.stride, chunk=self.chunk, cluster=self.cluster)


_DEFAULTS = SearchEvalConfig()
PARAMS: tuple[Param, ...] = (
    Param("model", model_uri, _DEFAULTS.model, "the registered detector to search with"),
    Param("duration", real(minimum=300.0, maximum=7 * 86400.0), str(_DEFAULTS.duration),
          "seconds of foreground (and of background) strain"),
    Param("seed", integer(minimum=0, maximum=2**31 - 1), str(_DEFAULTS.seed), "seed of the strain and injections"),
    *NETWORK_SEARCH,  # threshold, stride, chunk, cluster (stride, chunk and cluster serve the filter too)
    Param("mf_bank", integer(minimum=1, maximum=40), str(_DEFAULTS.mf_bank), "matched filter: N x N mass grid"),
    Param("mf_template", real(minimum=0.25, maximum=8.0), str(_DEFAULTS.mf_template),
          "matched filter: seconds per template"),
    Param("mf_threshold", real(minimum=0.0, maximum=100.0), str(_DEFAULTS.mf_threshold),
          "matched filter: trigger threshold (network SNR)"),
)


def main(argv: Sequence[str] | None = None) -> int:
    """A bad parameter, or a model missing from the registry or refused by its loader: one line,
    exit code 2 (under `mlflow run`, its run tagged with why)."""
    return run_entry(argv, prog=PROG, description=__doc__.splitlines()[0], params=PARAMS,
                     make_config=SearchEvalConfig.from_params, check_inputs=_check_inputs,
                     load_runner=lambda: search_and_evaluate)


def _check_inputs(config: SearchEvalConfig) -> None:
    """Stride, chunk and template length, checked before anything runs."""
    from jax_modules.gw_data.config import GWDataConfig

    for detector in ("network", "mf"):
        config.search_config(detector)
    try:
        _template_config(config)
    except ValueError as exc:
        raise ParamError("mf_template", config.mf_template, f"a whole number of samples at "
                         f"{GWDataConfig.sample_rate} Hz, 0.25 to 8 s", problem=str(exc)) from None


def _template_config(config: SearchEvalConfig) -> Any:
    from jax_modules.gw_data.config import GWDataConfig

    return GWDataConfig(n_train=2, n_val=2, n_test=2, duration=config.mf_template)


def search_and_evaluate(config: SearchEvalConfig, progress: bool = True) -> Any:
    """Generate, search with the network and the matched filter, evaluate and log; the run's summary.

    Raises:
        ParamError: `model` is not in the registry (other than a missing default champion, which is
            trained), or its artifact is refused.
    """
    import mlflow

    from mlflow_plugins.registry import RegistrationResult
    from projects.common.run import finish_run, open_run
    from projects.cpc_snn_gw.predict import load_detector
    from projects.cpc_snn_gw.search import MatchedFilterScorer, NetworkScorer
    from projects.cpc_snn_gw.sensitivity_figure import sensitivity_figure

    started = time.perf_counter()
    model, trained = _model_to_search(config, progress)
    detector = load_detector(model)
    with open_run(SPEC, config) as run, tempfile.TemporaryDirectory(prefix="gw_search_") as tmp:
        run.log_params({**config.to_params(), "searched_model": model, "trained_run": trained or "none"})
        files, generated = _strain_files(config, progress)
        bank = _bank(config)
        scorers = {"network": NetworkScorer(detector.predict, config.search_config("network"), model),
                   "mf": MatchedFilterScorer(bank, config.search_config("mf"),
                                             f"matched filter ({len(bank)} templates, {config.mf_template:g} s)")}
        metrics: dict[str, float] = {"data/generated": float(generated), "data/duration_s": config.duration,
                                     "mf/templates": float(len(bank))}
        curves = {}
        for key, scorer in scorers.items():
            curves[key], found = _search_and_evaluate_one(key, scorer, config, files, Path(tmp), progress)
            metrics.update(found)
        metrics.update(_ratios(metrics))
        metrics["data/injections"] = float(curves["network"].n_injections)
        metrics["perf/peak_rss_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0
        metrics["perf/wall_seconds"] = time.perf_counter() - started
        labels = {"network": f"network ({model})", "mf": scorers["mf"].name}
        title = f"{config.duration / 3600:.3g} h of H1/L1 strain (and as much background), injections every 24 s"
        mlflow.log_figure(sensitivity_figure({labels[k]: c for k, c in curves.items()}, title),
                          "figures/sensitivity_vs_far.png")
        run.log_metrics(metrics)
        tables = {k: sensitivity_table(c) for k, c in curves.items()}
        headline = [f"network {model}:", *tables["network"].splitlines(), f"{labels['mf']}:",
                    *tables["mf"].splitlines(),
                    f"search speed: network {metrics['perf/network_speed_ratio']:.0f}x, matched filter "
                    f"{metrics['perf/mf_speed_ratio']:.0f}x real time; peak memory of this process "
                    f"{metrics['perf/peak_rss_mb']:.0f} MB"]
        return finish_run(run, findings=[], metrics=metrics, headline=headline,
                          register=lambda health: RegistrationResult(SPEC.registered_model, None, False,
                                                                     f"{PROG} searches with a registered model and "
                                                                     "registers none"))


def _search_and_evaluate_one(key: str, scorer: Any, config: SearchEvalConfig, files: dict[str, Path], tmp: Path,
                             progress: bool) -> tuple[Any, dict[str, float]]:
    """One detector over the foreground and the background, evaluated; its curve and metrics. The
    trigger and evaluation files are logged under `triggers/`."""
    import mlflow

    triggers, searched, wall, metrics = {}, 0.0, 0.0, {}
    for role in ("foreground", "background"):
        triggers[role] = tmp / f"{key}_{role}_triggers.hdf"
        summary = _search(files[role], scorer, config.search_config(key), triggers[role], progress)
        searched, wall = searched + summary.searched_seconds, wall + summary.wall_seconds
        metrics[f"{key}/triggers_{role}"] = float(summary.n_triggers)
    metrics[f"perf/{key}_speed_ratio"] = searched / wall
    curve = _evaluate(files, triggers, tmp / f"{key}_evaluation.hdf")
    for path in (*triggers.values(), tmp / f"{key}_evaluation.hdf"):
        mlflow.log_artifact(str(path), "triggers")
    return curve, {**metrics, **_points(key, curve)}


def _model_to_search(config: SearchEvalConfig, progress: bool) -> tuple[str, str | None]:
    """The model URI to search with, and the id of the run that trained it here (None: it was there)."""
    import mlflow
    from mlflow.exceptions import MlflowException

    if config.model != DEFAULT_MODEL:
        return config.model, None
    try:
        mlflow.MlflowClient().get_model_version_by_alias(SPEC.registered_model, "champion")
        return config.model, None
    except MlflowException:
        pass  # a clean checkout: no champion yet
    from projects.cpc_snn_gw.config import CpcGwConfig
    from projects.cpc_snn_gw.experiment import train_and_evaluate

    print(f"{PROG}: no {config.model} in the registry: training a quick cpc_fixed first", file=sys.stderr)
    with _own_run():
        summary = train_and_evaluate(CpcGwConfig(seed=config.seed, cache_dir=config.cache_dir), progress=progress)
    if summary.registered_version is None:
        raise ParamError("model", config.model, "a registered model",
                         problem=f"the quick cpc_fixed run {summary.run_id} registered none ({summary.registration})")
    try:
        mlflow.MlflowClient().get_model_version_by_alias(SPEC.registered_model, "champion")
        return config.model, summary.run_id
    except MlflowException:  # the gate refused the alias: search the version that run registered
        return f"models:/{SPEC.registered_model}/{summary.registered_version}", summary.run_id


@contextmanager
def _own_run() -> Iterator[None]:
    """Under `mlflow run` (MLFLOW_RUN_ID set) the training starts a run of its own, not this entry's."""
    saved = os.environ.pop("MLFLOW_RUN_ID", None)
    try:
        yield
    finally:
        if saved is not None:
            os.environ["MLFLOW_RUN_ID"] = saved


def _strain_files(config: SearchEvalConfig, progress: bool) -> tuple[dict[str, Path], bool]:
    """The foreground, background and injection files of `config` from the data cache (a folder per
    spec, moved into place only when complete), generated on a miss; and whether this call generated
    them. Not `cached_arrays`: the files are hundreds of MB and are only ever read block by block."""
    from jax_modules.gw_data.strain_files import FILES, StrainSpec, generate_strain_files
    from projects.common.data_cache import cache_path

    spec = StrainSpec(duration=config.duration, seed=config.seed)
    folder = cache_path("gw_strain", {"format": STRAIN_FORMAT, "spec": spec.to_json()}, config.cache_dir).with_suffix("")
    files = {role: folder / name for role, name in FILES.items()}
    if all(path.is_file() for path in files.values()):
        return files, False
    folder.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{folder.name}.", dir=folder.parent))
    try:
        generate_strain_files(spec, tmp, progress=progress)
        if all(path.is_file() for path in files.values()):  # another process finished first
            return files, True
        shutil.rmtree(folder, ignore_errors=True)  # an incomplete folder (never made by this function)
        os.replace(tmp, folder)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return files, True


def _bank(config: SearchEvalConfig) -> Any:
    from projects.cpc_snn_gw.reference import cached_bank

    return cached_bank(_template_config(config), config.mf_bank, config.cache_dir)


def _search(strain: Path, scorer: Any, search_config: Any, output: Path, progress: bool) -> Any:
    from tqdm.auto import tqdm

    from projects.cpc_snn_gw.search import search_file

    with tqdm(desc=f"{scorer.name.split(' (')[0]}: {strain.stem}", unit="s", disable=not progress) as bar:
        return search_file(strain, scorer, search_config, output, progress=bar.update)


def _evaluate(files: dict[str, Path], triggers: dict[str, Path], output: Path) -> Any:
    from jax_modules.gw_data.mlgwsc_eval import evaluate_files, write_sensitivity

    curve = evaluate_files(files["injections"], files["foreground"], triggers["foreground"], triggers["background"],
                           files["background"])
    write_sensitivity(output, curve)
    return curve


def _far_key(far: float) -> str:
    return f"far_{far:g}_per_month"


def _points(key: str, curve: Any) -> dict[str, float]:
    """Sensitive distance [Mpc], found fraction and threshold at each resolved reported false-alarm rate."""
    metrics = {f"{key}/background_triggers": float(len(curve.threshold))}
    for far in REPORTED_FARS:
        point = curve.at_far(far)
        if point.resolved:
            metrics[f"{key}/distance_{_far_key(far)}"] = point.distance
            metrics[f"{key}/found_fraction_{_far_key(far)}"] = point.found_fraction
            metrics[f"{key}/threshold_{_far_key(far)}"] = point.threshold
    return metrics


def _ratios(metrics: dict[str, float]) -> dict[str, float]:
    """The network's sensitive distance as a fraction of the matched filter's, where both are measured."""
    out = {}
    for far in REPORTED_FARS:
        network, mf = (metrics.get(f"{k}/distance_{_far_key(far)}", math.nan) for k in ("network", "mf"))
        if mf > 0 and math.isfinite(network):
            out[f"vs_mf/distance_ratio_{_far_key(far)}"] = network / mf
    return out


if __name__ == "__main__":
    sys.exit(main())
