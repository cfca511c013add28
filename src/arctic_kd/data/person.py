"""Person boxes from skeletons: the region of each stream where the performer is, stable over the clip.

The performer fills a small part of an NTU frame and the RGB and IR cameras are not pixel-aligned, but
every skeleton joint has a pixel position in both (colorX/Y in RGB, depthX/Y in IR). One box per stream,
around all joints of all frames, crops the same person in both streams without any calibration; FUSION's
IR results on NTU60 rise from 75.8 % to 90.4 % with such crops (plus pretraining).
"""

from __future__ import annotations

import functools
from pathlib import Path

import numpy as np

from arctic_kd.data.skeleton import read_skeleton
from arctic_kd.data.transforms import CropBox

PixelBox = tuple[float, float, float, float]  # x0, y0, x1, y1 in a stream's pixels
_COLUMNS = {"ir": (3, 4), "rgb": (5, 6)}  # depthX/Y and colorX/Y in the joint rows


def person_boxes(skeleton_path: str | Path) -> dict[str, PixelBox] | None:
    """The box around every valid joint of every frame, per stream; None when no body was tracked.

    Remembered per file version, since every stage of a run (teacher, baseline, student) asks again.
    """
    path = Path(skeleton_path)
    try:
        version = path.stat()
    except OSError:
        return _boxes_of(path, 0, 0)  # let the reader report the missing file
    return _boxes_of(path, version.st_mtime_ns, version.st_size)


@functools.cache
def _boxes_of(path: Path, mtime_ns: int, size: int) -> dict[str, PixelBox] | None:
    joints = read_skeleton(path).to_array(max_bodies=2)  # (T, bodies, 25, 11)
    boxes = {}
    for modality, (cx, cy) in _COLUMNS.items():
        xy = joints[..., [cx, cy]].reshape(-1, 2)
        valid = np.isfinite(xy).all(1) & (
            np.abs(xy).sum(1) > 0
        )  # absent bodies and lost joints are zeros/NaN
        if not valid.any():
            return None
        (x0, y0), (x1, y1) = xy[valid].min(0), xy[valid].max(0)
        boxes[modality] = (float(x0), float(y0), float(x1), float(y1))
    return boxes


def square_region(box: PixelBox, width: int, height: int, margin: float) -> CropBox:
    """A square around `box` grown by `margin` on each side, moved inside the frame where it fits,
    as fractions of the frame (square in pixels, so the person keeps their proportions)."""
    x0, y0, x1, y1 = box
    side = max(x1 - x0, y1 - y0) * (1 + 2 * margin)
    cx, cy = (x0 + x1) / 2, (y0 + y1) / 2
    left, top = _fit(cx - side / 2, side, width), _fit(cy - side / 2, side, height)
    right, bottom = min(left + side, width), min(top + side, height)
    return CropBox(left / width, top / height, right / width, bottom / height)


def _fit(start: float, side: float, size: int) -> float:
    """Shift a span of length `side` to lie within [0, size] when it fits; clamp it at 0 otherwise."""
    return max(0.0, min(start, size - side))
