"""What a registered fixlab model's MLmodel may name: data, and a loader module we installed.

A fixlab model is data only (weights, a JSON config, a signature) under one flavor,
``python_function``, whose ``loader_module`` is a module of the installed fixlab packages
(MLflow's ``_load_pyfunc(data_path)`` convention). Everything else an MLmodel can say makes
MLflow run code from the artifact: ``code`` (prepended to ``sys.path``), ``model_code_path``
(models from code: a file executed on load), ``python_model``/``cloudpickle_version`` (a
cloudpickled object), another flavor's loader, or a ``loader_module`` outside our packages.
`check_mlmodel` reads the file with a safe YAML parser and refuses all of these before anything
from the artifact is imported or unpickled: a tampered artifact can at worst fail to load.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any, Collection

import yaml

#: The installed packages a loader module, a model class or a config class may come from.
TRUSTED_PACKAGES = ("mlflow_plugins", "lightning_modules", "jax_modules", "projects")
PYFUNC = "python_function"
DATA_DIR = "data/model"  # where `pyfunc_models.log_data_model` puts the model's data
#: The keys MLflow writes for a data + loader_module pyfunc; `code` only as null.
_PYFUNC_KEYS = {"loader_module", "python_version", "data", "env", "streamable", "code"}
_CODE_KEYS = ("code", "model_code_path", "python_model", "cloudpickle_version", "artifacts")
_DOTTED = re.compile(r"[A-Za-z_]\w*(\.[A-Za-z_]\w*)*")


def trusted(module: str) -> bool:
    """Whether `module` is a dotted module name inside one of the installed fixlab packages."""
    return (isinstance(module, str) and _DOTTED.fullmatch(module) is not None
            and module.split(".", 1)[0] in TRUSTED_PACKAGES)


def check_mlmodel(model_dir: str | Path, loader_modules: Collection[str] | None = None) -> str:
    """The loader module of the model in `model_dir`, after checking its MLmodel names nothing else.

    Args:
        model_dir: a downloaded model (holding ``MLmodel``).
        loader_modules: the loader modules the caller accepts; None: any trusted one.

    Raises:
        ValueError: one line starting "its MLmodel", naming what it holds that is not allowed.
    """
    conf = _read(Path(model_dir) / "MLmodel")
    flavors = conf.get("flavors")
    if not isinstance(flavors, dict) or set(flavors) != {PYFUNC}:
        names = sorted(flavors) if isinstance(flavors, dict) else flavors
        _refuse(f"has flavors {names!r}", f"the one flavor {PYFUNC!r}")
    pyfunc = flavors[PYFUNC]
    if not isinstance(pyfunc, dict):
        _refuse(f"has a {PYFUNC} flavor that is a {type(pyfunc).__name__}", "a mapping")
    for key in _CODE_KEYS:
        if pyfunc.get(key) is not None:
            _refuse(f"names code to run ({key}: {pyfunc[key]!r})", "data only, loaded by an installed module")
    unknown = sorted(set(pyfunc) - _PYFUNC_KEYS)
    if unknown:
        _refuse(f"has {PYFUNC} keys {unknown}", f"only {sorted(_PYFUNC_KEYS - {'code'})}")
    module = pyfunc.get("loader_module")
    allowed = sorted(loader_modules) if loader_modules is not None else None
    if not trusted(module) or (allowed is not None and module not in allowed):
        _refuse(f"names loader_module {module!r}",
                f"one of {allowed}" if allowed is not None else f"a module of {list(TRUSTED_PACKAGES)}")
    if pyfunc.get("data") != DATA_DIR:  # not an absolute path, nor one that leaves the artifact
        _refuse(f"names data {pyfunc.get('data')!r}", repr(DATA_DIR))
    return module


def _read(path: Path) -> dict[str, Any]:
    try:
        conf = yaml.safe_load(path.read_text(encoding="utf-8"))
    except OSError as e:
        _refuse(f"cannot be read ({type(e).__name__}: {e.strerror or e})", "a readable MLmodel file")
    except (yaml.YAMLError, UnicodeDecodeError) as e:
        first = str(e).strip().splitlines()[0] if str(e).strip() else ""
        _refuse(f"is not plain YAML ({type(e).__name__}: {first})", "a YAML mapping without tags")
    if not isinstance(conf, dict):
        _refuse(f"is a {type(conf).__name__}", "a YAML mapping")
    return conf


def _refuse(problem: str, allowed: str) -> None:
    raise ValueError(f"its MLmodel {problem}; allowed: {allowed}")
