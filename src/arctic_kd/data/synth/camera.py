"""Kinect-v2-like camera pairs: a wide 16:9 colour camera beside a narrower 512:424 infrared camera.

The two share an orientation but not a centre (about 5 cm apart) nor a field of view, so RGB and IR
pixels are related by an (approximately affine) map, as on the real sensor.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

RGB_FOV_DEG = 84.1  # horizontal field of view of the Kinect v2 colour camera
IR_FOV_DEG = 70.6  # and of its depth/IR camera
RGB_OFFSET_M = 0.052  # colour camera centre, to the right of the IR camera


@dataclass(frozen=True)
class Camera:
    """A pinhole camera; `axes` rows are its right, up and viewing directions in world coordinates."""

    centre: np.ndarray
    axes: np.ndarray
    width: int
    height: int
    fov_deg: float

    @property
    def focal(self) -> float:
        return self.width / 2 / np.tan(np.radians(self.fov_deg) / 2)

    def to_camera(self, points: np.ndarray) -> np.ndarray:
        """World points (..., 3) → camera coordinates (x right, y up, z depth), metres."""
        return (points - self.centre) @ self.axes.T

    def project(self, points: np.ndarray) -> np.ndarray:
        """World points (..., 3) → pixel coordinates (..., 2), x right and y down from the top-left corner."""
        cam = self.to_camera(points)
        z = np.maximum(cam[..., 2:3], 1e-6)
        scale = self.focal / z
        return np.concatenate(
            [self.width / 2 + cam[..., 0:1] * scale, self.height / 2 - cam[..., 1:2] * scale], axis=-1
        )


def look_at(eye: np.ndarray, target: np.ndarray) -> np.ndarray:
    forward = (target - eye) / np.linalg.norm(target - eye)
    right = np.cross(forward, [0.0, 1.0, 0.0])
    right /= np.linalg.norm(right)
    return np.stack([right, np.cross(right, forward), forward])


def kinect_pair(
    azimuth_deg: float,
    distance: float,
    height: float,
    rgb_size: tuple[int, int],
    ir_size: tuple[int, int],
    target_height: float = 0.9,
) -> tuple[Camera, Camera]:
    """The (RGB, IR) cameras of one sensor placed on a circle around the origin, looking at the figure."""
    azimuth = np.radians(azimuth_deg)
    eye = np.array([distance * np.sin(azimuth), height, distance * np.cos(azimuth)])
    axes = look_at(eye, np.array([0.0, target_height, 0.0]))
    ir = Camera(eye, axes, ir_size[0], ir_size[1], IR_FOV_DEG)
    rgb = Camera(eye + axes[0] * RGB_OFFSET_M, axes, rgb_size[0], rgb_size[1], RGB_FOV_DEG)
    return rgb, ir
