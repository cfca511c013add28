"""The NTU `.skeleton` reader and writer: round trip, the official text layout, and malformed files."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from arctic_kd.data.skeleton import JOINT_NAMES, NUM_JOINTS, Body, Skeleton, read_skeleton, write_skeleton
from arctic_kd.errors import DataError

# One real joint line and body line quoted in the dataset's documentation.
REAL_BODY_LINE = "72057594037931101 0 1 1 1 1 0 0.02764709 0.05745083 2"
REAL_JOINT_LINE = (
    "0.2181153 0.1725972 3.785547 277.419 191.8218 1036.233 519.1677 "
    "-0.2059419 0.05349901 0.9692109 -0.1239193 2"
)


def make_body(rng: np.random.Generator, body_id: int = 0, **fields) -> Body:
    """Values with at most 7 significant digits, which the official format stores exactly."""
    joints = np.round(rng.uniform(-1000, 1000, size=(NUM_JOINTS, 11)), 3)
    return Body(joints=joints, tracking=rng.integers(0, 3, size=NUM_JOINTS), body_id=body_id, **fields)


def still_body(position: float, body_id: int) -> Body:
    joints = np.full((NUM_JOINTS, 11), position)
    return Body(joints=joints, tracking=np.full(NUM_JOINTS, 2), body_id=body_id)


def assert_same_body(read: Body, written: Body) -> None:
    np.testing.assert_array_equal(read.joints, written.joints)  # NaN == NaN here
    np.testing.assert_array_equal(read.tracking, written.tracking)
    for name in (
        "body_id",
        "clipped_edges",
        "hand_left_confidence",
        "hand_left_state",
        "hand_right_confidence",
        "hand_right_state",
        "is_restricted",
        "lean",
        "tracking_state",
    ):
        assert getattr(read, name) == getattr(written, name), name


def real_file_lines(num_frames: int = 2) -> list[str]:
    lines = [str(num_frames)]
    for _ in range(num_frames):
        lines += ["1", REAL_BODY_LINE, "25", *[REAL_JOINT_LINE] * NUM_JOINTS]
    return lines


def write_lines(path: Path, lines: list[str], ending: str = "\r\n") -> Path:
    path.write_text(ending.join(lines) + ending, newline="")
    return path


def test_joint_names_follow_kinect_v2_order():
    assert len(JOINT_NAMES) == NUM_JOINTS == len(set(JOINT_NAMES))
    assert JOINT_NAMES[:5] == ("spine_base", "spine_mid", "neck", "head", "left_shoulder")
    assert JOINT_NAMES[20] == "spine_shoulder"
    assert JOINT_NAMES[-1] == "right_thumb"


def test_round_trip_keeps_every_field(tmp_path):
    rng = np.random.default_rng(0)
    nan_body = make_body(rng, body_id=72057594037931101, clipped_edges=3, lean=(0.02764709, -0.1))
    nan_body.joints[4] = np.nan
    zero_body = make_body(rng, body_id=2**64 - 1, hand_left_confidence=1, hand_left_state=2, is_restricted=1)
    zero_body.joints[7] = 0.0
    zero_body.tracking[7] = 0
    frames = [
        [],
        [nan_body],
        [make_body(rng, 7, hand_right_confidence=1, hand_right_state=3, tracking_state=1), zero_body],
        [make_body(rng, 1), make_body(rng, 2), make_body(rng, 3)],
        [],
    ]
    path = tmp_path / "S001C001P001R001A001.skeleton"
    write_skeleton(path, Skeleton(frames))

    read = read_skeleton(path)

    assert [len(bodies) for bodies in read.frames] == [0, 1, 2, 3, 0]
    for read_bodies, written_bodies in zip(read.frames, frames, strict=True):
        for read_body, written_body in zip(read_bodies, written_bodies, strict=True):
            assert_same_body(read_body, written_body)
    assert np.isnan(read.frames[1][0].joints[4]).all()
    assert read.frames[1][0].joints.dtype == np.float64


def test_writer_produces_the_official_layout(tmp_path):
    joints = np.array([float(v) for v in REAL_JOINT_LINE.split()[:11]] * NUM_JOINTS).reshape(NUM_JOINTS, 11)
    body = Body(
        joints=joints,
        tracking=np.full(NUM_JOINTS, 2),
        body_id=72057594037931101,
        hand_left_confidence=1,
        hand_left_state=1,
        hand_right_confidence=1,
        hand_right_state=1,
        lean=(0.02764709, 0.05745083),
    )
    path = tmp_path / "s.skeleton"
    write_skeleton(path, Skeleton([[body], [body]]))

    assert path.read_bytes() == write_lines(tmp_path / "real.skeleton", real_file_lines()).read_bytes()


def test_writer_spells_special_values_like_the_official_files(tmp_path):
    body = still_body(0.0, body_id=5)
    body.joints[0, :3] = [np.nan, 1.5e-05, np.inf]
    path = tmp_path / "s.skeleton"
    write_skeleton(path, Skeleton([[body]]))

    joint_line = path.read_text().splitlines()[4]
    assert joint_line.split()[:4] == ["NaN", "1.5E-05", "Infinity", "0"]
    read = read_skeleton(path).frames[0][0].joints[0, :3]
    assert np.isnan(read[0]) and read[1] == 1.5e-05 and read[2] == np.inf


def test_writer_keeps_pixel_precision_for_arbitrary_floats(tmp_path):
    body = still_body(0.0, body_id=1)
    body.joints[:, 5] = np.random.default_rng(1).uniform(0, 1920, NUM_JOINTS)
    write_skeleton(tmp_path / "s.skeleton", Skeleton([[body]]))

    read = read_skeleton(tmp_path / "s.skeleton").frames[0][0]
    np.testing.assert_allclose(read.joints[:, 5], body.joints[:, 5], rtol=0, atol=1e-3)


def test_writer_rejects_a_body_of_the_wrong_shape(tmp_path):
    body = Body(joints=np.zeros((20, 11)), tracking=np.zeros(20, dtype=int))
    with pytest.raises(ValueError, match=r"\(25, 11\)"):
        write_skeleton(tmp_path / "s.skeleton", Skeleton([[body]]))


def test_reads_real_lines_with_either_line_ending_and_trailing_blank_lines(tmp_path):
    lines = [*real_file_lines(), "", "   "]
    crlf = read_skeleton(write_lines(tmp_path / "crlf.skeleton", lines))
    lf = read_skeleton(write_lines(tmp_path / "lf.skeleton", lines, ending="\n"))

    for skeleton in (crlf, lf):
        body = skeleton.frames[1][0]
        assert body.body_id == 72057594037931101
        assert body.lean == (0.02764709, 0.05745083)
        assert (body.hand_left_confidence, body.hand_right_state, body.tracking_state) == (1, 1, 2)
        assert body.joints[24, 5] == 1036.233 and body.tracking[24] == 2
    np.testing.assert_array_equal(crlf.to_array(), lf.to_array())


def test_nan_and_all_zero_joint_lines_parse(tmp_path):
    lines = real_file_lines(1)
    lines[4] = " ".join(["NaN"] * 11 + ["0"])
    lines[5] = " ".join(["0"] * 12)
    body = read_skeleton(write_lines(tmp_path / "s.skeleton", lines)).frames[0][0]

    assert np.isnan(body.joints[0]).all() and body.tracking[0] == 0
    assert (body.joints[1] == 0).all() and body.tracking[1] == 0
    assert body.joints[2, 0] == 0.2181153


# (how to break the 2-frame file of real lines, expected line number, words of the problem)
# Line map: 1 frame count; frame 1: 2 body count, 3 body line, 4 joint count, 5-29 joints;
# frame 2: 30 body count, 31 body line, 32 joint count, 33-57 joints.
MALFORMED = {
    "blank file": (lambda lines: ["", "  "], 1, "empty file"),
    "truncated in the joints": (lambda lines: lines[:40], 41, "ends early"),
    "truncated before a body": (lambda lines: lines[:29], 30, "ends early"),
    "fewer frames than counted": (lambda lines: ["3", *lines[1:]], 58, "ends early"),
    "non-numeric frame count": (lambda lines: ["two", *lines[1:]], 1, "'two'"),
    "negative body count": (lambda lines: [*lines[:29], "-1", *lines[30:]], 30, "negative"),
    "two numbers for a count": (lambda lines: ["2 5", *lines[1:]], 1, "found 2 values"),
    "blank line inside": (lambda lines: [*lines[:2], "", *lines[2:]], 3, "empty line"),
    "short body line": (
        lambda lines: [*lines[:2], REAL_BODY_LINE.rsplit(" ", 1)[0], *lines[3:]],
        3,
        "found 9",
    ),
    "float body id": (lambda lines: [*lines[:30], "1.5" + REAL_BODY_LINE[17:], *lines[31:]], 31, "bodyID"),
    "non-numeric lean": (
        lambda lines: [*lines[:2], REAL_BODY_LINE.replace("0.02764709", "x"), *lines[3:]],
        3,
        "leanX",
    ),
    "bad joint count": (lambda lines: [*lines[:3], "20", *lines[4:]], 4, "joint count of 25"),
    "joint line with 11 numbers": (
        lambda lines: [*lines[:10], REAL_JOINT_LINE.rsplit(" ", 1)[0], *lines[11:]],
        11,
        "expected 12 numbers on a joint line, found 11",
    ),
    "non-numeric joint value": (
        lambda lines: [*lines[:45], REAL_JOINT_LINE.replace("277.419", "27a7.419"), *lines[46:]],
        46,
        "'27a7.419'",
    ),
    "bad tracking state": (
        lambda lines: [*lines[:20], REAL_JOINT_LINE[:-1] + "7", *lines[21:]],
        21,
        "trackingState must be 0, 1 or 2",
    ),
    "trailing garbage": (lambda lines: [*lines, "", "1"], 59, "after the last"),
}


@pytest.mark.parametrize("case", MALFORMED)
def test_malformed_files_name_file_and_line(tmp_path, case):
    corrupt, line, words = MALFORMED[case]
    path = write_lines(tmp_path / "bad.skeleton", corrupt(real_file_lines()))

    with pytest.raises(DataError) as info:
        read_skeleton(path)

    assert info.value.path == str(path)
    assert info.value.line == line
    assert words in info.value.problem
    assert str(info.value).startswith(f"{path}:{line}: ")


def test_missing_empty_and_binary_files(tmp_path):
    with pytest.raises(DataError, match="cannot read") as info:
        read_skeleton(tmp_path / "absent.skeleton")
    assert info.value.path == str(tmp_path / "absent.skeleton")

    empty = tmp_path / "empty.skeleton"
    empty.write_bytes(b"")
    with pytest.raises(DataError, match="empty file") as info:
        read_skeleton(empty)
    assert info.value.line == 1

    binary = tmp_path / "binary.skeleton"
    binary.write_bytes(b"1\n1\n\xff\xfe\n")
    with pytest.raises(DataError, match="not a text") as info:
        read_skeleton(binary)
    assert info.value.line == 3


def test_to_array_keeps_the_most_moving_bodies_in_energy_order():
    rng = np.random.default_rng(2)
    num_frames = 6
    frames = []
    for t in range(num_frames):
        actor = still_body(float(t) * 0.5, body_id=11)  # moves 0.5 m per frame
        helper = still_body(float(t) * 0.1, body_id=22)  # moves less
        noise = still_body(3.0 + 0.001 * rng.standard_normal(), body_id=33)  # a jittering still object
        frames.append([noise, helper, actor] if t % 2 else [actor, noise, helper])
    frames[3] = [b for b in frames[3] if b.body_id != 22]  # the helper is lost for a frame

    array = Skeleton(frames).to_array(max_bodies=2)

    assert array.shape == (num_frames, 2, NUM_JOINTS, 11) and array.dtype == np.float32
    np.testing.assert_allclose(array[:, 0, 0, 0], 0.5 * np.arange(num_frames))
    expected_helper = 0.1 * np.arange(num_frames)
    expected_helper[3] = 0.0
    np.testing.assert_allclose(array[:, 1, 0, 0], expected_helper, rtol=1e-6)
    assert (array[3, 1] == 0).all()


def test_to_array_ignores_dropped_joints_when_measuring_motion():
    still = [still_body(1.0, body_id=1) for _ in range(4)]
    still[2] = still_body(0.0, body_id=1)  # an all-zero frame is "not measured", not a jump
    still[1].joints[:3] = np.nan
    moving = [still_body(0.01 * t, body_id=2) for t in range(1, 5)]

    array = Skeleton([[s, m] for s, m in zip(still, moving, strict=True)]).to_array(max_bodies=1)

    np.testing.assert_allclose(array[:, 0, 5, 0], [0.01, 0.02, 0.03, 0.04], rtol=1e-6)


def test_to_array_tracks_by_position_when_ids_repeat_and_pads_missing_bodies():
    frames = [[still_body(0.0 + t, body_id=0), still_body(5.0, body_id=0)] for t in range(3)]
    frames.append([])

    array = Skeleton(frames).to_array(max_bodies=3)

    np.testing.assert_array_equal(array[:3, 0, 0, 0], [0.0, 1.0, 2.0])
    np.testing.assert_array_equal(array[:3, 1, 0, 0], [5.0, 5.0, 5.0])
    assert (array[:, 2] == 0).all() and (array[3] == 0).all()
    assert Skeleton([]).to_array().shape == (0, 2, NUM_JOINTS, 11)
    with pytest.raises(ValueError, match="max_bodies"):
        Skeleton(frames).to_array(max_bodies=0)
