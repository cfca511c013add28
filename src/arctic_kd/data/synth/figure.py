"""An articulated Kinect-25 figure: pose parameters over time → 3-D joint positions.

Limbs are posed by targets (hands relative to shoulders, ankles relative to hips) solved with two-bone
inverse kinematics, which makes actions short to write down ("hand to mouth") and valid for every body
proportion. Body frame: +x the figure's left, +y up, +z the way it faces; metres; ground at y = 0.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

# Kinect v2 joints, 0-based (the file format's order).
SPINE_BASE, SPINE_MID, NECK, HEAD = 0, 1, 2, 3
L_SHOULDER, L_ELBOW, L_WRIST, L_HAND = 4, 5, 6, 7
R_SHOULDER, R_ELBOW, R_WRIST, R_HAND = 8, 9, 10, 11
L_HIP, L_KNEE, L_ANKLE, L_FOOT = 12, 13, 14, 15
R_HIP, R_KNEE, R_ANKLE, R_FOOT = 16, 17, 18, 19
SPINE_SHOULDER, L_HAND_TIP, L_THUMB, R_HAND_TIP, R_THUMB = 20, 21, 22, 23, 24

REST_POSE: dict[str, tuple[float, ...]] = {
    "root": (0.0, 0.0, 0.0),  # pelvis offset, in body heights
    "bend": (0.0,),  # torso pitch forward, radians
    "lean": (0.0,),  # torso roll towards the figure's left, radians
    "twist": (0.0,),  # torso yaw, radians
    "nod": (0.0,),  # head pitch forward, radians
    "l_hand": (0.12, -0.95, 0.08),  # wrist target from the shoulder, torso frame, in arm lengths
    "r_hand": (-0.12, -0.95, 0.08),
    "l_foot": (0.02, -0.99, 0.0),  # ankle target from the hip, body frame, in leg lengths
    "r_foot": (-0.02, -0.99, 0.0),
}


@dataclass(frozen=True)
class BodyShape:
    """One performer's proportions (fractions of height follow common anthropometric tables)."""

    height: float = 1.7
    arm: float = 1.0  # limb-length factors
    leg: float = 1.0
    shoulders: float = 1.0  # width factor
    girth: float = 1.0  # limb-thickness factor

    @property
    def upper_arm(self) -> float:
        return 0.17 * self.height * self.arm

    @property
    def forearm(self) -> float:
        return 0.15 * self.height * self.arm

    @property
    def thigh(self) -> float:
        return 0.245 * self.height * self.leg

    @property
    def shin(self) -> float:
        return 0.235 * self.height * self.leg

    @property
    def pelvis_height(self) -> float:
        return self.thigh + self.shin + 0.04 * self.height


def _normalise(v: np.ndarray) -> np.ndarray:
    return v / np.maximum(np.linalg.norm(v, axis=-1, keepdims=True), 1e-9)


def _rotation(bend: np.ndarray, lean: np.ndarray, twist: np.ndarray) -> np.ndarray:
    """Per-frame torso rotation (T, 3, 3): yaw, then roll, then forward pitch."""
    cb, sb, cl, sl, ct, st = (
        np.cos(bend),
        np.sin(bend),
        np.cos(lean),
        np.sin(lean),
        np.cos(twist),
        np.sin(twist),
    )
    one, zero = np.ones_like(bend), np.zeros_like(bend)
    pitch = np.stack([one, zero, zero, zero, cb, -sb, zero, sb, cb], -1).reshape(-1, 3, 3)
    roll = np.stack([cl, sl, zero, -sl, cl, zero, zero, zero, one], -1).reshape(-1, 3, 3)
    yaw = np.stack([ct, zero, st, zero, one, zero, -st, zero, ct], -1).reshape(-1, 3, 3)
    return yaw @ roll @ pitch


