"""PKU-MMD phase 1 on the synthetic PKU layout: label rows become the right clips, split files parse, bad
label and split lines are errors naming file and line, IR may be a folder of PNG frames."""

from __future__ import annotations

import dataclasses
import json
import shutil

import cv2
import numpy as np
import pytest

from arctic_kd.cli import main
from arctic_kd.config import DataConfig, PkuMmdConfig
from arctic_kd.data.dataset import PairedClipDataset
from arctic_kd.data.frames import FrameFolder, open_frames
from arctic_kd.data.pkufiles import read_labels, read_split
from arctic_kd.data.pkummd import index_pkummd, official_class_names
from arctic_kd.data.synth import SynthConfig
from arctic_kd.data.synth.dataset import render_take
from arctic_kd.data.synth.pkummd import PNG_IR_PATTERN, VIEW_OF_CAMERA, generate, recordings
from arctic_kd.data.validation import carve_validation
from arctic_kd.data.video import VideoReader
from arctic_kd.errors import DataError

# 3 subjects (the third tests cross-subject) × 1 recording × 3 views, 3 actions per recording.
PKU = SynthConfig(
    num_classes=3,
    performers=3,
    setups=2,
    replications=1,
    min_frames=10,
    max_frames=12,
    rgb_size=(96, 54),
    ir_size=(64, 53),
)
SAME, DIFFERENT = (
    15,
    22,
)  # mean grey-level difference on the figure: codec noise (≤ 9) vs. the empty room (≥ 29)


@pytest.fixture(scope="module")
def pku_root(tmp_path_factory):
    return generate(tmp_path_factory.mktemp("pku") / "avi", PKU, workers=1, progress=False)


# The same knobs on the command line, for a smaller dataset: 2 classes, 2 subjects.
PNG_OPTIONS = ["--num-classes", "2", "--performers", "2", "--setups", "2", "--replications", "1"]
PNG_OPTIONS += ["--min-frames", "10", "--max-frames", "12", "--rgb-size", "96x54", "--ir-size", "64x53"]


@pytest.fixture(scope="module")
def pku_png_root(tmp_path_factory):
    """Rendered through the CLI, with IR as PNG folders, in 2 worker processes."""
    root = tmp_path_factory.mktemp("pku") / "png"
    synth = ["synth", str(root), "--layout", "pkummd", "--ir-frames", "png", "--workers", "2", *PNG_OPTIONS]
    assert main(synth) == 0
    return root, dataclasses.replace(PKU, num_classes=2, performers=2)


def test_synth_pkummd_keeps_a_finished_dataset_and_needs_two_subjects(pku_png_root, tmp_path, capsys):
    root, _ = pku_png_root
    assert main(["synth", str(root), "--layout", "pkummd", "--ir-frames", "png", *PNG_OPTIONS]) == 0
    assert "already holds this synthetic PKU-MMD dataset (6 videos, 12 instances)" in capsys.readouterr().out
    assert sorted(p.name for p in (root / "Data" / "IR_VIDEO").iterdir())[:3] == [
        "0002-L",
        "0002-M",
        "0002-R",
    ]
    assert main(["synth", str(tmp_path / "one"), "--layout", "pkummd", "--performers", "1"]) == 2
    assert "at least 2 performers" in capsys.readouterr().err


def figure_difference(frame: np.ndarray, rendered: np.ndarray, mask: np.ndarray) -> float:
    return float(np.abs(frame.astype(float) - rendered.reshape(frame.shape))[mask].mean())


def test_every_label_row_is_one_clip_showing_exactly_its_take(pku_root):
    index = index_pkummd(pku_root)
    assert index.class_names == PKU.class_names
    checked = 0
    for recording in recordings(PKU):
        setup = PKU.setup_of(recording.performer)
        for action in recording.actions:
            views = render_take(PKU, recording.take(action, setup), with_masks=True)
            for out in views:
                video = recording.video(out.name.camera)
                (clip,) = [c for c in index.clips(video) if c.label == action - 1]
                assert clip.end - clip.start == len(out.rgb)
                view_number = {"L": 1, "M": 2, "R": 3}[VIEW_OF_CAMERA[out.name.camera]]
                assert clip.sample_id.startswith(f"F{recording.number:03d}V{view_number:03d}C{action:03d}L")
                for path, frames, masks in (
                    (clip.rgb, out.rgb, out.rgb_masks),
                    (clip.ir, out.ir, out.ir_masks),
                ):
                    with VideoReader(path) as reader:
                        decoded = reader.read(range(clip.start - 1, clip.end + 1), gray=path == clip.ir)
                    first, last = decoded[1], decoded[-2]
                    assert figure_difference(first, frames[0], masks[0]) < SAME
                    assert figure_difference(last, frames[-1], masks[-1]) < SAME
                    assert figure_difference(decoded[0], frames[0], masks[0]) > DIFFERENT, "idle gap before"
                    assert figure_difference(decoded[-1], frames[-1], masks[-1]) > DIFFERENT, "idle gap after"
                checked += 1
    all_clips = [c for name in index.recordings for c in index.clips(name)]
    assert checked == len(all_clips) == 3 * 3 * 3


