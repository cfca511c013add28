"""The NTU RGB+D `.skeleton` text format (Kinect v2 bodies): read it, write it, and turn it into an array.

The writer produces the official layout field for field, so synthetic data exercises the same reader
as the real dataset; the reader turns every malformation into a `DataError` naming file and line.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from arctic_kd.errors import DataError

NUM_JOINTS = 25
JOINT_NAMES: tuple[str, ...] = (
    "spine_base",
    "spine_mid",
    "neck",
    "head",
    "left_shoulder",
    "left_elbow",
    "left_wrist",
    "left_hand",
    "right_shoulder",
    "right_elbow",
    "right_wrist",
    "right_hand",
    "left_hip",
    "left_knee",
    "left_ankle",
    "left_foot",
    "right_hip",
    "right_knee",
    "right_ankle",
    "right_foot",
    "spine_shoulder",
    "left_hand_tip",
    "left_thumb",
    "right_hand_tip",
    "right_thumb",
)
JOINT_VALUES = 11  # x y z depthX depthY colorX colorY orientW orientX orientY orientZ
_BODY_FIELDS = (
    "bodyID",
    "clippedEdges",
    "handLeftConfidence",
    "handLeftState",
    "handRightConfidence",
    "handRightState",
    "isRestricted",
    "leanX",
    "leanY",
    "trackingState",
)
_FLOAT_BODY_FIELDS = frozenset({"leanX", "leanY"})
_TRACKING_STATES = (0, 1, 2)
# The official files were written by .NET `float.ToString()`: 7 significant digits, `E` exponents.
_DOTNET_SPELLING = {"nan": "NaN", "inf": "Infinity", "-inf": "-Infinity"}
_NEWLINE = "\r\n"  # the distributed files are Windows text; the reader accepts either ending


@dataclass
class Body:
    """One tracked body in one frame, with every field the Kinect SDK recorded."""

    joints: np.ndarray  # (25, 11) float64: x y z depthX depthY colorX colorY orientW orientX orientY orientZ
    tracking: np.ndarray  # (25,) int: joint trackingState (0 not tracked, 1 inferred, 2 tracked)
    body_id: int = 0  # Kinect trackingId, a large uint64 in real files
    clipped_edges: int = 0
    hand_left_confidence: int = 0
    hand_left_state: int = 0
    hand_right_confidence: int = 0
    hand_right_state: int = 0
    is_restricted: int = 0
    lean: tuple[float, float] = (0.0, 0.0)
    tracking_state: int = 2


@dataclass
class Skeleton:
    """A whole `.skeleton` file: the bodies of every frame (0, 1, 2 or more; noise bodies occur)."""

    frames: list[list[Body]] = field(default_factory=list)

    def to_array(self, max_bodies: int = 2) -> np.ndarray:
        """(T, max_bodies, 25, 11) float32 joints of the most moving bodies, zeros where a body is absent.

        Bodies are followed over time by their tracking id and ranked by motion energy, the usual NTU
        convention: actors move, while noise bodies (furniture, reflections) barely do or live briefly.
        NaN joints stay NaN so that later steps can tell "not measured" from a coordinate.
        """
        if max_bodies < 1:
            raise ValueError(f"max_bodies must be at least 1, got {max_bodies}")
        ranked = sorted(self._tracks(), key=lambda track: (-_motion_energy(track), -len(track)))
        out = np.zeros((len(self.frames), max_bodies, NUM_JOINTS, JOINT_VALUES), dtype=np.float32)
        for slot, track in enumerate(ranked[:max_bodies]):
            for t, body in track:
                out[t, slot] = body.joints
        return out

    def _tracks(self) -> list[list[tuple[int, Body]]]:
        """Group bodies across frames by tracking id, in order of first appearance.

        When ids repeat within a frame (e.g. generated files that leave them 0), the n-th body with an
        id continues the n-th track of that id, i.e. tracking falls back to the position in the frame.
        """
        tracks: dict[tuple[int, int], list[tuple[int, Body]]] = {}
        for t, bodies in enumerate(self.frames):
            seen: Counter[int] = Counter()
            for body in bodies:
                key = (body.body_id, seen[body.body_id])
                seen[body.body_id] += 1
                tracks.setdefault(key, []).append((t, body))
        return list(tracks.values())


def _motion_energy(track: list[tuple[int, Body]]) -> float:
    """Sum over joints of the variance of the 3-D position over time, ignoring unmeasured joints.

    NaN and all-zero joint lines are left out per joint: counting them as positions would make a still
    body with a dropped frame look like the most active one.
    """
    xyz = np.stack([body.joints[:, :3] for _, body in track])  # (n, 25, 3)
    valid = np.isfinite(xyz).all(axis=-1) & (xyz != 0).any(axis=-1)  # (n, 25)
    counts = valid.sum(axis=0)
    weights = valid[..., None] / np.maximum(counts, 1)[:, None]  # mean over each joint's valid frames
    xyz = np.where(valid[..., None], xyz, 0.0)
    mean = (xyz * weights).sum(axis=0)
    var = (((xyz - mean) ** 2) * weights).sum(axis=0)
    return float(var[counts > 1].sum())


def write_skeleton(path: str | Path, skeleton: Skeleton) -> None:
    """Write `skeleton` in the official NTU text format (what `read_skeleton` and public loaders read)."""
    lines = [str(len(skeleton.frames))]
    for bodies in skeleton.frames:
        lines.append(str(len(bodies)))
        for body in bodies:
            lines.extend(_body_lines(body))
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes((_NEWLINE.join(lines) + _NEWLINE).encode("ascii"))


def _body_lines(body: Body) -> list[str]:
    joints = np.asarray(body.joints, dtype=np.float64)
    tracking = np.asarray(body.tracking)
    if joints.shape != (NUM_JOINTS, JOINT_VALUES) or tracking.shape != (NUM_JOINTS,):
        raise ValueError(
            f"a body needs joints of shape ({NUM_JOINTS}, {JOINT_VALUES}) and tracking of shape "
            f"({NUM_JOINTS},), got {joints.shape} and {tracking.shape}"
        )
    if body.body_id < 0:
        raise ValueError(f"body_id is an unsigned Kinect tracking id, got {body.body_id}")
    ints = (
        body.clipped_edges,
        body.hand_left_confidence,
        body.hand_left_state,
        body.hand_right_confidence,
        body.hand_right_state,
        body.is_restricted,
    )
    header = [
        str(int(body.body_id)),
        *(str(int(v)) for v in ints),
        *map(_g7, body.lean),
        str(int(body.tracking_state)),
    ]
    rows = [" ".join([*map(_g7, row), str(int(state))]) for row, state in zip(joints, tracking, strict=True)]
    return [" ".join(header), str(NUM_JOINTS), *rows]


def _g7(value: float) -> str:
    """Seven significant digits spelled as .NET does: compact, and exact to 0.001 px on colour pixels."""
    text = f"{float(value):.7g}"
    return _DOTNET_SPELLING.get(text, text.replace("e", "E"))


def read_skeleton(path: str | Path) -> Skeleton:
    """Parse an NTU `.skeleton` file; any deviation from the format raises `DataError` with its line."""
    path = Path(path)
    return _Parser(path, _read_lines(path)).skeleton()


def _read_lines(path: Path) -> list[str]:
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise DataError(path, f"cannot read skeleton file: {exc.strerror or exc}") from exc
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = data.count(b"\n", 0, exc.start) + 1
        raise DataError(path, "not a text skeleton file (undecodable bytes)", line=line) from exc
    lines = text.split("\n")  # not splitlines(): it also breaks at form feeds etc. and shifts line numbers
    while lines and not lines[-1].strip():  # trailing blank lines are harmless; "ends early" then points
        lines.pop()  # just past the last real line
    if not lines:
        raise DataError(path, "empty file, expected the frame count", line=1)
    return lines


class _Parser:
    """A cursor over the lines of one file; `pos` is the number of lines consumed (= last line's number)."""

    def __init__(self, path: Path, lines: list[str]) -> None:
        self.path = path
        self.lines = lines
        self.pos = 0

    def error(self, problem: str, line: int | None = None) -> DataError:
        return DataError(self.path, problem, line=self.pos if line is None else line)

    def skeleton(self) -> Skeleton:
        num_frames = self.count("the frame count")
        frames = []
        for t in range(num_frames):
            num_bodies = self.count(f"the body count of frame {t + 1} of {num_frames}")
            frames.append([self.body() for _ in range(num_bodies)])
        self.expect_end(num_frames)
        return Skeleton(frames)

    def tokens(self, what: str) -> list[str]:
        if self.pos >= len(self.lines):
            raise self.error(
                f"file ends early, expected {what} (the counts above promise more)", self.pos + 1
            )
        tokens = self.lines[self.pos].split()
        self.pos += 1
        if not tokens:
            raise self.error(f"expected {what}, found an empty line")
        return tokens

    def count(self, what: str) -> int:
        tokens = self.tokens(what)
        if len(tokens) != 1:
            raise self.error(f"expected {what} alone on the line, found {len(tokens)} values")
        value = self.integer(tokens[0], what)
        if value < 0:
            raise self.error(f"{what} must not be negative, found {value}")
        return value

    def integer(self, token: str, what: str) -> int:
        try:
            return int(token)
        except ValueError:
            raise self.error(f"{what} must be an integer, found {token!r}") from None

    def body(self) -> Body:
        tokens = self.tokens("a body line")
        if len(tokens) != len(_BODY_FIELDS):
            raise self.error(
                f"expected {len(_BODY_FIELDS)} values on a body line ({' '.join(_BODY_FIELDS)}), "
                f"found {len(tokens)}"
            )
        values = dict(zip(_BODY_FIELDS, map(self.body_value, _BODY_FIELDS, tokens), strict=True))
        if values["bodyID"] < 0:
            raise self.error(f"bodyID must not be negative, found {values['bodyID']}")
        num_joints = self.count("the joint count")
        if num_joints != NUM_JOINTS:
            raise self.error(f"expected a joint count of {NUM_JOINTS} (Kinect v2), found {num_joints}")
        joints, tracking = self.joints()
        return Body(
            joints=joints,
            tracking=tracking,
            body_id=values["bodyID"],
            clipped_edges=values["clippedEdges"],
            hand_left_confidence=values["handLeftConfidence"],
            hand_left_state=values["handLeftState"],
            hand_right_confidence=values["handRightConfidence"],
            hand_right_state=values["handRightState"],
            is_restricted=values["isRestricted"],
            lean=(values["leanX"], values["leanY"]),
            tracking_state=values["trackingState"],
        )

    def body_value(self, name: str, token: str) -> int | float:
        if name in _FLOAT_BODY_FIELDS:
            return self.number(token, f"{name} on the body line")
        return self.integer(token, f"{name} on the body line")

    def number(self, token: str, what: str) -> float:
        try:
            return float(token)
        except ValueError:
            raise self.error(f"{what} must be a number, found {token!r}") from None

    def joints(self) -> tuple[np.ndarray, np.ndarray]:
        """The 25 joint lines in one NumPy conversion; the slow per-token pass runs only to name an error."""
        first = self.pos
        block = self.lines[first : first + NUM_JOINTS]
        rows = [line.split() for line in block]
        for i, row in enumerate(rows):
            if len(row) != JOINT_VALUES + 1:
                raise self.error(
                    f"expected {JOINT_VALUES + 1} numbers on a joint line, found {len(row)}", first + i + 1
                )
        if len(rows) < NUM_JOINTS:
            raise self.error(
                f"file ends early, expected {NUM_JOINTS} joint lines, found {len(rows)}",
                first + len(rows) + 1,
            )
        self.pos += NUM_JOINTS
        try:
            values = np.array(rows, dtype=np.float64)
        except ValueError:
            i, token = next((i, t) for i, row in enumerate(rows) for t in row if not _is_number(t))
            raise self.error(
                f"joint line has a value that is not a number: {token!r}", first + i + 1
            ) from None
        states = values[:, JOINT_VALUES]
        bad = ~np.isin(states, _TRACKING_STATES)
        if bad.any():
            i = int(np.argmax(bad))
            raise self.error(
                f"joint trackingState must be 0, 1 or 2, found {rows[i][JOINT_VALUES]!r}", first + i + 1
            )
        return values[:, :JOINT_VALUES].copy(), states.astype(np.int64)

    def expect_end(self, num_frames: int) -> None:
        for i in range(self.pos, len(self.lines)):
            if self.lines[i].strip():
                raise self.error(
                    f"unexpected content after the last of the {num_frames} frames the file announces", i + 1
                )


def _is_number(token: str) -> bool:
    try:
        float(token)
    except ValueError:
        return False
    return True
