"""The real NTU RGB+D skeleton files and PKU-MMD split and label files in `../shared/reference/real-samples/`
(byte for byte as the datasets ship them): read against an independent parse, written back byte for byte,
registered, split and screened as training will. Skipped, with the reason, without the shared folder."""

from __future__ import annotations

import math
import shutil
from pathlib import Path

import numpy as np
import pytest

from arctic_kd.cli import main
from arctic_kd.config import PkuMmdConfig
from arctic_kd.data.pkufiles import read_split
from arctic_kd.data.pkummd import index_pkummd
from arctic_kd.data.registration import (
    fallback_registrations,
    fit_registration,
    fov_affine,
    joint_pairs,
    reprojection_errors,
)
from arctic_kd.data.skeleton import read_skeleton, write_skeleton
from arctic_kd.data.video import write_video
from tests.test_protocols import reference_dir

SKELETONS = {  # name -> (frames, line ending), from real-samples/README.md
    "S001C001P001R001A001": (103, b"\n"),
    "S002C001P003R001A003": (100, b"\r\n"),
}
NTU_RGB, NTU_IR = (1920, 1080), (512, 424)


def real(*parts: str) -> Path:
    return reference_dir() / "real-samples" / Path(*parts)


def skeleton_path(name: str) -> Path:
    return real("ntu", "nturgb+d_skeletons", f"{name}.skeleton")


def independent_parse(path: Path) -> list[list[tuple[list[str], list[list[str]]]]]:
    """Frames → bodies → (body line tokens, 25 joint line tokens), by counting lines: no shared code."""
    lines = path.read_bytes().decode("ascii").splitlines()
    frames, i = [], 1
    for _ in range(int(lines[0])):
        bodies, count = [], int(lines[i])
        i += 1
        for _ in range(count):
            header, joints = lines[i].split(), [lines[i + 2 + j].split() for j in range(int(lines[i + 1]))]
            bodies.append((header, joints))
            i += 2 + len(joints)
        frames.append(bodies)
    assert i == len(lines)
    return frames


@pytest.mark.parametrize("name", SKELETONS)
def test_every_field_of_a_real_skeleton_file_matches_an_independent_parse(name):
    path = skeleton_path(name)
    frames, ending = SKELETONS[name]
    raw = path.read_bytes()
    assert raw.endswith(ending) and (b"\r\n" in raw) == (ending == b"\r\n")
    expected, skeleton = independent_parse(path), read_skeleton(path)
    assert len(skeleton.frames) == len(expected) == frames
    for bodies, wanted in zip(skeleton.frames, expected, strict=True):
        assert len(bodies) == len(wanted) == 1
        for body, (header, joints) in zip(bodies, wanted, strict=True):
            assert [
                body.body_id,
                body.clipped_edges,
                body.hand_left_confidence,
                body.hand_left_state,
                body.hand_right_confidence,
                body.hand_right_state,
                body.is_restricted,
            ] == [int(v) for v in header[:7]]
            assert body.lean == (float(header[7]), float(header[8])) and body.tracking_state == int(header[9])
            assert body.joints.tolist() == [[float(v) for v in joint[:11]] for joint in joints]
            assert body.tracking.tolist() == [int(joint[11]) for joint in joints]


@pytest.mark.parametrize("name", SKELETONS)
def test_writing_a_real_skeleton_file_gives_its_bytes_back(name, tmp_path):
    """The writer speaks the distributed CRLF: the CRLF file comes back byte for byte, the LF copy (as a
    repository stored it) equal but for its line endings."""
    original = skeleton_path(name).read_bytes()
    write_skeleton(tmp_path / "copy.skeleton", read_skeleton(skeleton_path(name)))
    written = (tmp_path / "copy.skeleton").read_bytes()
    if SKELETONS[name][1] == b"\r\n":
        assert written == original
    else:
        assert written == original.replace(b"\n", b"\r\n")