def test_the_synthetic_label_files_list_every_row_start_first_and_none_is_suspicious(pku_root):
    rows = [
        line.split(",")
        for path in (pku_root / "Train_Label_PKU_final").glob("*.txt")
        for line in path.read_text().splitlines()
    ]
    assert len(rows) == 27 and all(int(start) < int(end) for _, start, end, _ in rows)
    index = index_pkummd(pku_root)
    assert sum(len(index.clips(name)) for name in index.recordings) == 27
    assert index.row_problems() == [] and index.notes == []


def test_split_files_with_and_without_a_trailing_comma(pku_root):
    xsub, xview = (pku_root / "Split" / f"{name}.txt" for name in ("cross-subject", "cross-view"))
    assert xsub.read_text().splitlines()[1].endswith(",") and not xview.read_text().splitlines()[1].endswith(
        ","
    )
    train, test = read_split(xsub)
    assert sorted(test) == ["0004-L", "0004-M", "0004-R"] and len(train) == 6
    train, test = read_split(xview)
    assert sorted(test) == ["0002-M", "0003-M", "0004-M"] and all(not n.endswith("-M") for n in train)
    index = index_pkummd(pku_root)
    train_clips, test_clips = index.split("pkummd-xview", ("rgb", "ir"))
    assert len(train_clips) == 18 and len(test_clips) == 9
    assert {c.sample_id[4:8] for c in test_clips} == {"V002"}


def test_a_split_file_in_the_download_s_spelling_and_line_endings(tmp_path):
    path = tmp_path / "cross-view.txt"
    path.write_bytes(b"Training videos:\r\n0002-L, 0002-R, \r\nValidataion videos:\r\n0002-M\r\n\r\n")
    assert read_split(path) == (["0002-L", "0002-R"], ["0002-M"])


@pytest.mark.parametrize(
    ("text", "line", "problem"),
    [
        ("Train videos:\n0002-L\nValidation videos:\n0002-M\n", 1, "expected 'Training videos:'"),
        ("Training videos:\n0002-L, 2-L\nValidation videos:\n0002-M\n", 2, "'2-L' is not a recording"),
        ("Training videos:\n0002-L,,0002-R\nValidation videos:\n0002-M\n", 2, "'' is not a recording"),
        ("Training videos:\n0002-L\nTraining videos:\n0002-M\n", 3, "expected 'Validation videos:'"),
        ("Training videos:\n0002-L\nValidation videos:\n0002-M, 0002-L\n", 4, "both train and test"),
        ("Training videos:\n0002-L\nValidation videos:\n", None, "expected 4 lines"),
    ],
)
def test_malformed_split_lines_name_file_and_line(tmp_path, text, line, problem):
    path = tmp_path / "cross-subject.txt"
    path.write_text(text)
    with pytest.raises(DataError, match=problem) as caught:
        read_split(path)
    assert caught.value.path == str(path) and caught.value.line == line
    assert str(caught.value).startswith(f"{path}:{line}: " if line else f"{path}: ")


@pytest.mark.parametrize(
    ("bad", "problem"),
    [
        ("3,40,60", "expected 'label,start,end,confidence'"),
        ("3,40,60,1,7", "expected 'label,start,end,confidence'"),
        ("3,forty,60,1", "expected four integers"),
        ("52,40,60,1", "label 52 is outside 1–51"),
        ("0,40,60,1", "label 0 is outside 1–51"),
        ("3,-4,60,1", "negative frame number"),
    ],
)
def test_malformed_label_lines_name_file_and_line(tmp_path, bad, problem):
    path = tmp_path / "0002-L.txt"
    path.write_text(f"1,10,30,1\n\n{bad}\n")  # the blank line still counts
    with pytest.raises(DataError, match=problem) as caught:
        read_labels(path)
    assert str(caught.value).startswith(f"{path}:3: ")