def _two_bone(root: np.ndarray, target: np.ndarray, l1: float, l2: float, pole: np.ndarray):
    """Elbow/knee and end positions reaching for `target`, bending towards `pole` (all (T, 3))."""
    reach = target - root
    dist = np.clip(np.linalg.norm(reach, axis=-1, keepdims=True), abs(l1 - l2) + 1e-3, l1 + l2 - 1e-3)
    direction = _normalise(reach)
    cos_a = (l1**2 + dist**2 - l2**2) / (2 * l1 * dist)
    side = pole - np.sum(pole * direction, -1, keepdims=True) * direction
    side = _normalise(side)
    mid = root + l1 * (cos_a * direction + np.sqrt(1 - cos_a**2) * side)
    return mid, root + dist * direction


def pose_joints(pose: dict[str, np.ndarray], shape: BodyShape) -> np.ndarray:
    """Joint positions (T, 25, 3) in the body frame for per-frame pose parameters (each (T, k))."""
    h = shape.height
    frames = len(pose["root"])
    joints = np.zeros((frames, 25, 3))
    rot = _rotation(pose["bend"][:, 0], pose["lean"][:, 0], pose["twist"][:, 0])
    up, left, forward = rot[:, :, 1], rot[:, :, 0], rot[:, :, 2]

    pelvis = np.array([0.0, shape.pelvis_height, 0.0]) + pose["root"] * h
    joints[:, SPINE_BASE] = pelvis
    joints[:, SPINE_MID] = pelvis + up * 0.15 * h
    joints[:, SPINE_SHOULDER] = pelvis + up * 0.30 * h
    head_dir = _normalise(up + forward * np.tan(pose["nod"][:, :1]))
    joints[:, NECK] = joints[:, SPINE_SHOULDER] + up * 0.055 * h
    joints[:, HEAD] = joints[:, NECK] + head_dir * 0.085 * h

    half_width = 0.115 * h * shape.shoulders
    for side, shoulder, elbow, wrist, hand, tip, thumb, key in (
        (1.0, L_SHOULDER, L_ELBOW, L_WRIST, L_HAND, L_HAND_TIP, L_THUMB, "l_hand"),
        (-1.0, R_SHOULDER, R_ELBOW, R_WRIST, R_HAND, R_HAND_TIP, R_THUMB, "r_hand"),
    ):
        joints[:, shoulder] = joints[:, SPINE_SHOULDER] + side * left * half_width - up * 0.02 * h
        target = joints[:, shoulder] + np.einsum("tij,tj->ti", rot, pose[key]) * (
            shape.upper_arm + shape.forearm
        )
        pole = -forward - up * 0.5 + side * left * 0.6  # elbows point back, down and out
        joints[:, elbow], joints[:, wrist] = _two_bone(
            joints[:, shoulder], target, shape.upper_arm, shape.forearm, pole
        )
        along = _normalise(joints[:, wrist] - joints[:, elbow])
        joints[:, hand] = joints[:, wrist] + along * 0.045 * h
        joints[:, tip] = joints[:, hand] + along * 0.04 * h
        joints[:, thumb] = (
            joints[:, wrist] + along * 0.03 * h + _normalise(np.cross(along, up)) * side * 0.03 * h
        )

    yaw_only = _rotation(np.zeros(frames), np.zeros(frames), pose["twist"][:, 0] * 0.3)
    body_forward = yaw_only[:, :, 2]
    for side, hip, knee, ankle, foot, key in (
        (1.0, L_HIP, L_KNEE, L_ANKLE, L_FOOT, "l_foot"),
        (-1.0, R_HIP, R_KNEE, R_ANKLE, R_FOOT, "r_foot"),
    ):
        joints[:, hip] = pelvis + yaw_only[:, :, 0] * side * 0.06 * h
        target = joints[:, hip] + np.einsum("tij,tj->ti", yaw_only, pose[key]) * (shape.thigh + shape.shin)
        target[:, 1] = np.maximum(target[:, 1], 0.04 * h)  # feet stay above the floor
        joints[:, knee], joints[:, ankle] = _two_bone(
            joints[:, hip], target, shape.thigh, shape.shin, body_forward
        )
        joints[:, foot] = joints[:, ankle] + body_forward * 0.08 * h - np.array([0, 0.03 * h, 0])
    return joints
