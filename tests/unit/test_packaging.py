"""What the wheel holds: the packages pyproject.toml's `include` patterns select, none of which may import
the repository's unpackaged directories (an installed cascade, e.g. the Docker image, has no `tests/`)."""

from __future__ import annotations

import ast
import tomllib
from pathlib import Path
from typing import Any

from setuptools import find_packages

ROOT = Path(__file__).resolve().parents[2]
# Top-level directories of the repository that are not in the wheel.
UNPACKAGED = ("tests", "bench")


def pyproject() -> dict[str, Any]:
    with (ROOT / "pyproject.toml").open("rb") as file:
        return tomllib.load(file)


def packaged_packages() -> list[str]:
    include = pyproject()["tool"]["setuptools"]["packages"]["find"]["include"]
    return find_packages(where=str(ROOT), include=include)


def imported_top_levels(source: Path) -> set[str]:
    names: set[str] = set()
    for node in ast.walk(ast.parse(source.read_text(encoding="utf-8"), str(source))):
        if isinstance(node, ast.Import):
            names |= {alias.name.split(".")[0] for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names.add(node.module.split(".")[0])
        elif isinstance(node, ast.Call) and getattr(node.func, "attr", None) == "import_module":
            # importlib.import_module("tests.x") hides the import from a scan of import statements.
            names |= {arg.value.split(".")[0] for arg in node.args if isinstance(arg, ast.Constant)}
    return names


def test_the_wheel_holds_the_five_layers_and_nothing_unpackaged() -> None:
    top_levels = {package.split(".")[0] for package in packaged_packages()}
    assert top_levels == {"router", "policies", "views", "adapters", "ops"}


def test_no_packaged_module_imports_the_tests_or_the_benchmarks() -> None:
    offenders = {
        str(module.relative_to(ROOT)): found
        for package in packaged_packages()
        for module in (ROOT / package.replace(".", "/")).glob("*.py")
        if (found := imported_top_levels(module) & set(UNPACKAGED))
    }
    assert offenders == {}


def test_the_scan_sees_each_way_of_importing_the_tests(tmp_path: Path) -> None:
    for line in ("import tests.support", "from tests.support import x", 'importlib.import_module("tests.a")'):
        module = tmp_path / "m.py"
        module.write_text(line + "\n")
        assert "tests" in imported_top_levels(module), line


def test_the_distribution_has_a_name_of_its_own_and_installs_the_cascade_command() -> None:
    """ "cascade" on PyPI is an unrelated project: `pip install cascade` must never be what we document."""
    project = pyproject()["project"]
    assert project["name"] == "cascade-router"
    assert project["scripts"] == {"cascade": "ops.cli:main"}