def test_label_rows_to_frame_ranges(tmp_path):
    """1-based inclusive rows (the default) → 0-based end-exclusive ranges; a reversed row is dropped, or
    swapped as before with `suspicious_rows: keep`."""
    (tmp_path / "Split").mkdir()
    (tmp_path / "Split" / "cross-view.txt").write_text(
        "Training videos:\n0007-L\nValidation videos:\n0007-M,\n"
    )
    (tmp_path / "labels").mkdir()
    for view in "LM":
        (tmp_path / "labels" / f"0007-{view}.txt").write_text("5,10,20,1\n51,40,30,2,\n")
    layout = PkuMmdConfig(labels="labels/{video}.txt")
    index = index_pkummd(tmp_path, layout)
    clips = index.clips("0007-L")
    assert [(c.sample_id, c.label, c.start, c.end) for c in clips] == [("F007V001C005L001", 4, 9, 20)]
    assert [str(p) for p in index.row_problems()] == [
        f"{tmp_path / 'labels' / '0007-L.txt'}:2: 51,40,30,2: end 30 before start 40 (dropped)"
    ]
    kept = index_pkummd(tmp_path, dataclasses.replace(layout, suspicious_rows="keep")).clips("0007-L")
    assert [(c.sample_id, c.label, c.start, c.end) for c in kept] == [
        ("F007V001C005L001", 4, 9, 20),
        ("F007V001C051L002", 50, 29, 40),
    ]
    assert clips[0].rgb is None and clips[0].ir is None  # no video files: the recording is incomplete
    zero_based = index_pkummd(
        tmp_path, PkuMmdConfig(labels="labels/{video}.txt", first_frame=0, suspicious_rows="keep")
    )
    assert [(c.start, c.end) for c in zero_based.clips("0007-L")] == [(10, 21), (30, 41)]
    assert index_pkummd(tmp_path, layout).class_names == official_class_names()
    assert official_class_names()[0] == "bow" and len(official_class_names()) == 51
    with pytest.raises(DataError, match="needs its split file"):
        index_pkummd(tmp_path, layout).split("pkummd-xsub", ("rgb", "ir"))
    with pytest.raises(
        DataError, match=r"data.pkummd.rgb: 'RGB/\{name\}.avi': the only placeholder is \{video\}"
    ):
        index_pkummd(tmp_path, PkuMmdConfig(rgb="RGB/{name}.avi"))


def test_ir_as_png_folders_reads_the_rendered_frames_exactly(pku_png_root):
    root, config = pku_png_root
    index = index_pkummd(root, PkuMmdConfig(ir=PNG_IR_PATTERN))
    recording = recordings(config)[0]
    action = recording.actions[-1]
    out = render_take(config, recording.take(action, config.setup_of(recording.performer)))[0]
    (clip,) = [c for c in index.clips(recording.video(1)) if c.label == action - 1]
    with open_frames(clip.ir) as frames, VideoReader(clip.rgb) as rgb:
        assert isinstance(frames, FrameFolder) and frames.num_frames == rgb.num_frames
        assert (frames.width, frames.height) == config.ir_size
        decoded = frames.read(range(clip.start, clip.end), gray=True)[..., 0]
        np.testing.assert_array_equal(decoded, np.stack(out.ir))  # PNG is lossless
    dataset = PairedClipDataset([clip], num_frames=4, rgb_size=(16, 16), ir_size=(16, 16))
    item = dataset[0]
    assert item["ir"].shape == (1, 4, 16, 16) and item["rgb"].shape == (3, 4, 16, 16)


def test_frame_folders_sort_numerically_and_keep_the_high_byte_of_16_bit_images(tmp_path):
    for number in (10, 2, 1):
        cv2.imwrite(str(tmp_path / f"frame{number}.png"), np.full((4, 6), number * 1000, np.uint16))
    (tmp_path / "notes.txt").write_text("not a frame")
    with FrameFolder(tmp_path) as folder:
        assert folder.num_frames == 3 and (folder.width, folder.height) == (6, 4)
        frames = folder.read([0, 1, 2, 0], gray=True)
        assert frames.shape == (4, 4, 6, 1)
        assert frames[:, 0, 0, 0].tolist() == [1000 >> 8, 2000 >> 8, 10000 >> 8, 1000 >> 8]
        assert folder.read([1]).shape == (1, 4, 6, 3)
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(DataError, match="no frame images"):
        FrameFolder(empty)


