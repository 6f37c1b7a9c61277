"""Entry-script parameters: declared once, parsed from the command line, checked one by one.

`mlflow run` passes every `-P name=value` through as text and checks no types, so each entry
script declares its parameters as a table of `Param`s, each with a converter that turns the
text into a value or raises `ParamError`: one line naming the parameter, the value received
and what is allowed. `parse_params` never prints usage blocks or exits by itself; the entry
script prints the one line and exits with `EXIT_BAD_PARAM` (2) before touching MLflow.

This module imports only the standard library, so a bad parameter is reported in a fraction
of a second, before torch, Lightning or MLflow are loaded.

Example:
    >>> PARAMS = (Param("epochs", integer(minimum=1), "40"), Param("variant", choice("a", "b")))
    >>> parse_params(PARAMS, ["--variant", "a"])
    {'epochs': 40, 'variant': 'a'}
"""

from __future__ import annotations

import argparse
import math
import os
import re
import sys
from dataclasses import dataclass
from typing import Any, Callable, Sequence

__all__ = [
    "EXIT_BAD_PARAM",
    "ParamError",
    "Param",
    "integer",
    "real",
    "choice",
    "boolean",
    "diagnostics_params",
    "optional",
    "optional_file",
    "optional_dir",
    "parse_params",
    "report_param_error",
]

EXIT_BAD_PARAM = 2  # what argparse uses for usage errors, and what the tests expect
NONE_VALUES = ("", "none", "None", "null")  # what an unset optional parameter may arrive as


class ParamError(ValueError):
    """A parameter's value is not allowed. The message is one line.

    Args:
        name: the parameter.
        value: the value received (as given).
        allowed: what is allowed, in words.
        problem: what is wrong with it, when the value alone does not say (a file's contents).
    """

    def __init__(self, name: str, value: Any, allowed: str, *, problem: str | None = None) -> None:
        self.name, self.value, self.allowed, self.problem = name, value, allowed, problem
        text = f"invalid parameter {name}={value!r}{f': {problem}' if problem else ''}; allowed: {allowed}"
        super().__init__(" ".join(text.split()))


Converter = Callable[[str, str], Any]


@dataclass(frozen=True)
class Param:
    """One entry-script parameter.

    Args:
        name: the parameter (the flag is `--name`).
        convert: `(name, text) -> value`, raising `ParamError`.
        default: the text used when the flag is absent; None for an optional parameter
            that stays None (converters are not called on it).
        help: one line for `--help`.
    """

    name: str
    convert: Converter
    default: str | None = None
    help: str = ""


def integer(*, minimum: int | None = None, maximum: int | None = None) -> Converter:
    """A converter for a whole number in [minimum, maximum] (`3` and `3.0` are accepted)."""
    allowed = _range_text("an integer", minimum, maximum)

    def convert(name: str, text: str) -> int:
        try:
            number = float(text)
        except ValueError:
            raise ParamError(name, text, allowed) from None
        if not math.isfinite(number) or number != int(number):
            raise ParamError(name, text, allowed)
        value = int(number)
        if (minimum is not None and value < minimum) or (maximum is not None and value > maximum):
            raise ParamError(name, text, allowed)
        return value

    return convert


def real(*, minimum: float | None = None, maximum: float | None = None,
         exclusive_minimum: bool = False) -> Converter:
    """A converter for a finite number in [minimum, maximum] ((minimum, ...] if exclusive)."""
    low = "" if minimum is None else f"{'>' if exclusive_minimum else '>='} {minimum:g}"
    high = "" if maximum is None else f"<= {maximum:g}"
    allowed = "a finite number" + (f" {low}" if low else "") + (f" and {high}" if low and high else
                                                                (f" {high}" if high else ""))

    def convert(name: str, text: str) -> float:
        try:
            value = float(text)
        except ValueError:
            raise ParamError(name, text, allowed) from None
        too_low = minimum is not None and (value <= minimum if exclusive_minimum else value < minimum)
        if not math.isfinite(value) or too_low or (maximum is not None and value > maximum):
            raise ParamError(name, text, allowed)
        return value

    return convert


def choice(*options: str) -> Converter:
    """A converter for one of `options` (exact, case-sensitive)."""
    allowed = "one of " + ", ".join(options)

    def convert(name: str, text: str) -> str:
        if text not in options:
            raise ParamError(name, text, allowed)
        return text

    return convert


def boolean() -> Converter:
    """A converter for true/false (also 1/0, yes/no; any case)."""
    def convert(name: str, text: str) -> bool:
        value = {"true": True, "1": True, "yes": True, "false": False, "0": False, "no": False}.get(text.strip().lower())
        if value is None:
            raise ParamError(name, text, "true or false")
        return value

    return convert


