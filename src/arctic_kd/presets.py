"""The YAML presets that ship inside the package: training configs, bench plans, bench variants and tune
plans.

They are package data found through `importlib.resources`, so a wheel or a regular `pip install` has
them exactly as a source checkout does, whatever folder a command runs from.
"""

from __future__ import annotations

from importlib import resources
from pathlib import Path

from arctic_kd.errors import ArcticError

CONFIG_PRESETS = Path(str(resources.files(__package__) / "configs"))  # an installed package is on disk
BENCH_PRESETS = CONFIG_PRESETS / "bench"
VARIANTS_FILE = BENCH_PRESETS / "variants.yaml"
TUNE_PRESETS = CONFIG_PRESETS / "tune"


def preset_names(folder: Path) -> list[str]:
    """The presets of `folder` by name (bench variants are not a plan)."""
    return sorted(p.stem for p in folder.glob("*.yaml") if p != VARIANTS_FILE)


def find_preset(name: str, folder: Path, kind: str) -> Path:
    """`name` as a file path if there is one, else the preset `folder/name.yaml`."""
    path = Path(name)
    if path.is_file():
        return path
    preset = folder / f"{name}.yaml"
    if preset.is_file() and preset != VARIANTS_FILE:
        return preset
    raise ArcticError(
        f"{name}: no such {kind} file or preset (presets in {folder}: {', '.join(preset_names(folder))})"
    )


def resolve_config(name: str) -> Path:
    """A training config: a YAML file path, or the name of a preset such as `demo` or `ntu`."""
    return find_preset(name, CONFIG_PRESETS, "config")
