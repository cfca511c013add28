"""Person boxes from skeletons: the region of each stream where the performer is, stable over the clip.

The performer fills a small part of an NTU frame and the RGB and IR cameras are not pixel-aligned, but
every skeleton joint has a pixel position in both (colorX/Y in RGB, depthX/Y in IR). The box is taken in
IR, around all joints of all frames (one box per clip: stable over time), and carried into RGB through the
video's RGB→IR registration (`registration.py`), so both streams crop the same region of the scene: depth
joints are what the Kinect tracks, colour positions are mapped from them and are where failed mappings
(wild values) show up, which the robust fit ignores but a box around the colour joints would not. FUSION's
IR results on NTU60 rise from 75.8 % to 90.4 % with such crops (plus pretraining).
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from arctic_kd.data.registration import fit_registration, inverse, mapped_box
from arctic_kd.data.skeleton import read_skeleton
from arctic_kd.data.transforms import CropBox

PixelBox = tuple[float, float, float, float]  # x0, y0, x1, y1 in a stream's pixels
Registration = tuple[float, ...]  # RGB pixel → IR pixel affine map, the 2×3 matrix row by row
_COLUMNS = {"ir": (3, 4), "rgb": (5, 6)}  # depthX/Y and colorX/Y in the joint rows


@dataclass(frozen=True)
class PersonTrack:
    """What one skeleton file tells about its video's geometry."""

    boxes: dict[str, PixelBox] | None  # per stream; None when no body was tracked
    registration: Registration | None  # None when the joints cannot determine the map
    residual: float | None = None  # the fit's median IR-pixel error on the video's own tracked pairs
    pairs: int = 0  # tracked joint pairs the fit saw


def person_track(skeleton_path: str | Path) -> PersonTrack:
    """Person boxes and RGB→IR registration of one skeleton file.

    Remembered per file version, since every stage of a run (teacher, baseline, student) asks again.
    """
    path = Path(skeleton_path)
    try:
        version = path.stat()
    except OSError:
        return _track_of(path, 0, 0)  # let the reader report the missing file
    return _track_of(path, version.st_mtime_ns, version.st_size)


def person_boxes(skeleton_path: str | Path) -> dict[str, PixelBox] | None:
    """The box around every valid joint of every frame in IR, and its image in RGB (see module doc)."""
    return person_track(skeleton_path).boxes


@functools.cache
def _track_of(path: Path, mtime_ns: int, size: int) -> PersonTrack:
    skeleton = read_skeleton(path)
    fit = fit_registration(skeleton)
    joints = skeleton.to_array(max_bodies=2)  # (T, bodies, 25, 11)
    boxes = {modality: _extent(joints[..., list(columns)]) for modality, columns in _COLUMNS.items()}
    if fit is None:
        registration, quality = None, (None, 0)
    else:
        registration, quality = tuple(float(v) for v in fit.affine.ravel()), (fit.residual, fit.pairs)
    if boxes["ir"] is None or boxes["rgb"] is None:
        return PersonTrack(None, registration, *quality)
    if fit is not None:
        boxes["rgb"] = mapped_box(inverse(fit.affine), boxes["ir"])
    return PersonTrack(boxes, registration, *quality)


def carried_boxes(boxes: dict[str, PixelBox] | None, affine: np.ndarray | None) -> dict[str, PixelBox] | None:
    """`boxes` with the RGB box made the image of the IR box under `affine` (a borrowed registration:
    both streams then crop the region that map says is the same), unchanged without a map."""
    if boxes is None or affine is None:
        return boxes
    return {**boxes, "rgb": mapped_box(inverse(affine), boxes["ir"])}


def _extent(xy: np.ndarray) -> PixelBox | None:
    """The box around every measured position; absent bodies and lost joints are zeros or NaN."""
    xy = xy.reshape(-1, 2)
    valid = np.isfinite(xy).all(1) & (np.abs(xy).sum(1) > 0)
    if not valid.any():
        return None
    (x0, y0), (x1, y1) = xy[valid].min(0), xy[valid].max(0)
    return float(x0), float(y0), float(x1), float(y1)


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