def test_training_steps_on_pkummd_with_png_ir_and_the_frame_cache(pku_png_root, tmp_path):
    root, _ = pku_png_root
    out = tmp_path / "run"
    code = main(
        [
            "train",
            "--modality",
            "ir",
            "--out",
            str(out),
            *("--set", "data.dataset=pkummd", "--set", f"data.root={root}"),
            *("--set", "data.protocol=pkummd-xview", "--set", f"data.pkummd.ir={PNG_IR_PATTERN}"),
            *("--set", "data.cache=true", "--set", "data.cache_side=32"),
            *("--set", "optim.epochs=1", "--set", "data.ir_size=32", "--set", "data.num_frames=4"),
            *("--set", "data.batch_size=4", "--set", "data.workers=0", "--set", "data.val.enabled=true"),
            *("--set", "student.width=0.125", "--set", "student.depth=10"),
        ]
    )
    assert code == 0
    (line,) = [json.loads(x) for x in (out / "metrics.jsonl").read_text().splitlines()]
    assert line["train_ce"] > 0 and 0 <= line["test_top1"] <= 100
    assert line["val_samples"] > 0 and 0 <= line["val_top1"] <= 100  # a stratified share of training


def test_check_reports_a_recording_without_its_label_file(pku_root, tmp_path, capsys):
    root = tmp_path / "pku"
    shutil.copytree(pku_root, root)
    (root / "Train_Label_PKU_final" / "0003-R.txt").unlink()
    code = main(
        ["check", str(root), "--dataset", "pkummd", "--size", "32", "--frames", "4", "--workers", "0"]
    )
    out = capsys.readouterr().out
    assert code == 1
    assert "9 recordings, 24 labelled clips, 3 classes" in out
    assert "0003-R: no labels" in out
    assert "pkummd-xsub  train     15  test      9" in out
    assert "pkummd-xsub test: 9 paired clips decoded" in out and "no bad samples" in out


def test_a_malformed_label_file_stops_check_with_one_line(pku_root, tmp_path, capsys):
    root = tmp_path / "pku"
    shutil.copytree(pku_root, root)
    labels = root / "Train_Label_PKU_final" / "0002-M.txt"
    labels.write_text(labels.read_text() + "7;1;2;1\n")
    assert main(["check", str(root), "--dataset", "pkummd", "--workers", "0"]) == 2
    err = capsys.readouterr().err
    assert (
        err.strip()
        == f"arctic check: error: {labels}:4: expected 'label,start,end,confidence', found '7;1;2;1'"
    )


def test_prepare_stores_pkummd_clips_whose_ir_is_a_png_folder(pku_png_root, tmp_path):
    root, _ = pku_png_root
    out = tmp_path / "store"
    options = ["--set", "data.dataset=pkummd", "--set", "data.protocol=pkummd-xview"]
    options += ["--set", f"data.pkummd.ir={PNG_IR_PATTERN}"]
    code = main(["prepare", str(root), "--out", str(out), "--side", "32", "--workers", "0", *options])
    assert code == 0
    report = json.loads((out / "report.json").read_text())
    assert report["bad"] == [] and report["samples"] == len(list(out.glob("samples/*.done"))) == 12
    ir_folder = next(p for p in root.rglob("*") if p.is_dir() and any(p.glob("*.png")))
    with FrameFolder(ir_folder) as folder:  # prepare's streaming pass gives what read gives
        streamed = np.stack(list(folder.frames(1, 4, gray=True)))
        np.testing.assert_array_equal(streamed, folder.read([1, 2, 3], gray=True))


def test_validation_on_pkummd_cross_subject_holds_out_whole_takes(pku_root):
    """PKU-MMD names no subjects: validation holds out whole takes (every view of one recording number),
    drawn from the training recordings only."""
    config = DataConfig(dataset="pkummd", root=str(pku_root), protocol="pkummd-xsub")
    train, test = index_pkummd(pku_root).split("pkummd-xsub", ("rgb", "ir"))
    kept, held = carve_validation(train, config)
    assert {s.subject for s in kept}.isdisjoint({s.subject for s in held}) and held
    assert sorted(s.sample_id for s in kept + held) == sorted(s.sample_id for s in train)
    assert {s.sample_id[:4] for s in held} == {s.subject for s in held}  # F<number>: all its views
    assert len({s.sample_id[4:8] for s in held}) == 3  # V001, V002, V003
    assert not {s.sample_id for s in held} & {s.sample_id for s in test}
