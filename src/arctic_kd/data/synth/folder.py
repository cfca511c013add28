"""The folder a synthetic NTU-layout render is written into: its files in NTU's names (`sample_paths`,
`write_take`, `generate`), and the `synth.json` marker that says which settings rendered it and whether it
finished, so a finished render is reused and a folder holding anything else (a real dataset) is refused.
"""

from __future__ import annotations

import functools
import json
import os
from collections.abc import Callable
from dataclasses import asdict
from pathlib import Path

import cv2

from arctic_kd.data.ntu import SampleName
from arctic_kd.data.skeleton import write_skeleton
from arctic_kd.data.synth.dataset import SynthConfig, render_take
from arctic_kd.data.video import write_video
from arctic_kd.data.workers import map_in_workers
from arctic_kd.errors import DataError
from arctic_kd.progress import progress_bar

META_FILE = "synth.json"
GENERATOR = "arctic-kd synthetic NTU"  # in synth.json: which layout the folder holds
CLASS_FILE = "class_names.txt"


def sample_paths(root: Path, name: SampleName) -> dict[str, Path]:
    """Where the NTU layout keeps a sample's RGB video, IR video and skeleton file."""
    return {
        "rgb": root / "nturgb+d_rgb" / f"{name}_rgb.avi",
        "ir": root / "nturgb+d_ir" / f"{name}_ir.avi",
        "skeleton": root / "nturgb+d_skeletons" / f"{name}.skeleton",
    }


def write_take(config: SynthConfig, root: Path, take: SampleName) -> int:
    """Render and write one take; returns the number of samples written."""
    cv2.setNumThreads(1)
    for out in render_take(config, take):
        paths = sample_paths(root, out.name)
        _write_atomically(paths["rgb"], lambda p, o=out: write_video(p, o.rgb, config.fps, config.quality))
        _write_atomically(paths["ir"], lambda p, o=out: write_video(p, o.ir, config.fps, config.quality))
        _write_atomically(paths["skeleton"], lambda p, o=out: write_skeleton(p, o.skeleton))
    return config.cameras


def _write_atomically(path: Path, write: Callable[[Path], None]) -> None:
    """Write beside the target, then rename: an interrupted run never leaves a half-written file."""
    partial = path.with_name(f".{path.stem}.partial{path.suffix}")
    write(partial)
    os.replace(partial, path)


def is_rendered(root: Path, config: SynthConfig) -> bool:
    """True when `root` already holds a complete dataset made with exactly this configuration."""
    return rendered_config(root) == config


def rendered_config(root: Path) -> SynthConfig | None:
    """The configuration of the complete synthetic dataset in `root`; None when there is none."""
    recorded = recorded_render(root)
    return recorded[0] if recorded is not None and recorded[1] else None


def recorded_render(root: Path) -> tuple[SynthConfig, bool] | None:
    """The settings of the NTU-layout render in `root` and whether it finished; None if it holds none."""
    marker = read_marker(root)
    if marker.get("generator") != GENERATOR:
        return None
    try:
        config = SynthConfig(
            **{k: tuple(v) if isinstance(v, list) else v for k, v in marker["config"].items()}
        )
    except (AttributeError, KeyError, TypeError, ValueError):
        return None
    return config, marker == _meta(config)


def read_marker(root: Path) -> dict:
    """`root`'s synth.json; empty when there is none or it cannot be read."""
    try:
        marker = json.loads((root / META_FILE).read_text())
    except (OSError, json.JSONDecodeError):
        return {}
    return marker if isinstance(marker, dict) else {}


def _meta(config: SynthConfig) -> dict:
    return {
        "generator": GENERATOR,
        "config": json.loads(json.dumps(asdict(config))),
        "samples": len(config.sample_names()),
    }


def is_foreign_folder(root: Path, generator: str = GENERATOR) -> bool:
    """Whether `root` holds anything but a render of `generator`, finished or not: a real dataset, say,
    whose videos carry the same NTU or PKU-MMD names as the ones rendering would write over them."""
    if not root.exists():
        return False
    if not root.is_dir():
        return True
    if read_marker(root).get("generator") == generator:
        return False
    return any(root.iterdir())


def refuse_foreign_folder(root: Path, generator: str = GENERATOR) -> None:
    """Refuse to render into a folder that `is_foreign_folder`."""
    if not is_foreign_folder(root, generator):
        return
    if not root.is_dir():
        raise DataError(root, "is not a folder: the synthetic dataset is rendered into a folder")
    raise DataError(
        root,
        f"holds files but no {META_FILE} of this generator ({generator}), so nothing is rendered into it "
        "(a real dataset's videos would be overwritten): give an empty or a new folder (an unfinished "
        "render of an older arctic-kd has no synth.json either: delete it)",
    )


def claim_folder(root: Path, meta: dict) -> None:
    """Mark `root` as a render in progress (`synth.json` saying so, until the last sample is written)."""
    refuse_foreign_folder(root, meta["generator"])
    root.mkdir(parents=True, exist_ok=True)
    (root / META_FILE).write_text(json.dumps({**meta, "complete": False}, indent=2) + "\n")


def generate(
    root: str | Path, config: SynthConfig, workers: int | None = None, progress: bool = True
) -> Path:
    """Write the dataset under `root` (NTU folders, `class_names.txt`, `synth.json`); returns `root`."""
    root = Path(root)
    claim_folder(root, _meta(config))
    for folder in ("nturgb+d_rgb", "nturgb+d_ir", "nturgb+d_skeletons"):
        (root / folder).mkdir(parents=True, exist_ok=True)
    _remove_other_samples(root, config)
    (root / CLASS_FILE).write_text("".join(f"A{i + 1:03d}\t{n}\n" for i, n in enumerate(config.class_names)))
    takes = config.takes()
    workers = workers or min(os.cpu_count() or 1, len(takes))
    bar = progress_bar(total=len(takes) * config.cameras, unit="sample", desc="synth", enabled=progress)
    with bar:
        for done in map_in_workers(functools.partial(write_take, config, root), takes, workers):
            bar.update(done)
    (root / META_FILE).write_text(json.dumps(_meta(config), indent=2) + "\n")
    return root


def _remove_other_samples(root: Path, config: SynthConfig) -> None:
    """Delete the files of an earlier render (this generator's folder: `claim_folder`) that `config` does not
    write, e.g. the extra classes of a larger one, so the index does not mix two renders."""
    keep = {path for name in config.sample_names() for path in sample_paths(root, name).values()}
    for folder in {path.parent for path in keep}:
        for path in folder.iterdir():
            if path.is_file() and path not in keep:
                path.unlink()
