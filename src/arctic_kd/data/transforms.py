"""Paired spatial transforms: one crop/flip decision shown identically to the RGB and the IR stream.

The two cameras differ in resolution (and aspect), so a crop is drawn in *relative* image coordinates and
mapped to each stream's own pixels; each stream is then resized to its own output size. Photometric
augmentation is separate, since it must differ between the modalities.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import cv2
import numpy as np
import torch

# Kinetics-400 statistics, what the torchvision-compatible RGB backbones were pretrained with.
RGB_MEAN = (0.43216, 0.394666, 0.37645)
RGB_STD = (0.22803, 0.22145, 0.216989)
# IR is one 8-bit channel with no standard statistics: mid-grey and a quarter of the range put it on the
# same scale (about [-2, 2]) as normalised RGB. Configurable, for when a data set's own values are measured.
IR_MEAN = (0.5,)
IR_STD = (0.25,)
MODALITY_STATS: dict[str, tuple[Sequence[float], Sequence[float]]] = {
    "rgb": (RGB_MEAN, RGB_STD),
    "ir": (IR_MEAN, IR_STD),
}


@dataclass(frozen=True)
class CropBox:
    """A crop in fractions of image width (x) and height (y); mirrored left-right after cropping if `flip`."""

    x0: float
    y0: float
    x1: float
    y1: float
    flip: bool = False


def centre_crop(size: float = 1.0) -> CropBox:
    """The deterministic test-time crop: the centre `size` fraction of each side."""
    if not 0 < size <= 1:
        raise ValueError(f"centre crop size must be in (0, 1], got {size}")
    margin = (1 - size) / 2
    return CropBox(margin, margin, 1 - margin, 1 - margin)


def view_crops(size: float, count: int, width: float, height: float) -> list[CropBox]:
    """The `count` test crops of a `width` × `height` (pixels) region: boxes of the centre crop's size,
    evenly spaced along the region's longer side (across the whole side) and centred on the other;
    the centre crop first, so that the first view is the single-clip one.

    mmaction2's `ThreeCrop` is the case `count` = 3, except that our boxes keep the centre crop's relative
    size (the network was trained on crops of the region, not on squares), so they only differ when
    `size` < 1.
    """
    if count < 1 or count % 2 == 0:
        raise ValueError(f"test_crops must be odd (the centre crop is one of them), got {count}")
    if count > 1 and size >= 1:
        raise ValueError(f"{count} test crops of the whole region would coincide: set test_crop below 1")
    centre = centre_crop(size)
    crops = [centre]
    for index, start in enumerate(np.linspace(0.0, 1.0 - size, count).tolist()):
        if index == count // 2:
            continue  # the centre, already first
        if width >= height:
            crops.append(CropBox(start, centre.y0, start + size, centre.y1))
        else:
            crops.append(CropBox(centre.x0, start, centre.x1, start + size))
    return crops


def sample_crop(
    rng: np.random.Generator,
    scale: tuple[float, float] = (0.6, 1.0),
    ratio: tuple[float, float] = (3 / 4, 4 / 3),
    flip: bool = True,
) -> CropBox:
    """A random-resized-crop decision: area fraction from `scale`, relative aspect log-uniform in `ratio`."""
    for _ in range(10):
        area = rng.uniform(*scale)
        aspect = math.exp(rng.uniform(math.log(ratio[0]), math.log(ratio[1])))
        width, height = math.sqrt(area * aspect), math.sqrt(area / aspect)
        if width <= 1 and height <= 1:
            break
    width, height = min(width, 1.0), min(height, 1.0)
    x0 = rng.uniform(0, 1 - width)
    y0 = rng.uniform(0, 1 - height)
    return CropBox(x0, y0, x0 + width, y0 + height, flip=flip and bool(rng.random() < 0.5))


def within(outer: CropBox, inner: CropBox) -> CropBox:
    """`inner` (relative to `outer`) in the coordinates `outer` is given in: a crop of a crop."""
    width, height = outer.x1 - outer.x0, outer.y1 - outer.y0
    return CropBox(
        outer.x0 + inner.x0 * width,
        outer.y0 + inner.y0 * height,
        outer.x0 + inner.x1 * width,
        outer.y0 + inner.y1 * height,
        flip=inner.flip != outer.flip,
    )


def apply_crop(frames: np.ndarray, box: CropBox, out_size: tuple[int, int]) -> np.ndarray:
    """Crop uint8 (T, H, W, C) frames to `box`, flip if asked, and resize to `out_size` (height, width)."""
    _, height, width, channels = frames.shape
    x0, y0, x1, y1 = crop_pixels(box, width, height)
    region = frames[:, y0:y1, x0:x1]
    if box.flip:
        region = region[:, :, ::-1]
    out_h, out_w = out_size
    shrinking = out_h <= y1 - y0 and out_w <= x1 - x0
    interpolation = cv2.INTER_AREA if shrinking else cv2.INTER_LINEAR
    resized = [
        cv2.resize(np.ascontiguousarray(f), (out_w, out_h), interpolation=interpolation) for f in region
    ]
    return np.stack(resized).reshape(len(resized), out_h, out_w, channels)


def jitter_colours(frames: np.ndarray, rng: np.random.Generator, strength: float) -> np.ndarray:
    """Photometric augmentation of an RGB clip: brightness, contrast, saturation; hues are kept.

    Clothing colours identify performers, not actions; with few training performers a colour network
    otherwise learns who, not what. Hues are not shuffled: skin-coloured hands and a red cup are the
    colour network's consistent cues (with the synthetic palette's change, dropping the channel shuffle
    raised the demo teacher from 45 to 68 % top-1; BENCHMARKS.md).
    One draw per clip, so motion between frames is untouched.
    In place and with the grey level summed channel by channel: the same arithmetic, bit for bit, as the
    plain expressions (`grey + (clip - grey) * s`, ...), 4× faster; it was most of a store clip's cost.
    """
    if strength <= 0:
        return frames
    clip = frames.astype(np.float32)
    grey = clip[..., 0:1] + clip[..., 1:2]  # the channel mean, as numpy sums 3 values, without its reduce
    grey += clip[..., 2:3]
    grey /= 3
    clip -= grey  # saturation
    clip *= rng.uniform(1 - strength, 1 + strength)
    clip += grey
    mean = clip.mean()  # contrast
    clip -= mean
    clip *= rng.uniform(1 - strength, 1 + strength)
    clip += mean
    clip *= rng.uniform(1 - strength, 1 + strength)  # brightness
    return np.clip(clip, 0, 255, out=clip).astype(np.uint8)


def to_tensor(frames: np.ndarray, mean: Sequence[float], std: Sequence[float]) -> torch.Tensor:
    """uint8 (T, H, W, C) frames to the float (C, T, H, W) clip a 3-D CNN takes, normalised per channel."""
    channels = frames.shape[-1]
    if len(mean) != channels or len(std) != channels:
        raise ValueError(
            f"{channels}-channel frames need {channels} means and stds, got {len(mean)}, {len(std)}"
        )
    clip = torch.from_numpy(np.ascontiguousarray(frames)).permute(3, 0, 1, 2).contiguous().float().div_(255)
    return clip.sub_(torch.tensor(mean).view(-1, 1, 1, 1)).div_(torch.tensor(std).view(-1, 1, 1, 1))


def standardise(clip: torch.Tensor) -> torch.Tensor:
    """Zero mean and unit variance over the whole clip: removes each recording's overall brightness and
    contrast (room light, clothing, exposure), which a small network trained from scratch otherwise has
    to learn to ignore."""
    return (clip - clip.mean()) / clip.std().clamp_min(1e-3)


def crop_pixels(box: CropBox, width: int, height: int) -> tuple[int, int, int, int]:
    """The pixel rows and columns [x0, x1) × [y0, y1) that `apply_crop` cuts from a width × height frame."""
    x0, x1 = _pixel_span(box.x0, box.x1, width)
    y0, y1 = _pixel_span(box.y0, box.y1, height)
    return x0, y0, x1, y1


def _pixel_span(start: float, stop: float, size: int) -> tuple[int, int]:
    """Relative [start, stop) to pixel bounds, at least one pixel wide."""
    first = min(round(start * size), size - 1)
    return first, max(first + 1, min(round(stop * size), size))