def optional(convert: Converter) -> Converter:
    """A converter for an optional value: empty / `none` means not given (None), else `convert`."""
    def convert_optional(name: str, text: str) -> Any:
        return None if text.strip() in NONE_VALUES else convert(name, text)

    return convert_optional


def optional_file(what: str = "a path to an existing file") -> Converter:
    """A converter for an optional existing file: empty / `none` means not given (None)."""
    return _optional_path(what, os.path.isfile, "file")


def existing_file(what: str = "a path to an existing file") -> Converter:
    """A converter for a required existing file, made absolute; the error says why not."""
    optional_path = _optional_path(what, os.path.isfile, "file", allow_none=False)

    def convert(name: str, text: str) -> str:
        return optional_path(name, text)  # type: ignore[return-value]

    return convert


def optional_dir(what: str = "a path to an existing folder") -> Converter:
    """A converter for an optional existing folder: empty / `none` means not given (None)."""
    return _optional_path(what, os.path.isdir, "folder")


def _optional_path(what: str, exists: Callable[[str], bool], kind: str, allow_none: bool = True) -> Converter:
    """A path that `exists` accepts (optional unless `allow_none` is False), made absolute; the error
    says why not."""
    def convert(name: str, text: str) -> str | None:
        if allow_none and text.strip() in NONE_VALUES:
            return None
        path = os.path.expanduser(text)
        if not exists(path):
            reason = f"no such {kind}" if not os.path.exists(path) else f"not a {kind}"
            raise ParamError(name, text, f"{what}{', or empty for none' if allow_none else ''} ({reason})")
        return os.path.abspath(path)

    return convert


def diagnostics_params(log_every: int, policy: str) -> tuple[Param, Param]:
    """The fixlab plugin's two run parameters, offered alike by every entry script."""
    return (Param("log_every", integer(minimum=1, maximum=1_000_000), str(log_every),
                  "steps between gradient statistics"),
            Param("policy", choice("warn", "skip_step", "stop"), policy, "what a critical finding does"))


class _Parser(argparse.ArgumentParser):
    """argparse that raises `ParamError` instead of printing a usage block and exiting."""

    def error(self, message: str) -> None:  # type: ignore[override]
        match = re.match(r"argument --([\w.-]+)", message)
        name = match.group(1) if match else "arguments"
        raise ParamError(name, None, f"--{name} followed by a value ({message})")


def parse_params(params: Sequence[Param], argv: Sequence[str] | None = None, *,
                 prog: str | None = None, description: str = "") -> dict[str, Any]:
    """Parse `--name value` flags and convert each value with its parameter's converter.

    Args:
        params: the table of parameters.
        argv: the arguments (default: `sys.argv[1:]`).
        prog: the program name for `--help`.
        description: shown by `--help`.

    Returns:
        Every parameter by name, converted (optional ones absent from argv are None).

    Raises:
        ParamError: the first bad value, an unknown flag or a flag without a value.
    """
    argv = list(sys.argv[1:] if argv is None else argv)
    parser = _Parser(prog=prog, description=description, allow_abbrev=False)
    known = []
    for p in params:
        parser.add_argument(f"--{p.name}", default=p.default, help=p.help, metavar=p.name.upper())
        known.append(f"--{p.name}")
    # Unknown flags: name them and list the known ones.
    namespace, unknown = parser.parse_known_args(argv)
    if unknown:
        flag, _, value = unknown[0].partition("=")
        if not value and len(unknown) > 1 and not unknown[1].startswith("--"):
            value = unknown[1]
        raise ParamError(flag.lstrip("-") or flag, value or None,
                         "one of the known parameters " + ", ".join(known))
    values = {}
    for p in params:
        text = getattr(namespace, p.name)
        values[p.name] = None if text is None else p.convert(p.name, str(text))
    return values


def report_param_error(error: ParamError, prog: str) -> int:
    """Print `error` as one line on stderr; returns `EXIT_BAD_PARAM` for `sys.exit`."""
    print(f"{prog}: {error}", file=sys.stderr)
    return EXIT_BAD_PARAM


def _range_text(kind: str, minimum: float | None, maximum: float | None) -> str:
    if minimum is not None and maximum is not None:
        return f"{kind} from {minimum} to {maximum}"
    if minimum is not None:
        return f"{kind} >= {minimum}"
    if maximum is not None:
        return f"{kind} <= {maximum}"
    return kind
