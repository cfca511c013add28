"""Draw the figure as depth-sorted capsules: colour and clutter for RGB, heat and noise for IR.

One list of primitives per frame feeds both modalities; only the palette and the sensor model differ,
so what the RGB teacher and the IR student see is the same scene through two different cameras.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from arctic_kd.data.synth import figure as fig
from arctic_kd.data.synth.camera import Camera

SUBPIXEL_BITS = 4

# (joint a, joint b, radius as a fraction of body height, part); a == b draws a sphere.
BODY_CAPSULES: tuple[tuple[int, int, float, str], ...] = (
    (fig.SPINE_BASE, fig.SPINE_SHOULDER, 0.085, "shirt"),
    (fig.L_SHOULDER, fig.R_SHOULDER, 0.045, "shirt"),
    (fig.L_HIP, fig.R_HIP, 0.055, "pants"),
    (fig.SPINE_SHOULDER, fig.NECK, 0.03, "skin"),
    (fig.HEAD, fig.HEAD, 0.062, "skin"),
    (fig.L_SHOULDER, fig.L_ELBOW, 0.032, "shirt"),
    (fig.R_SHOULDER, fig.R_ELBOW, 0.032, "shirt"),
    (fig.L_ELBOW, fig.L_WRIST, 0.026, "sleeve"),
    (fig.R_ELBOW, fig.R_WRIST, 0.026, "sleeve"),
    (fig.L_WRIST, fig.L_HAND_TIP, 0.022, "skin"),
    (fig.R_WRIST, fig.R_HAND_TIP, 0.022, "skin"),
    (fig.L_HIP, fig.L_KNEE, 0.05, "pants"),
    (fig.R_HIP, fig.R_KNEE, 0.05, "pants"),
    (fig.L_KNEE, fig.L_ANKLE, 0.038, "pants"),
    (fig.R_KNEE, fig.R_ANKLE, 0.038, "pants"),
    (fig.L_ANKLE, fig.L_FOOT, 0.028, "shoes"),
    (fig.R_ANKLE, fig.R_FOOT, 0.028, "shoes"),
)

OBJECT_COLOURS = {"cup": (235, 35, 30), "phone": (30, 90, 240), "ball": (250, 215, 20), "book": (20, 200, 70)}


@dataclass(frozen=True)
class Capsule:
    a: np.ndarray  # world end points (T, 3)
    b: np.ndarray
    radius: float  # metres
    part: str


def body_capsules(joints: np.ndarray, height: float, girth: float) -> list[Capsule]:
    return [Capsule(joints[:, a], joints[:, b], r * height * girth, part) for a, b, r, part in BODY_CAPSULES]


def object_capsule(kind: str, joints: np.ndarray, scale: float) -> Capsule:
    """The held object, attached to the right hand (the book spans both hands)."""
    hand, tip, wrist = joints[:, fig.R_HAND], joints[:, fig.R_HAND_TIP], joints[:, fig.R_WRIST]
    along = (tip - wrist) / np.linalg.norm(tip - wrist, axis=-1, keepdims=True)
    up = np.array([0.0, 1.0, 0.0])
    if kind == "cup":
        return Capsule(hand - up * 0.03 * scale, hand + up * 0.07 * scale, 0.038 * scale, "object")
    if kind == "phone":
        return Capsule(hand - along * 0.02, hand + along * 0.11 * scale, 0.022 * scale, "object")
    if kind == "ball":
        centre = tip + along * 0.03 * scale
        return Capsule(centre, centre, 0.06 * scale, "object")
    if kind == "book":
        left = joints[:, fig.L_HAND]
        return Capsule(left + up * 0.06, hand + up * 0.06, 0.075 * scale, "object")
    raise ValueError(f"unknown held object {kind!r}")


def draw_capsules(
    canvas: np.ndarray,
    camera: Camera,
    capsules: list[Capsule],
    frame: int,
    colour: dict[str, tuple],
    outline: float = 0.0,
) -> None:
    """Paint one frame's capsules far-to-near (painter's algorithm), anti-aliased and sub-pixel exact.

    With `outline` > 0 every capsule gets a dark rim of that many pixels first: the shading edges that
    give a colour image its shape cues (a thermal image has none).
    """
    ends = np.stack([np.stack([c.a[frame], c.b[frame]]) for c in capsules])  # (N, 2, 3)
    depth = camera.to_camera(ends)[..., 2]
    pixels = np.round(camera.project(ends) * (1 << SUBPIXEL_BITS)).astype(int)
    for i in np.argsort(-depth.mean(axis=1)):
        capsule = capsules[i]
        radius = float(capsule.radius * camera.focal / max(depth[i].mean(), 1e-3))
        paint = colour[capsule.part]
        if outline > 0:
            dark = tuple(0.35 * v for v in paint) if isinstance(paint, tuple) else 0.35 * paint
            _draw_capsule(canvas, pixels[i], capsule.a is capsule.b, radius + outline, dark)
        _draw_capsule(canvas, pixels[i], capsule.a is capsule.b, radius, paint)


def _draw_capsule(canvas: np.ndarray, ends: np.ndarray, sphere: bool, radius: float, paint) -> None:
    (x0, y0), (x1, y1) = ends
    if sphere:
        cv2.circle(
            canvas, (x0, y0), round(radius * (1 << SUBPIXEL_BITS)), paint, -1, cv2.LINE_AA, SUBPIXEL_BITS
        )
    else:
        cv2.line(canvas, (x0, y0), (x1, y1), paint, max(1, round(2 * radius)), cv2.LINE_AA, SUBPIXEL_BITS)


def figure_mask(camera: Camera, capsules: list[Capsule], frame: int) -> np.ndarray:
    """Boolean image of where the figure (and its object) covers the frame."""
    mask = np.zeros((camera.height, camera.width), np.uint8)
    draw_capsules(mask, camera, capsules, frame, dict.fromkeys({c.part for c in capsules}, 255))
    return mask > 0


def rgb_frame(
    background: np.ndarray,
    camera: Camera,
    capsules: list[Capsule],
    frame: int,
    palette: dict[str, tuple],
    noise: SensorNoise,
) -> np.ndarray:
    canvas = background.copy()
    draw_capsules(canvas, camera, capsules, frame, palette, outline=max(1.0, canvas.shape[1] / 256))
    return noise(canvas)


def ir_frame(
    background: np.ndarray,
    camera: Camera,
    capsules: list[Capsule],
    frame: int,
    heat: dict[str, float],
    blur: float,
    noise: SensorNoise,
) -> np.ndarray:
    canvas = background.copy()
    draw_capsules(canvas, camera, capsules, frame, {part: float(v) for part, v in heat.items()})
    if blur > 0:
        canvas = cv2.GaussianBlur(canvas, (0, 0), blur)
    return noise(canvas)


class SensorNoise:
    """Gaussian sensor noise, drawn once per video as a larger tile and cut at a random offset per frame.

    Drawing fresh normals for every pixel of every frame was most of the render time; shifted crops of
    one tile look the same to a network and keep rendering cheap.
    """

    MARGIN = 16

    def __init__(self, shape: tuple[int, ...], sigma: float, rng: np.random.Generator) -> None:
        self.rng = rng
        tile_shape = (shape[0] + self.MARGIN, shape[1] + self.MARGIN, *shape[2:])
        self.tile = np.round(rng.standard_normal(tile_shape, dtype=np.float32) * sigma).astype(np.int16)
        self.shape = shape

    def __call__(self, image: np.ndarray) -> np.ndarray:
        dy, dx = self.rng.integers(0, self.MARGIN, 2)
        crop = self.tile[dy : dy + self.shape[0], dx : dx + self.shape[1]]
        return np.clip(image.astype(np.int16) + crop, 0, 255).astype(np.uint8)


def rgb_background(width: int, height: int, clutter: float, rng: np.random.Generator) -> np.ndarray:
    """A room: wall and floor, furniture in random colours and a texture, both scaled by `clutter` (0–1)."""
    # a dim, greyish room (each setup its own tint), so that the lit performer stands out
    wall, floor = rng.uniform(35, 80) + rng.uniform(-8, 8, 3), rng.uniform(25, 60) + rng.uniform(-8, 8, 3)
    horizon = int(height * rng.uniform(0.55, 0.75))
    image = np.empty((height, width, 3), np.float32)
    image[:horizon] = wall
    image[horizon:] = floor
    for _ in range(rng.integers(2, 6)):
        x0, y0 = rng.integers(0, width), rng.integers(0, height)
        w, h = rng.integers(width // 12, width // 3), rng.integers(height // 10, height // 2)
        patch = image[y0 : y0 + h, x0 : x0 + w]
        patch += clutter * (rng.uniform(10, 140, 3) - patch)
    texture = rng.normal(0, 14 * clutter, (height // 4 + 1, width // 4 + 1, 3)).astype(np.float32)
    return np.clip(image + cv2.resize(texture, (width, height)), 0, 255).astype(np.uint8)


def ir_background(width: int, height: int, level: float, rng: np.random.Generator) -> np.ndarray:
    """Cool, smooth surroundings with the odd lukewarm object (a radiator, a screen)."""
    ramp = np.linspace(-1, 1, height, dtype=np.float32)[:, None] * rng.uniform(-12, 12)
    image = np.full((height, width), level, np.float32) + ramp
    for _ in range(rng.integers(0, 3)):
        x0, y0 = rng.integers(0, width), rng.integers(0, height)
        w, h = rng.integers(width // 12, width // 5), rng.integers(height // 12, height // 4)
        image[y0 : y0 + h, x0 : x0 + w] += rng.uniform(15, 45)
    image = cv2.GaussianBlur(image, (0, 0), max(width / 100, 0.5))
    return np.clip(image, 0, 255).astype(np.uint8)
