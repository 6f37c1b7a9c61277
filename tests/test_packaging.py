"""Packaging: pyproject's dependencies and extras, python_env.yaml's pins, and light imports.

The base install is the framework-free plugin; torch, Lightning, JAX and each project family are
extras (`fixlab[torch]`, `[lightning]`, `[jax]`, `[gw]`, `[repr]`, `[all]`). python_env.yaml (what
`mlflow run` builds) pins exactly base + `all`, each pin inside pyproject's specifier.
"""

from __future__ import annotations

import ast
import importlib.metadata
import json
import subprocess
import sys
from pathlib import Path
from typing import Iterable

import pytest
import yaml
from packaging.requirements import Requirement
from packaging.specifiers import SpecifierSet
from packaging.utils import canonicalize_name
from packaging.version import Version

try:
    import tomllib
except ModuleNotFoundError:  # Python 3.10: the `test` extra installs tomli
    import tomli as tomllib

REPO = Path(__file__).resolve().parents[1]
PROJECT = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
ENV = yaml.safe_load((REPO / "python_env.yaml").read_text())
FRAMEWORKS = ("torch", "lightning", "pytorch_lightning", "jax", "flax", "optax")


def requirements(extras: Iterable[str] = ()) -> list[Requirement]:
    """Base requirements plus those of `extras`, following self-references (`fixlab[jax]`)."""
    self_name = canonicalize_name(PROJECT["name"])
    found = [Requirement(r) for r in PROJECT["dependencies"]]
    todo, seen = list(extras), set()
    while todo:
        extra = todo.pop()
        if extra in seen:
            continue
        seen.add(extra)
        assert extra in PROJECT["optional-dependencies"], f"pyproject names an unknown extra {extra!r}"
        for spec in PROJECT["optional-dependencies"][extra]:
            req = Requirement(spec)
            if canonicalize_name(req.name) == self_name:
                todo.extend(req.extras)
            else:
                found.append(req)
    return found


def env_pins() -> dict[str, Requirement]:
    """python_env.yaml's dependencies by normalized name."""
    reqs = [Requirement(r) for r in ENV["dependencies"]]
    pins = {canonicalize_name(r.name): r for r in reqs}
    assert len(pins) == len(reqs), f"python_env.yaml names a distribution twice: {ENV['dependencies']}"
    return pins


def test_python_env_lists_exactly_base_and_all_extras() -> None:
    declared = {canonicalize_name(r.name) for r in requirements(["all"])}
    listed = set(env_pins())
    assert listed == declared, (f"python_env.yaml lacks {sorted(declared - listed)}, "
                                f"has extra {sorted(listed - declared)}")


def test_all_extra_covers_every_other_extra() -> None:
    others = set(PROJECT["optional-dependencies"]) - {"all", "test"}
    every = {canonicalize_name(r.name) for r in requirements(others)}
    in_all = {canonicalize_name(r.name) for r in requirements(["all"])}
    assert in_all == every, f"`all` lacks {sorted(every - in_all)}: it must name every extra but test"


def test_python_env_pins_satisfy_pyproject() -> None:
    pins = env_pins()
    for name, pin in pins.items():
        (spec,) = pin.specifier  # one exact pin: the version this project is tested with
        assert spec.operator == "==" and "*" not in spec.version, f"python_env.yaml: {pin} is no exact pin"
    for req in requirements(["all"]):
        pin = pins.get(canonicalize_name(req.name))
        assert pin is not None, f"python_env.yaml does not pin {req.name} (pyproject: {req})"
        version = next(iter(pin.specifier)).version
        assert req.specifier.contains(version, prereleases=True), (
            f"python_env.yaml pins {req.name}=={version}, outside pyproject's {req}")


def test_python_env_python_satisfies_requires_python() -> None:
    python = str(ENV["python"])
    assert SpecifierSet(PROJECT["requires-python"]).contains(Version(python)), (
        f"python_env.yaml's python {python} is outside requires-python {PROJECT['requires-python']}")


# Which install must provide each file's imports: base + these extras. First matching prefix wins.
OWNERS: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("mlflow_plugins/pytorch/", ("torch",)),
    ("mlflow_plugins/registry/torch_", ("torch",)),
    ("mlflow_plugins/lightning/", ("lightning",)),
    ("mlflow_plugins/jax/", ("jax",)),
    ("mlflow_plugins/", ()),
    ("projects/common/jax_checkpoint.py", ("gw",)),
    ("projects/common/lightning_fit.py", ("repr",)),
    ("projects/common/epoch_history.py", ("repr",)),
    ("projects/common/", ()),
    ("projects/cpc_snn_gw/", ("gw",)),
    ("jax_modules/", ("gw",)),
    ("projects/repr_gradflow/", ("repr",)),
    ("projects/cvkan/", ("cvkan",)),
    ("lightning_modules/cvkan/", ("cvkan",)),
    ("projects/poetry_ae/", ("poetry",)),
    ("lightning_modules/poetry_ae/", ("poetry",)),
    ("lightning_modules/fixmatch_pu/", ("fixmatch",)),
    ("projects/fixmatch_pu/", ("fixmatch",)),
    ("lightning_modules/", ("repr",)),
    ("projects/", ()),
    ("benchmarks/", ("all",)),
    ("tests/", ("all", "test")),
)
LOCAL = {"mlflow_plugins", "projects", "jax_modules", "lightning_modules", "benchmarks", "conftest"}


