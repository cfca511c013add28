"""Real-format skeleton cases that the public samples lack but the full dataset has (shahroudy/NTURGB-D
issues #9 and #48): frames with 0 bodies, more than 2 bodies, NaN and all-zero joint lines.

`tests/data/skeletons/` holds two small hand-made files in the distributed format (CRLF), built from lines
of the real S001C001P001R001A001.skeleton:
- S001C002P001R001A001: 5 frames. Frame 1 has 0 bodies; frame 2 the actor (real frame 1); frame 3 three
  bodies: the actor (real frame 2) and two still noise bodies (the actor's frame-1 body moved 1.2 m right,
  +90 IR px, +260 RGB px, id …102; and 1.1 m left, −80, −230, id …103); frame 4 the actor (real frame 50)
  and noise body …102 again; frame 5 the actor (real frame 100) with joints 8 and 12 (the hands) NaN and
  untracked, and joint 22 an all-zero line.
- S001C002P001R002A001: 3 frames, none with a body.
"""

from __future__ import annotations

import math
import shutil
from pathlib import Path

import numpy as np
import pytest

from arctic_kd.cli import main
from arctic_kd.data.person import person_track
from arctic_kd.data.registration import fit_registration, joint_pairs
from arctic_kd.data.skeleton import read_skeleton, write_skeleton
from arctic_kd.data.video import write_video

DATA = Path(__file__).parent / "data" / "skeletons"
EDGES, EMPTY = DATA / "S001C002P001R001A001.skeleton", DATA / "S001C002P001R002A001.skeleton"
ACTOR, NOISE_A, NOISE_B = 72057594037931101, 72057594037931102, 72057594037931103


def joint_lines(path: Path) -> list[list[str]]:
    """Every 12-value joint line of a file, in order (independent of the reader: by token count)."""
    return [line.split() for line in path.read_text().splitlines() if len(line.split()) == 12]


def test_frames_with_zero_one_and_three_bodies_are_read_as_written():
    skeleton = read_skeleton(EDGES)
    assert [[b.body_id for b in bodies] for bodies in skeleton.frames] == [
        [],
        [ACTOR],
        [ACTOR, NOISE_A, NOISE_B],
        [ACTOR, NOISE_A],
        [ACTOR],
    ]
    assert read_skeleton(EMPTY).frames == [[], [], []]


def test_nan_and_all_zero_joints_stay_unmeasured_and_writing_gives_the_bytes_back(tmp_path):
    last = read_skeleton(EDGES).frames[-1][0]
    assert np.isnan(last.joints[[7, 11]]).all() and last.tracking[[7, 11]].tolist() == [0, 0]
    assert not last.joints[21].any() and last.tracking[21] == 0
    for path in (EDGES, EMPTY):
        write_skeleton(tmp_path / path.name, read_skeleton(path))
        assert (tmp_path / path.name).read_bytes() == path.read_bytes()  # "NaN" spelled as .NET does


def test_the_two_most_moving_bodies_are_kept_and_the_noise_bodies_come_last():
    """The actor moves (real frames 1, 2, 50, 100); noise body …102 stands still over two frames, …103 is
    seen once: the actor takes slot 0 in the frames it is in, …102 slot 1, …103 is dropped."""
    joints = read_skeleton(EDGES).to_array(max_bodies=2)
    lines = joint_lines(EDGES)  # frame 2: 25 actor lines; frame 3: actor, …102, …103; frame 4: actor, …102
    actor_frame_3 = np.array([[float(v) for v in line[:11]] for line in lines[25:50]], dtype=np.float32)
    noise_a = np.array([[float(v) for v in line[:11]] for line in lines[50:75]], dtype=np.float32)
    assert not joints[0].any()  # the empty frame
    assert np.array_equal(joints[2, 0], actor_frame_3) and np.array_equal(joints[2, 1], noise_a)
    assert np.array_equal(joints[3, 1], noise_a) and not joints[4, 1].any()


def test_pairs_boxes_and_registration_ignore_unmeasured_joints():
    skeleton = read_skeleton(EDGES)
    rgb, ir = joint_pairs(skeleton)
    tracked = [line for line in joint_lines(EDGES) if line[11] == "2"]
    assert len(rgb) == len(tracked) and np.isfinite(rgb).all() and np.isfinite(ir).all()
    track = person_track(EDGES)
    # the box spans the two kept bodies' depth joints (the actor and noise body …102), NaN and zeros aside
    kept = joint_lines(EDGES)[:50] + joint_lines(EDGES)[50:75] + joint_lines(EDGES)[100:]
    xs = [float(line[3]) for line in kept if not math.isnan(float(line[3])) and float(line[3]) != 0]
    assert track.boxes["ir"][0] == pytest.approx(min(xs)) and track.boxes["ir"][2] == pytest.approx(max(xs))
    # noise bodies are real things the sensor saw, so their colour and depth pixels obey the same map
    # (shifted 260 RGB px ≈ 90 IR px at the fitted scale 0.347): every measured pair agrees with the fit
    fit = fit_registration(skeleton)
    assert fit.inliers == fit.pairs == track.pairs == len(rgb) and track.residual < 0.5
    assert fit.affine[:, :2] == pytest.approx(np.array([[0.347, 0.0], [0.0, 0.347]]), abs=0.004)
    assert person_track(EMPTY).boxes is None and person_track(EMPTY).registration is None


def test_check_reports_a_file_without_bodies_and_borrows_its_registration(tmp_path, capsys):
    root = tmp_path / "ntu"
    (root / "nturgb+d_skeletons").mkdir(parents=True)
    for path in (EDGES, EMPTY):
        shutil.copy(path, root / "nturgb+d_skeletons")
        name = path.stem
        write_video(root / "nturgb+d_rgb" / f"{name}_rgb.avi", [np.zeros((1080, 1920, 3), np.uint8)] * 4)
        write_video(root / "nturgb+d_ir" / f"{name}_ir.avi", [np.zeros((424, 512), np.uint8)] * 4)
    command = ["check", str(root), "--protocol", "ntu60-xview", "--split", "train", "--workers", "0"]
    assert main([*command, "--size", "32", "--frames", "4"]) == 0
    out = capsys.readouterr().out
    assert "2 skeleton files parsed, 2 paired clips decoded" in out
    assert (
        "1 no tracked joint" in out and "registration: 1 fitted, 1 setup+camera, 0 camera, 0 nominal" in out
    )
    (line,) = [line for line in out.splitlines() if line.startswith("    S001C002P001R002A001")]
    assert line.endswith(
        "whole frames; registration setup+camera — "
        "S001C002P001R002A001.skeleton tracks no joint: whole frames"
    )
