"""The continuous-data search's commands: `python -m projects.cpc_snn_gw <command> [--flag value ...]`.

  generate --duration 3600 --output-dir DIR --seed 0
      DIR/foreground.hdf (noise + injections), DIR/background.hdf (the same noise) and
      DIR/injections.hdf, laid out as MLGWSC-1's data set 1 (see jax_modules.gw_data.strain_generate).
  search --model models:/cpc-snn-gw@champion --input strain.hdf --output triggers.hdf
      the registered network slid over the file; clustered triggers (time, stat, var) as MLGWSC-1 reads them.
  evaluate --injections injections.hdf --foreground foreground.hdf --foreground-triggers fg.hdf
           --background-triggers bg.hdf [--background background.hdf] --output eval.hdf
      false-alarm rate per month and sensitive distance, computed as MLGWSC-1's evaluate.py does.

Flags take `-` or `_` alike (--output-dir, --output_dir). A bad parameter or an unusable input file:
one line on stderr naming the parameter, exit code 2, and no output file (outputs are written under
a temporary name and renamed when complete).
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any, Callable, Sequence

from projects.common.params import (Param, ParamError, existing_file, integer, parse_params, real,
                                    report_param_error)
from projects.cpc_snn_gw.predict import MODEL_PREFIX, model_uri, output_file
from projects.cpc_snn_gw.config import SPEC

PROG = "cpc_snn_gw"
DEFAULT_MODEL = f"{MODEL_PREFIX}{SPEC.registered_model}@champion"
#: False-alarm rates [per month] the evaluation reports (MLGWSC-1 plots 1 to 1000 per month).
REPORTED_FARS = (10000.0, 1000.0, 100.0, 10.0, 1.0)


class CommandFailed(Exception):
    """The command could not do its work for a reason other than its input (exit code 1, one line)."""


def _file(what: str) -> Callable[[str, str], str | None]:
    return existing_file(f"a path to an existing {what}")


def _output_dir(name: str, text: str) -> str:
    path = Path(text).expanduser().resolve()
    if not path.parent.is_dir() or (path.exists() and not path.is_dir()):
        raise ParamError(name, text, "a folder that exists or can be made in an existing folder")
    return str(path)


GENERATE: tuple[Param, ...] = (
    Param("duration", real(minimum=60.0, maximum=7 * 86400.0), "3600", "seconds of strain per detector"),
    Param("output_dir", _output_dir, None, "where foreground.hdf, background.hdf, injections.hdf go"),
    Param("seed", integer(minimum=0, maximum=2**31 - 1), "0", "seed of the noise and the injections"),
    Param("start_time", real(minimum=0.0, maximum=2e10), "1238166018", "GPS time of the first sample"),
)
#: How the network searches a file: `search`'s flags and `gw_search_eval`'s parameters.
NETWORK_SEARCH: tuple[Param, ...] = (
    Param("threshold", real(minimum=0.0, maximum=1.0), "0.2", "keep windows whose probability is above this"),
    Param("stride", real(minimum=0.0, maximum=1.0, exclusive_minimum=True), "0.125",
          "seconds between window starts (whole samples at 2048 Hz)"),
    Param("chunk", real(minimum=2.0, maximum=3600.0), "128", "seconds searched at once with one PSD estimate"),
    Param("cluster", real(minimum=0.0, maximum=60.0, exclusive_minimum=True), "1",
          "keep the loudest trigger within +/- this many seconds"),
)
SEARCH: tuple[Param, ...] = (
    Param("model", model_uri, DEFAULT_MODEL, "the registered detector"),
    Param("input", _file("MLGWSC-1 strain file (HDF5)"), None, "the strain file to search"),
    Param("output", output_file, None, "the trigger file to write (HDF5: time, stat, var)"),
    *NETWORK_SEARCH,
)
EVALUATE: tuple[Param, ...] = (
    Param("injections", _file("MLGWSC-1 injection file (HDF5)"), None, "the injection file"),
    Param("foreground", _file("MLGWSC-1 strain file (HDF5)"), None, "the foreground strain file searched"),
    Param("foreground_triggers", _file("trigger file (HDF5: time, stat, var)"), None, "triggers on the foreground"),
    Param("background_triggers", _file("trigger file (HDF5: time, stat, var)"), None, "triggers on the background"),
    Param("background", _file("MLGWSC-1 strain file (HDF5)"), None,
          "the background strain file (its duration sets the FAR); empty: the foreground's, as MLGWSC-1"),
    Param("output", output_file, None, "the evaluation file to write (HDF5)"),
)
COMMANDS: dict[str, tuple[Param, ...]] = {"generate": GENERATE, "search": SEARCH, "evaluate": EVALUATE}
REQUIRED = {"generate": ("output_dir",), "search": ("input", "output"),
            "evaluate": ("injections", "foreground", "foreground_triggers", "background_triggers", "output")}


def parse(argv: Sequence[str]) -> tuple[str, dict[str, Any]]:
    """The command and its checked parameters.

    Raises:
        ParamError: an unknown command, a bad or missing value (the message names it).
    """
    if not argv or argv[0] not in COMMANDS:
        raise ParamError("command", argv[0] if argv else "", f"one of {', '.join(COMMANDS)} (then --help)")
    command, flags = argv[0], [_underscored(arg) for arg in argv[1:]]
    values = parse_params(COMMANDS[command], flags, prog=f"{PROG} {command}",
                          description=__doc__.splitlines()[0])
    for name in REQUIRED[command]:
        if values[name] is None:
            param = next(p for p in COMMANDS[command] if p.name == name)
            raise ParamError(name, "", f"a value: --{name} is required ({param.help})")
    return command, values


def _underscored(arg: str) -> str:
    """`--output-dir=x` -> `--output_dir=x`: flags only, values untouched."""
    if not arg.startswith("--"):
        return arg
    flag, sep, value = arg.partition("=")
    return "--" + flag[2:].replace("-", "_") + sep + value


def generate(values: dict[str, Any]) -> str:
    from jax_modules.gw_data.strain_files import StrainSpec, generate_strain_files
    from jax_modules.gw_data.subprocess_generate import GenerationError

    try:
        spec = StrainSpec(duration=values["duration"], seed=values["seed"], start_time=values["start_time"])
    except ValueError as exc:
        raise ParamError("duration", values["duration"], "a whole number of samples at 2048 Hz", problem=str(exc)) from None
    out = Path(values["output_dir"])
    out.mkdir(exist_ok=True)
    try:
        paths = generate_strain_files(spec, out)
    except GenerationError as exc:
        raise CommandFailed(str(exc)) from None
    return "\n".join(f"{role}: {path}" for role, path in paths.items())


def search(values: dict[str, Any]) -> str:
    from tqdm.auto import tqdm

    from jax_modules.gw_data.mlgwsc_format import MLGWSCFormatError
    from projects.cpc_snn_gw.predict import load_detector
    from projects.cpc_snn_gw.search import NetworkScorer, SearchConfig, check_searchable, search_file

    config = SearchConfig(threshold=values["threshold"], stride=values["stride"], chunk=values["chunk"],
                          cluster=values["cluster"])
    strain, output = Path(values["input"]), Path(values["output"])
    if output == strain.resolve():
        raise ParamError("output", values["output"], "a path other than --input")
    try:
        check_searchable(strain)  # the whole file, before the model loads
        detector = load_detector(values["model"])
        with tqdm(desc="search", unit="s", disable=not sys.stderr.isatty()) as bar:  # a terminal only: errors stay one line
            summary = search_file(strain, NetworkScorer(detector.predict, config, values["model"]), config, output,
                                  progress=bar.update)
    except MLGWSCFormatError as exc:
        raise ParamError("input", values["input"], "an MLGWSC-1 strain file", problem=str(exc)) from None
    return summary.text()


def evaluate(values: dict[str, Any]) -> str:
    from jax_modules.gw_data.mlgwsc_eval import evaluate_files, write_sensitivity
    from jax_modules.gw_data.mlgwsc_format import MLGWSCFormatError

    try:
        curve = evaluate_files(values["injections"], values["foreground"], values["foreground_triggers"],
                               values["background_triggers"], values["background"])
    except MLGWSCFormatError as exc:
        name = next((n for n in EVALUATE if values[n.name] and str(exc).startswith(f"{values[n.name]}:")),
                    EVALUATE[0]).name
        raise ParamError(name, values[name], "the MLGWSC-1 files of one search", problem=str(exc)) from None
    write_sensitivity(values["output"], curve, {k: str(v) for k, v in values.items() if v is not None})
    return sensitivity_table(curve) + f"\n-> {values['output']}"


def sensitivity_table(curve: Any) -> str:
    """Lines: sensitive distance and found fraction at the reported false-alarm rates."""
    lines = [f"{curve.n_injections} injections, {curve.duration:g} s of background, {len(curve.threshold)} "
             "background triggers", "  FAR/month  threshold  found  distance [Mpc]"]
    for far in REPORTED_FARS:
        point = curve.at_far(far)
        if point.resolved:
            lines.append(f"  {far:9g}  {point.threshold:9.4g}  {point.found_fraction:5.3f}  {point.distance:8.1f}")
        else:
            lines.append(f"  {far:9g}  not resolved by {curve.duration:g} s of background")
    return "\n".join(lines)


RUNNERS: dict[str, Callable[[dict[str, Any]], str]] = {"generate": generate, "search": search, "evaluate": evaluate}


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    prog = f"{PROG} {argv[0] if argv and argv[0] in COMMANDS else ''}".strip()
    try:
        command, values = parse(argv)
        print(RUNNERS[command](values))
    except ParamError as error:
        return report_param_error(error, prog)
    except CommandFailed as error:
        print(f"{prog}: error: {error}", file=sys.stderr)
        return 1
    return 0
