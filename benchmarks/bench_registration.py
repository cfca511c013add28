"""How far off is the RGB→IR map a video gets when its own skeleton cannot give one? Fitted vs fallback vs
nominal, in IR pixels, on real NTU skeleton files and on the synthetic renderer's skeletons.

    python benchmarks/bench_registration.py                       # real samples in ../shared + renders
    python benchmarks/bench_registration.py --skeletons DIR ...   # any folders of NTU .skeleton files

For every skeleton file with a fitted map, the error of a map is the median, over the file's own tracked
joint pairs (colorX/Y ↔ depthX/Y), of the IR-pixel distance between the IR position and the mapped colour
position. Maps compared:
  fitted    the file's own robust fit (what training uses when the skeleton is usable);
  fallback  leave one out: what `registration.fallback_registrations` gives the file when its own fit is
            removed — the median of the other files' fits of its setup and camera, else of its camera in
            any setup (the level used is counted), else nominal;
  nominal   the Kinect v2 field-of-view map (`registration.fov_affine`).
Renders: `--render-performers` performers over `--render-setups` setups, `--render-actions` actions each,
3 cameras, at NTU's resolutions (skeletons only, no video). Prints a Markdown table per source.
"""

from __future__ import annotations

import argparse
import re
import tempfile
from collections import Counter
from pathlib import Path

import numpy as np

from arctic_kd.data.ntu import SampleName
from arctic_kd.data.registration import (
    NOMINAL,
    fallback_registrations,
    fit_registration,
    fov_affine,
    joint_pairs,
    reprojection_errors,
)
from arctic_kd.data.skeleton import read_skeleton, write_skeleton
from arctic_kd.data.synth import SynthConfig
from arctic_kd.data.synth.camera import kinect_pair
from arctic_kd.data.synth.dataset import (
    CAMERA_AZIMUTHS,
    make_performer,
    make_setup,
    make_skeleton,
    take_world_joints,
)

REAL_SKELETONS = (
    Path(__file__).resolve().parents[1] / ".." / "shared/reference/real-samples/ntu/nturgb+d_skeletons"
)
NTU_SIZES = ((1920, 1080), (512, 424))  # RGB, IR (width, height)
MAPS = {
    "fitted": "fitted (own joints)",
    "fallback": "fallback, leave one out",
    "camera": "fallback from other setups only (camera level)",
    "nominal": "nominal Kinect v2",
}
SHOWN_FILES = 10
_NAME = re.compile(r"S(\d{3})C(\d{3})P\d{3}R\d{3}A\d{3}")


def measure(folder: Path) -> dict:
    """Per-file median errors of the fitted, leave-one-out fallback and nominal maps, and the levels used."""
    files = sorted(folder.glob("*.skeleton"))
    views, fits, pairs = [], [], []
    for path in files:
        match = _NAME.search(path.name)
        if match is None:
            continue
        skeleton = read_skeleton(path)
        fit = fit_registration(skeleton)
        if fit is None:
            continue
        views.append((int(match[1]), int(match[2])))
        fits.append(fit.affine)
        pairs.append(joint_pairs(skeleton))
    nominal = fov_affine(*NTU_SIZES)
    errors: dict[str, list[float]] = {name: [] for name in MAPS}
    levels: Counter[str] = Counter()
    for i, (rgb, ir) in enumerate(pairs):
        others = [None if j == i else fit for j, fit in enumerate(fits)]
        other_setups = [None if view == views[i] else fit for view, fit in zip(views, fits, strict=True)]
        borrowed, level = fallback_registrations(views, others)[i]
        levels[level] += 1
        maps = {
            "fitted": fits[i],
            "fallback": nominal if level == NOMINAL else borrowed,
            "camera": _or_nominal(fallback_registrations(views, other_setups)[i], nominal),
            "nominal": nominal,
        }
        for name, affine in maps.items():
            errors[name].append(float(np.median(reprojection_errors(affine, rgb, ir))))
    return {"files": len(pairs), "views": len(set(views)), "errors": errors, "levels": levels}


def _or_nominal(chosen: tuple[np.ndarray | None, str], nominal: np.ndarray) -> np.ndarray:
    return nominal if chosen[0] is None else chosen[0]


def render_skeletons(folder: Path, performers: int, setups: int, actions: int) -> Path:
    """Skeleton files of the synthetic renderer at NTU's resolutions (the geometry `arctic synth` draws)."""
    config = SynthConfig(
        performers=performers, setups=setups, num_classes=actions, replications=1, rgb_size=NTU_SIZES[0],
        ir_size=NTU_SIZES[1],
    )  # fmt: skip
    for take in config.takes():
        world = take_world_joints(config, take, make_performer(config, take.performer))
        setup = make_setup(config, take.setup)
        for camera in range(1, config.cameras + 1):
            cameras = kinect_pair(CAMERA_AZIMUTHS[camera], setup.distance, setup.height, *NTU_SIZES)
            name = SampleName(take.setup, camera, take.performer, take.replication, take.action)
            write_skeleton(folder / f"{name}.skeleton", make_skeleton(world, *cameras, body_id=1))
    return folder


def table(title: str, result: dict) -> str:
    errors, levels = result["errors"], result["levels"]
    used = ", ".join(f"{level} {n}" for level, n in sorted(levels.items()))
    lines = [
        f"{title}: {result['files']} files, {result['views']} setup/camera views; fallback used: {used}",
        "",
        "| map | median of per-file median error, IR px | largest per-file median, IR px |",
        "| --- | --- | --- |",
    ]
    for name, label in MAPS.items():
        lines.append(f"| {label} | {np.median(errors[name]):.2f} | {max(errors[name]):.2f} |")
    if result["files"] <= SHOWN_FILES:
        per_file = ", ".join(
            " / ".join(f"{v:.2f}" for v in values) for values in zip(*errors.values(), strict=True)
        )
        lines += ["", f"per file ({' / '.join(MAPS)}): {per_file}"]
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--skeletons", type=Path, nargs="*", default=[REAL_SKELETONS], metavar="DIR")
    parser.add_argument("--render-performers", type=int, default=12)
    parser.add_argument("--render-setups", type=int, default=3)
    parser.add_argument("--render-actions", type=int, default=4)
    args = parser.parse_args()
    for folder in args.skeletons:
        if not folder.is_dir():
            raise SystemExit(f"{folder}: no such folder of .skeleton files")
        print(table(f"real: {folder.resolve()}", measure(folder)), end="\n\n")
    if args.render_performers:
        with tempfile.TemporaryDirectory() as tmp:
            render_skeletons(Path(tmp), args.render_performers, args.render_setups, args.render_actions)
            title = (
                f"renders: {args.render_performers} performers, {args.render_setups} setups, "
                f"{args.render_actions} actions, 3 cameras"
            )
            print(table(title, measure(Path(tmp))))


if __name__ == "__main__":
    main()