def _imported(path: Path) -> set[str]:
    """Top-level names of the absolute imports in `path`, those inside functions included."""
    names = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            names |= {a.name.partition(".")[0] for a in node.names}
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names.add(node.module.partition(".")[0])
    return names


def test_each_install_declares_what_its_code_imports() -> None:
    dists = importlib.metadata.packages_distributions()
    helpers = {p.stem for p in (REPO / "tests").rglob("*.py")}
    missing = []
    roots = {prefix.partition("/")[0] for prefix, _ in OWNERS}
    for path in sorted(p for root in roots for p in (REPO / root).rglob("*.py")):
        rel = path.relative_to(REPO).as_posix()
        extras = next((e for prefix, e in OWNERS if rel.startswith(prefix)), None)
        if extras is None:
            continue
        declared = {canonicalize_name(r.name) for r in requirements(extras)}
        for name in _imported(path) - set(sys.stdlib_module_names) - LOCAL - helpers:
            if not declared & {canonicalize_name(d) for d in dists.get(name, [name])}:
                missing.append(f"{rel} imports {name}, not in base + {list(extras)}")
    assert not missing, "\n".join(missing)


def _probe(code: str, guard: Iterable[str] = ()) -> dict[str, object]:
    """Run `code` in a fresh interpreter (`guard`ed modules unimportable); what it loaded or raised."""
    script = "\n".join([
        "import json, sys",
        *(f"sys.modules[{m!r}] = None" for m in guard),
        "try:",
        *(f"    {line}" for line in code.splitlines()),
        "    error = None",
        "except ImportError as e:",
        "    error = f'{type(e).__name__}: {e}'",
        f"loaded = [m for m in {FRAMEWORKS!r} if sys.modules.get(m) is not None]",
        "print(json.dumps({'loaded': loaded, 'error': error}))",
    ])
    out = subprocess.run([sys.executable, "-c", script], cwd=REPO, capture_output=True, text=True,
                         timeout=180)
    assert out.returncode == 0, out.stderr
    return json.loads(out.stdout.strip().splitlines()[-1])


@pytest.mark.slow
@pytest.mark.parametrize(("code", "loads"), [
    ("import mlflow, mlflow_plugins\nfrom mlflow_plugins import Finding, Rule, RunReport\n"
     "import mlflow_plugins.cli", set()),
    ("import mlflow_plugins.pytorch, mlflow_plugins\nmlflow_plugins.watch", {"torch"}),
    ("import mlflow_plugins.jax", {"jax", "flax", "optax"}),
], ids=["base", "pytorch", "jax"])
def test_an_adapter_imports_only_its_own_framework(code: str, loads: set[str]) -> None:
    result = _probe(code)
    assert result["error"] is None, result["error"]
    assert set(result["loaded"]) == loads, f"{code!r} loaded {result['loaded']}, expected {sorted(loads)}"


@pytest.mark.slow
@pytest.mark.parametrize(("code", "missing", "message"), [
    ("import mlflow_plugins\nmlflow_plugins.watch", "torch",
     "mlflow_plugins.pytorch needs torch: pip install 'fixlab[torch]'"),
    ("import mlflow_plugins.jax", "jax", "mlflow_plugins.jax needs jax: pip install 'fixlab[jax]'"),
    ("import mlflow_plugins.jax", "optax", "mlflow_plugins.jax needs optax: pip install 'fixlab[jax]'"),
    ("from mlflow_plugins import GradientHealthCallback", "lightning",
     "mlflow_plugins.lightning needs lightning: pip install 'fixlab[lightning]'"),
    ("from mlflow_plugins.registry import register_checkpoint", "torch",
     "mlflow_plugins.registry.register_checkpoint needs torch: pip install 'fixlab[torch]'"),
], ids=["watch-torch", "jax-jax", "jax-optax", "lightning", "registry-torch"])
def test_a_missing_framework_names_its_extra(code: str, missing: str, message: str) -> None:
    assert _probe(code, guard=[missing])["error"] == f"ImportError: {message}"