def test_the_registration_fit_on_real_joint_pairs():
    """Fits agree with their own joints to 0.1–0.2 IR px; the nominal map misses by ~14 px; a map borrowed
    from the same camera in the other setup by ~2 px (BENCHMARKS.md, fallback registration)."""
    fits, pairs = [], []
    for name in SKELETONS:
        skeleton = read_skeleton(skeleton_path(name))
        fit = fit_registration(skeleton)
        rgb, ir = joint_pairs(skeleton)
        assert fit.pairs == len(rgb) > 2000 and fit.inliers == fit.pairs
        assert fit.residual < 0.25
        # a colour pixel spans about a third of an IR pixel, the axes are not rotated
        assert fit.affine[:, :2] == pytest.approx(np.array([[0.345, 0.0], [0.0, 0.347]]), abs=0.004)
        assert np.median(reprojection_errors(fov_affine(NTU_RGB, NTU_IR), rgb, ir)) > 12
        fits.append(fit.affine)
        pairs.append((rgb, ir))
    views = [(1, 1), (2, 1)]
    for i, (rgb, ir) in enumerate(pairs):
        others = [None if j == i else fit for j, fit in enumerate(fits)]
        borrowed, source = fallback_registrations(views, others)[i]
        assert source == "camera" and np.array_equal(borrowed, fits[1 - i])
        assert 1.5 < np.median(reprojection_errors(borrowed, rgb, ir)) < 2.5


def test_the_real_split_files_give_the_published_video_counts():
    xsub, xview = (
        read_split(real("pkummd", "Split", f"{name}.txt")) for name in ("cross-subject", "cross-view")
    )
    assert [len(v) for v in xsub] == [944, 132] and [len(v) for v in xview] == [717, 359]
    assert {int(name[:4]) for name in xsub[1]} == set(range(291, 335))
    assert all(name.endswith("-M") for name in xview[1])
    assert not any(name.endswith("-M") for name in xview[0])


def test_the_real_reversed_row_is_listed_and_dropped_and_the_layout_found():
    index = index_pkummd(real("pkummd"))
    assert index.layout.labels == "Label/Train_Label_PKU_final/{video}.txt"
    assert any(
        "using 'Label/Train_Label_PKU_final/{video}.txt' (6 of 1076 recordings)" in n for n in index.notes
    )
    clips = {name: index.clips(name) for name in index.complete(())}
    assert {name: len(c) for name, c in clips.items()} == {
        "0002-L": 20,
        "0002-M": 20,
        "0002-R": 20,
        "0043-L": 21,  # 22 rows less the reversed one
        "0043-M": 22,
        "0089-L": 25,
    }
    labels = real("pkummd", "Label", "Train_Label_PKU_final")
    assert [str(p) for p in index.row_problems()] == [
        f"{labels / '0043-L.txt'}:21: 1,4925,4036,2: end 4036 before start 4925 (dropped)",
        f"{labels / '0089-L.txt'}:1: 23,0,23,1: frame 0, but rows count from 1 "
        "(data.pkummd.first_frame) (kept)",
    ]
    assert "L021" not in " ".join(c.sample_id for c in clips["0043-L"])
    # the row's own views: the same bow is 55 and 36 frames where the file is right
    assert index.clips("0043-M")[20].end - index.clips("0043-M")[20].start < 100


def test_keeping_suspicious_rows_swaps_the_reversed_one_as_before():
    layout = PkuMmdConfig(labels="Label/Train_Label_PKU_final/{video}.txt", suspicious_rows="keep")
    index = index_pkummd(real("pkummd"), layout)
    (bow,) = [c for c in index.clips("0043-L") if c.sample_id == "F043V001C001L021"]
    assert (bow.start, bow.end) == (4035, 4925)  # 890 frames, over four other actions' rows
    actions = {p.line: p.action for p in index.row_problems() if p.path.name == "0043-L.txt"}
    assert actions == {17: "kept", 18: "kept", 19: "kept", 20: "kept", 21: "swapped"}  # it covers 17–20
    assert not any("labels" in note for note in index.notes)  # the configured pattern found them


def test_min_confidence_leaves_out_the_slight_rows():
    """Rows with confidence 1 in these files: one in each 0002 view, two in 0043-L/M and 0089-L."""
    strong = index_pkummd(real("pkummd"), PkuMmdConfig(min_confidence=2))
    assert sum(len(strong.clips(n)) for n in strong.complete(())) == 128 - 9
    assert "9 under data.pkummd.min_confidence 2 left out" in strong.row_summary()


