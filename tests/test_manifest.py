"""CSV manifests: a good file parses (paths relative to it, labels, ranges, splits), every malformed row is an
error naming its line, and training and `arctic check` run on a manifest of the tiny synthetic dataset."""

from __future__ import annotations

import csv
import json
import os
from pathlib import Path

import pytest

from arctic_kd.cli import main
from arctic_kd.data.manifest import read_manifest
from arctic_kd.data.ntu import index_ntu
from arctic_kd.errors import DataError

from .conftest import TINY_SYNTH

HEADER = "rgb_path,ir_path,label,start,end,subject,camera,split"
TRAIN_PERFORMERS = (1, 2)  # as NTU60 cross-subject


def write_manifest(folder: Path, rows: list[list], header: str = HEADER) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "manifest.csv"
    with path.open("w", newline="") as file:
        file.write(header + "\n")
        csv.writer(file).writerows(rows)
    return path


def tiny_rows(dataset: Path, folder: Path) -> list[list]:
    """One row per tiny synthetic sample: class names as labels, the first half of every other video."""
    names = index_ntu(dataset).class_names
    rows = []
    for number, sample in enumerate(index_ntu(dataset).complete()):
        name = sample.name
        start, end = ("0", "5") if number % 2 else ("", "")
        split = "train" if name.performer in TRAIN_PERFORMERS else "test"
        rgb, ir = (os.path.relpath(p, folder) for p in (sample.rgb, sample.ir))
        rows.append([rgb, ir, names[name.label], start, end, f"P{name.performer:03d}", name.camera, split])
    return rows


@pytest.fixture
def manifest(tiny_dataset, tmp_path) -> Path:
    folder = tmp_path / "lists"
    return write_manifest(folder, tiny_rows(tiny_dataset, folder))


def test_a_good_manifest_parses(manifest, tiny_dataset):
    parsed = read_manifest(manifest)
    assert parsed.class_names == sorted(TINY_SYNTH.class_names)  # ["cheer up", "kicking"]
    assert len(parsed.rows) == len(TINY_SYNTH.sample_names())
    samples = index_ntu(tiny_dataset).complete()
    for row, ntu in zip(parsed.rows, samples, strict=True):
        assert row.sample.rgb.resolve() == ntu.rgb.resolve() and row.sample.ir.resolve() == ntu.ir.resolve()
        assert parsed.class_names[row.sample.label] == TINY_SYNTH.class_names[ntu.name.label]
        assert row.subject == f"P{ntu.name.performer:03d}" and row.camera == str(ntu.name.camera)
    first, second = parsed.rows[:2]
    assert (first.sample.start, first.sample.end) == (0, None)
    assert (second.sample.start, second.sample.end) == (0, 5)
    assert first.sample.sample_id == "manifest.csv:2" and first.line == 2
    assert not parsed.missing()


def test_splits_from_the_split_column_or_from_subject_lists(manifest):
    parsed = read_manifest(manifest)
    by_column = parsed.split("manifest-split", ("rgb", "ir"))
    by_subject = parsed.split("manifest-xsub", ("rgb", "ir"), ("P001", "P002"))
    assert [len(side) for side in by_column] == [12, 6]
    assert by_column == by_subject
    with pytest.raises(DataError, match="needs the list of training subjects"):
        parsed.split("manifest-xsub", ("rgb",))
    with pytest.raises(DataError, match="not a manifest protocol"):
        parsed.split("ntu60-xsub", ("rgb",))


def test_rows_without_a_split_or_subject_fail_the_protocol_that_needs_it(tmp_path):
    path = write_manifest(tmp_path, [["a.avi", "a_ir.avi", "x", "", "", "", "", "train"]] * 2)
    assert len(read_manifest(path).split("manifest-split", ("rgb", "ir"))[0]) == 2
    with pytest.raises(DataError, match="needs the subject of every row") as caught:
        read_manifest(path).split("manifest-xsub", ("rgb",), ("P1",))
    assert caught.value.line == 2


def test_an_empty_path_means_the_modality_is_missing(tmp_path):
    path = write_manifest(
        tmp_path,
        [["a.avi", "", "x", "", "", "", "", "train"], ["b.avi", "b.avi", "y", "", "", "", "", "test"]],
    )
    parsed = read_manifest(path)
    assert parsed.missing() == {"manifest.csv:2": ["ir"]}
    assert parsed.rows[0].sample.ir is None and parsed.rows[0].sample.rgb == tmp_path / "a.avi"
    assert len(parsed.split("manifest-split", ("rgb",))[0]) == 1
    assert parsed.split("manifest-split", ("ir",))[0] == []


def test_integer_labels_and_class_name_files(tmp_path):
    rows = [["a.avi", "a.avi", label, "", "", "", "", "test"] for label in ("2", "0", "2")]
    assert read_manifest(write_manifest(tmp_path, rows)).class_names == ["0", "1", "2"]
    names = tmp_path / "classes.txt"
    names.write_text("walk\nrun\nsit\njump\n")
    parsed = read_manifest(write_manifest(tmp_path, [*rows, ["b.avi", "b.avi", "jump"] + [""] * 5]), names)
    assert parsed.class_names == ["walk", "run", "sit", "jump"]
    assert [r.sample.label for r in parsed.rows] == [2, 0, 2, 3]
    minimal = write_manifest(
        tmp_path / "minimal", [["sit", "b.avi", "a.avi"]], header="label,ir_path,rgb_path"
    )
    (row,) = read_manifest(minimal).rows
    assert row.sample.rgb.name == "a.avi" and row.sample.ir.name == "b.avi" and row.split == ""


