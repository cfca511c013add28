"""The synthetic action catalogue: each class is a few key poses over a phase in [0, 1].

Key poses name only the parameters they change (see `figure.REST_POSE`); phases 0 and 1 are the rest
pose, so every action starts and ends standing. Pairs of "object" classes share their key poses exactly
and differ only by a small held object — vivid in RGB, faint in IR — the case where infrared-only
recognition suffers and the RGB teacher has something to teach.

The default dataset takes the first `DEFAULT_NUM_CLASSES`: six whole-body motions, then three object
pairs, so that half of the classes can only be told apart by the object. (Two object-less hand-near-head
classes, wipe mouth and touch ear, differ by a few pixels at the demo's 64² and were the small RGB
teacher's main confusion, so the phone pair comes after the default twelve.) Repeated motions
(waving, clapping, punching, hopping) alternate at most every eighth of the action, so that 8 frames
spread over a clip still see the repetition rather than an aliased jumble of it.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from arctic_kd.data.synth.figure import REST_POSE

Pose = dict[str, tuple[float, ...]]


@dataclass(frozen=True)
class Action:
    name: str
    keys: tuple[tuple[float, Pose], ...]  # (phase, partial pose), phases increasing inside (0, 1)
    held_object: str | None = None  # "cup", "phone", "ball" or "book"


def _hold(start: float, end: float, pose: Pose) -> tuple[tuple[float, Pose], ...]:
    return ((start, pose), (end, pose))


def _alternate(
    start: float, end: float, poses: tuple[Pose, Pose], count: int
) -> tuple[tuple[float, Pose], ...]:
    phases = np.linspace(start, end, count)
    return tuple((float(p), poses[i % 2]) for i, p in enumerate(phases))


_HAND_TO_MOUTH = _hold(0.35, 0.7, {"r_hand": (0.3, 0.22, 0.38), "nod": (-0.1,)})
# at the ear the elbow is out and up and the torso leans into the hand: told apart from "hand to mouth"
_HAND_TO_EAR = _hold(0.3, 0.75, {"r_hand": (0.1, 0.52, -0.02), "lean": (-0.12,), "nod": (0.05,)})
_THROW = (
    (0.3, {"r_hand": (-0.35, 0.55, -0.45), "twist": (-0.4,), "l_hand": (0.3, -0.1, 0.6)}),
    (0.5, {"r_hand": (-0.1, 0.45, -0.3), "twist": (-0.45,), "l_hand": (0.3, -0.1, 0.6)}),
    (0.62, {"r_hand": (0.05, 0.2, 0.95), "twist": (0.3,), "bend": (0.2,)}),
)
_HOLD_IN_FRONT = _hold(
    0.25, 0.8, {"r_hand": (0.25, -0.35, 0.75), "l_hand": (-0.25, -0.35, 0.75), "nod": (0.35,), "bend": (0.1,)}
)

ACTIONS: tuple[Action, ...] = (
    Action("cheer up", _hold(0.35, 0.7, {"r_hand": (-0.2, 0.97, 0.1), "l_hand": (0.2, 0.97, 0.1)})),
    Action(
        "kicking",
        (
            (0.35, {"r_foot": (-0.02, -0.85, -0.35)}),
            (0.5, {"r_foot": (-0.02, -0.55, 0.8)}),
            (0.6, {"r_foot": (-0.02, -0.6, 0.7)}),
        ),
    ),
    Action(
        "squat down",
        _hold(
            0.35,
            0.7,
            {
                "root": (0.0, -0.2, -0.05),
                "l_foot": (0.04, -0.55, 0.12),
                "r_foot": (-0.04, -0.55, 0.12),
                "bend": (0.45,),
                "r_hand": (0.0, -0.2, 0.9),
                "l_hand": (0.0, -0.2, 0.9),
            },
        ),
    ),
    Action(
        "jump up",
        (
            (
                0.3,
                {
                    "root": (0.0, -0.08, 0.0),
                    "l_foot": (0.02, -0.8, 0.05),
                    "r_foot": (-0.02, -0.8, 0.05),
                    "bend": (0.3,),
                    "r_hand": (-0.1, -0.8, -0.4),
                    "l_hand": (0.1, -0.8, -0.4),
                },
            ),
            (
                0.5,
                {
                    "root": (0.0, 0.14, 0.0),
                    "l_foot": (0.02, -0.9, -0.05),
                    "r_foot": (-0.02, -0.9, -0.05),
                    "r_hand": (-0.2, 0.9, 0.2),
                    "l_hand": (0.2, 0.9, 0.2),
                },
            ),
            (
                0.68,
                {
                    "root": (0.0, -0.06, 0.0),
                    "l_foot": (0.02, -0.82, 0.05),
                    "r_foot": (-0.02, -0.82, 0.05),
                    "bend": (0.2,),
                },
            ),
        ),
    ),
    Action("bowing", _hold(0.35, 0.65, {"bend": (0.9,), "nod": (0.2,)})),
    Action(
        "step aside",
        (
            (0.35, {"root": (0.12, 0.0, 0.0), "l_foot": (0.25, -0.9, 0.0), "lean": (-0.1,)}),
            (0.65, {"root": (0.12, 0.0, 0.0), "l_foot": (0.25, -0.97, 0.0), "r_foot": (0.15, -0.97, 0.0)}),
        ),
    ),
    Action("drink water", _HAND_TO_MOUTH, held_object="cup"),
    Action("wipe mouth", _HAND_TO_MOUTH),
    Action("throw", _THROW, held_object="ball"),
    Action("swing arm", _THROW),
    Action("read a book", _HOLD_IN_FRONT, held_object="book"),
    Action("look at hands", _HOLD_IN_FRONT),
    Action("make a phone call", _HAND_TO_EAR, held_object="phone"),
    Action("touch ear", _HAND_TO_EAR),
    Action(
        "wave hand", _alternate(0.25, 0.8, ({"r_hand": (-0.6, 0.65, 0.2)}, {"r_hand": (-0.25, 0.7, 0.2)}), 4)
    ),
    Action(
        "clapping",
        _alternate(
            0.2,
            0.8,
            (
                {"r_hand": (0.35, -0.2, 0.75), "l_hand": (-0.35, -0.2, 0.75)},
                {"r_hand": (0.05, -0.2, 0.75), "l_hand": (-0.05, -0.2, 0.75)},
            ),
            5,
        ),
    ),
    Action(
        "punching",
        _alternate(
            0.25,
            0.75,
            (
                {"r_hand": (0.15, -0.3, 0.45), "l_hand": (-0.15, -0.3, 0.45)},
                {"r_hand": (0.3, 0.05, 0.97), "l_hand": (-0.15, -0.3, 0.45), "twist": (0.25,)},
            ),
            4,
        ),
    ),
    Action(
        "touch head",
        _hold(0.3, 0.75, {"r_hand": (0.25, 0.58, 0.1), "l_hand": (-0.25, 0.58, 0.1), "nod": (0.2,)}),
    ),
    Action(
        "arm circles",
        tuple(
            (float(p), {"r_hand": (-0.95 * np.cos(a), 0.95 * np.sin(a), 0.15)})
            for p, a in zip(np.linspace(0.2, 0.85, 9), np.linspace(-1.3, 2 * np.pi - 1.3, 9), strict=True)
        ),
    ),
    Action(
        "hopping",
        (
            (0.2, {"l_foot": (0.02, -0.6, -0.45)}),
            *_alternate(
                0.3,
                0.8,
                (
                    {"root": (0.0, 0.05, 0.0), "l_foot": (0.02, -0.6, -0.45)},
                    {"root": (0.0, -0.02, 0.0), "l_foot": (0.02, -0.6, -0.45), "r_foot": (-0.02, -0.9, 0.0)},
                ),
                4,
            ),
        ),
    ),
)

DEFAULT_NUM_CLASSES = 12  # up to "look at hands": six whole-body motions and three object pairs


def action_pose(action: Action, phase: np.ndarray, amplitude: float = 1.0) -> dict[str, np.ndarray]:
    """Pose parameters (each (T, k)) at the given phases, eased between key poses.

    `amplitude` scales every departure from the rest pose: performers differ in how far they reach.
    """
    knots = np.array([0.0, *(p for p, _ in action.keys), 1.0])
    segment = np.clip(np.searchsorted(knots, phase, side="right") - 1, 0, len(knots) - 2)
    local = (phase - knots[segment]) / np.maximum(knots[segment + 1] - knots[segment], 1e-9)
    eased = (0.5 - 0.5 * np.cos(np.pi * np.clip(local, 0.0, 1.0)))[:, None]
    pose = {}
    for key, rest in REST_POSE.items():
        rest_value = np.array(rest)
        values = np.array([rest_value, *(np.array(p.get(key, rest)) for _, p in action.keys), rest_value])
        values = rest_value + amplitude * (values - rest_value)
        pose[key] = values[segment] + eased * (values[segment + 1] - values[segment])
    return pose