@pytest.fixture
def real_ntu_root(tmp_path) -> Path:
    """The real skeletons with small placeholder videos at Kinect v2 sizes, and a third sample of camera 1
    that has no skeleton file (its registration is borrowed from its setup and camera)."""
    root = tmp_path / "ntu"
    shutil.copytree(real("ntu", "nturgb+d_skeletons"), root / "nturgb+d_skeletons")
    for name in [*SKELETONS, "S001C001P001R002A001"]:
        write_video(root / "nturgb+d_rgb" / f"{name}_rgb.avi", [np.zeros((*NTU_RGB[::-1], 3), np.uint8)] * 4)
        write_video(root / "nturgb+d_ir" / f"{name}_ir.avi", [np.zeros(NTU_IR[::-1], np.uint8)] * 4)
    return root


def test_check_on_the_real_skeletons_lists_each_sample_s_crop_and_registration(real_ntu_root, capsys):
    command = ["check", str(real_ntu_root), "--protocol", "ntu60-xview", "--workers", "0", "--list-all"]
    assert main([*command, "--size", "32", "--frames", "4"]) == 0
    out = capsys.readouterr().out
    assert "ntu60-xview test: 2 skeleton files parsed, 3 paired clips decoded" in out
    assert (
        "person crops (margin 0.15) of 3 sample(s): 1 no skeleton, 0 no tracked joint, 0 box >25% off-frame, "
        "0 box <10% of frame height, 0 box larger than frame, 0 residual >2 IR px; registration: 2 fitted, "
        "1 setup+camera, 0 camera, 0 nominal, median residual 0.15 IR px"
    ) in out
    lines = {line.split(":")[0].strip(): line for line in out.splitlines() if line.startswith("    S0")}
    assert "IR box" in lines["S001C001P001R001A001"] and "in 512×424" in lines["S001C001P001R001A001"]
    assert "RGB box" in lines["S001C001P001R001A001"] and "in 1920×1080" in lines["S001C001P001R001A001"]
    assert "registration fitted, residual 0.11 IR px over 2208 joint pairs" in lines["S001C001P001R001A001"]
    assert "registration fitted, residual 0.19 IR px" in lines["S002C001P003R001A003"]
    assert lines["S001C001P001R002A001"].endswith(
        "whole frames; registration setup+camera — no skeleton file: whole frames"
    )


def test_check_on_a_pkummd_folder_with_0043_L_lists_the_reversed_row(capsys):
    assert main(["check", str(real("pkummd")), "--dataset", "pkummd", "--workers", "0"]) == 1  # no videos
    out = capsys.readouterr().out
    assert "1076 recordings, 128 labelled clips, 51 classes" in out
    assert "2 suspicious label row(s): 1 dropped, 1 kept (data.pkummd.suspicious_rows: drop)" in out
    assert "0043-L.txt:21: 1,4925,4036,2: end 4036 before start 4925 (dropped)" in out
    assert "note: data.pkummd.rgb: no file for any recording; tried 'Data/RGB_VIDEO/{video}.avi'" in out


def test_a_box_measured_against_its_frame_is_the_box_the_crop_uses(real_ntu_root):
    """The IR box of the real file is the extent of its depth joints (independent: min/max over lines)."""
    from arctic_kd.data.person import person_boxes

    values = [
        [float(v) for v in joint[3:5]]
        for frame in independent_parse(skeleton_path("S001C001P001R001A001"))
        for _, joints in frame
        for joint in joints
    ]
    finite = [v for v in values if all(math.isfinite(x) for x in v) and any(v)]
    x0, y0 = (min(v[k] for v in finite) for k in (0, 1))
    x1, y1 = (max(v[k] for v in finite) for k in (0, 1))
    assert person_boxes(real_ntu_root / "nturgb+d_skeletons" / "S001C001P001R001A001.skeleton")[
        "ir"
    ] == pytest.approx((x0, y0, x1, y1))


def test_without_the_shared_folder_these_tests_skip_with_the_reason(tmp_path, monkeypatch):
    monkeypatch.setenv("ARCTIC_REFERENCE", str(tmp_path / "absent"))
    with pytest.raises(pytest.skip.Exception, match=r"reference data not found at .*absent"):
        real("pkummd")