GOOD = ["a.avi", "a_ir.avi", "walk", "", "", "", "", ""]


@pytest.mark.parametrize(
    ("bad", "problem"),
    [
        (["a.avi", "a_ir.avi", "walk"], "expected 8 fields like the header, found 3"),
        (["a.avi", "a_ir.avi", "", "", "", "", "", ""], "the label is empty"),
        (["", "", "walk", "", "", "", "", ""], "neither rgb_path nor ir_path"),
        (["a.avi", "a_ir.avi", "walk", "x", "", "", "", ""], "start 'x' is not a frame number"),
        (["a.avi", "a_ir.avi", "walk", "-3", "", "", "", ""], "start '-3' is not a frame number"),
        (["a.avi", "a_ir.avi", "walk", "10", "10", "", "", ""], "end 10 is not after start 10"),
        (["a.avi", "a_ir.avi", "walk", "", "0", "", "", ""], "end 0 is not after start 0"),
        (["a.avi", "a_ir.avi", "walk", "", "", "", "", "val"], "split 'val' is not train or test"),
    ],
)
def test_each_malformed_row_names_its_line(tmp_path, bad, problem):
    path = write_manifest(tmp_path, [GOOD, GOOD, bad, GOOD])
    with pytest.raises(DataError, match=problem) as caught:
        read_manifest(path)
    assert str(caught.value).startswith(f"{path}:4: ")


def test_an_unknown_label_with_a_class_names_file_names_its_line(tmp_path):
    names = tmp_path / "classes.txt"
    names.write_text("walk\nrun\n")
    path = write_manifest(tmp_path, [GOOD, [*GOOD[:2], "2", *GOOD[3:]]])
    with pytest.raises(DataError, match="label '2' is neither a class name nor a class number 0–1") as caught:
        read_manifest(path, names)
    assert caught.value.line == 3


@pytest.mark.parametrize(
    ("header", "problem"),
    [
        ("rgb_path,ir_path,label,view", "unknown column 'view'"),
        ("rgb_path,label,label", "column 'label' appears twice"),
        ("rgb_path,ir_path,subject", "lacks the column(s) label"),
    ],
)
def test_a_malformed_header_names_line_1(tmp_path, header, problem):
    path = write_manifest(tmp_path, [["a", "b", "c"]], header=header)
    with pytest.raises(DataError, match=problem.replace("(", r"\(").replace(")", r"\)")) as caught:
        read_manifest(path)
    assert caught.value.line == 1


def test_empty_manifests_are_clear_errors(tmp_path):
    empty = tmp_path / "empty.csv"
    empty.write_text("\n")
    with pytest.raises(DataError, match="the manifest is empty"):
        read_manifest(empty)
    with pytest.raises(DataError, match="lists no samples"):
        read_manifest(write_manifest(tmp_path, []))
    with pytest.raises(DataError, match="cannot read the manifest"):
        read_manifest(tmp_path / "absent.csv")


def test_training_steps_and_check_on_a_manifest(manifest, tmp_path, capsys):
    out = tmp_path / "run"
    code = main(
        [
            "train",
            "--modality",
            "rgb",
            "--out",
            str(out),
            *("--set", "data.dataset=manifest", "--set", f"data.manifest={manifest}"),
            *("--set", "data.protocol=manifest-xsub", "--set", "data.train_subjects=[P001, P002]"),
            *("--set", "optim.epochs=1", "--set", "data.rgb_size=32", "--set", "data.num_frames=4"),
            *("--set", "optim.teacher_epochs=0"),
            *("--set", "data.batch_size=4", "--set", "data.workers=0", "--set", "data.val.enabled=true"),
            *("--set", "teacher.width=0.125", "--set", "teacher.depth=10"),
        ]
    )
    assert code == 0
    (line,) = [json.loads(x) for x in (out / "metrics.jsonl").read_text().splitlines()]
    assert line["train_ce"] > 0
    assert line["val_samples"] == 6 and line["test_samples"] == 6  # one of P001, P002 validates
    capsys.readouterr()
    code = main(
        ["check", str(manifest), "--dataset", "manifest", "--size", "32", "--frames", "4", "--workers", "0"]
    )
    report = capsys.readouterr().out
    assert code == 0
    assert f"{manifest}: 18 samples, 2 classes" in report
    assert "manifest-split train     12  test      6" in report and "no bad samples" in report


def test_training_on_a_manifest_needs_a_manifest_protocol_and_file(tmp_path, capsys):
    run = ["train", "--modality", "ir", "--out", str(tmp_path / "run"), "--set", "data.dataset=manifest"]
    assert main(run) == 2
    err = capsys.readouterr().err
    assert err.startswith("arctic train: error: data.protocol: 'ntu60-xsub' is not a manifest protocol")
    assert main([*run, "--set", "data.protocol=manifest-split"]) == 2
    assert "data.manifest: dataset manifest needs the CSV file" in capsys.readouterr().err
