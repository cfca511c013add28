"""A regular install (a wheel, as `pip install arctic-kd` gives) carries everything a command needs.

An editable install finds files through the source tree; a wheel has only what the package data lists.
The presets once lived outside the package, so every command that reads one failed after a regular
install. The wheel is built from a copy of the source, installed without dependencies into a new
environment that borrows this one's (torch, numpy, ...), and used from a folder outside the repository.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
import sysconfig
import venv
from pathlib import Path

import pytest

from arctic_kd.presets import CONFIG_PRESETS

ROOT = Path(__file__).resolve().parents[1]
# what a checkout may hold beside the source: never part of a wheel, and possibly large
NOT_SOURCE = {".git", ".venv", "build", "dist", "data", "runs", ".pytest_cache", ".ruff_cache"}


def not_source(folder: str, names: list[str]) -> set[str]:
    top = Path(folder) == ROOT
    return {n for n in names if (top and n in NOT_SOURCE) or n == "__pycache__" or n.endswith(".egg-info")}


def run(command: list[str], cwd: Path, timeout: float = 120) -> str:
    result = subprocess.run(command, cwd=cwd, capture_output=True, text=True, timeout=timeout)
    assert result.returncode == 0, f"{command}: {result.stdout}\n{result.stderr}"
    return result.stdout


@pytest.fixture(scope="module")
def installed(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A new environment with the project installed from its wheel; returns its bin folder."""
    scratch = tmp_path_factory.mktemp("wheel")
    source = scratch / "source"
    shutil.copytree(ROOT, source, ignore=not_source)
    pip = [sys.executable, "-m", "pip"]
    run([*pip, "wheel", "--no-deps", "--no-build-isolation", "-q", "-w", str(scratch), str(source)], scratch)
    wheel = next(scratch.glob("arctic_kd-*.whl"))
    env = scratch / "env"
    venv.create(env, with_pip=False)
    python = env / "bin" / "python"
    purelib = "import sysconfig; print(sysconfig.get_paths()['purelib'])"
    target = Path(run([str(python), "-c", purelib], scratch).strip())
    (target / "borrowed.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")  # dependencies, not us
    run([*pip, "--python", str(python), "install", "--no-deps", "-q", str(wheel)], scratch)
    return env / "bin"


@pytest.mark.slow
def test_the_installed_package_is_the_wheel_not_the_source(installed: Path, tmp_path: Path) -> None:
    where = run([str(installed / "python"), "-c", "import arctic_kd; print(arctic_kd.__file__)"], tmp_path)
    assert Path(where.strip()).is_relative_to(installed.parent)


@pytest.mark.slow
def test_commands_and_presets_work_after_a_regular_install(installed: Path, tmp_path: Path) -> None:
    arctic = str(installed / "arctic")
    assert "arctic demo" in run([arctic, "--help"], tmp_path)
    assert "--synth-seed" in run([arctic, "demo", "--help"], tmp_path)
    listing = run([arctic, "bench", "--list"], tmp_path)
    assert "arctic-no-arm" in listing and "quick" in listing and str(installed.parent) in listing
    load = (
        "from arctic_kd.config import load_config; from arctic_kd.presets import resolve_config; "
        "print(load_config(resolve_config('demo')).optim.teacher_epochs)"
    )
    shipped = run([str(installed / "python"), "-c", load], tmp_path)
    expected = (CONFIG_PRESETS / "demo.yaml").read_text()
    assert f"teacher_epochs: {shipped.strip()}" in expected
