"""NTU sample names, the file-name index of a dataset folder, and class names."""

from __future__ import annotations

from pathlib import Path

import pytest

from arctic_kd.data.ntu import SampleName, index_ntu, ntu_class_names, read_class_names
from arctic_kd.errors import DataError

COMPLETE = "S001C001P001R001A001"
NO_IR = "S001C002P001R001A002"
NO_SKELETON = "S002C003P004R002A060"


def touch(path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.touch()
    return path


def make_layout(root: Path, names: dict[str, tuple[str, ...]]) -> None:
    """Empty files in the distributed layout: sample name -> its modalities."""
    for name, modalities in names.items():
        if "rgb" in modalities:
            touch(root / "nturgb+d_rgb" / f"{name}_rgb.avi")
        if "ir" in modalities:
            touch(root / "nturgb+d_ir" / f"{name}_ir.avi")
        if "skeleton" in modalities:
            touch(root / "nturgb+d_skeletons" / f"{name}.skeleton")


@pytest.fixture
def dataset(tmp_path):
    make_layout(
        tmp_path,
        {
            NO_SKELETON: ("rgb", "ir"),
            COMPLETE: ("rgb", "ir", "skeleton"),
            NO_IR: ("rgb", "skeleton"),
        },
    )
    stray = [
        touch(tmp_path / "nturgb+d_ir" / "notes.txt"),
        touch(tmp_path / "nturgb+d_rgb" / f"{COMPLETE}_ir.avi"),  # an IR file in the RGB folder
    ]
    folder = tmp_path / "nturgb+d_skeletons" / "S003C001P001R001A001.skeleton"  # a sample-named folder
    folder.mkdir()
    stray.append(folder)
    return tmp_path, sorted(stray)


def test_sample_name_round_trip_fields_and_order():
    name = SampleName.parse("S017C003P020R002A060")
    assert (name.setup, name.camera, name.performer, name.replication, name.action) == (17, 3, 20, 2, 60)
    assert name.label == 59
    assert str(name) == "S017C003P020R002A060"
    texts = ["S002C001P001R001A001", "S001C002P001R001A001", "S001C001P001R002A001", "S001C001P001R001A010"]
    assert [str(n) for n in sorted(map(SampleName.parse, texts))] == sorted(texts)


@pytest.mark.parametrize(
    "text",
    ["S001C001P001R001A01", "s001C001P001R001A001", "S001C001P001R001A001_rgb", " S001C001P001R001A001", ""],
)
def test_sample_name_parse_is_strict(text):
    with pytest.raises(ValueError, match="not an NTU sample name") as info:
        SampleName.parse(text)
    assert repr(text) in str(info.value)


def test_index_lists_every_sample_with_its_files(dataset):
    root, _ = dataset
    index = index_ntu(root)

    assert [str(s.name) for s in index.samples] == [COMPLETE, NO_IR, NO_SKELETON]
    complete = index.samples[0]
    assert complete.rgb == root / "nturgb+d_rgb" / f"{COMPLETE}_rgb.avi"
    assert complete.ir == root / "nturgb+d_ir" / f"{COMPLETE}_ir.avi"
    assert complete.skeleton == root / "nturgb+d_skeletons" / f"{COMPLETE}.skeleton"
    assert index.samples[1].ir is None and index.samples[2].skeleton is None
    assert index.root == root


def test_index_reports_missing_modalities_and_ignored_files(dataset):
    root, stray = dataset
    index = index_ntu(root)

    assert [str(s.name) for s in index.complete()] == [COMPLETE, NO_SKELETON]
    assert [str(s.name) for s in index.complete(("rgb", "ir", "skeleton"))] == [COMPLETE]
    assert [str(s.name) for s in index.complete(("skeleton",))] == [COMPLETE, NO_IR]
    assert index.missing() == {NO_IR: ["ir"]}
    assert index.missing(("rgb", "ir", "skeleton")) == {NO_IR: ["ir"], NO_SKELETON: ["skeleton"]}
    assert index.ignored == stray
    with pytest.raises(ValueError, match="unknown modality 'depth'"):
        index.complete(("rgb", "depth"))


def test_index_needs_an_ntu_folder(tmp_path):
    touch(tmp_path / "videos" / f"{COMPLETE}_rgb.avi")
    with pytest.raises(DataError, match=r"no NTU RGB\+D folders \(nturgb\+d_rgb, nturgb\+d_ir") as info:
        index_ntu(tmp_path)
    assert info.value.path == str(tmp_path)


def test_index_with_one_modality_folder(tmp_path):
    make_layout(tmp_path, {COMPLETE: ("ir",), NO_IR: ("ir",)})
    index = index_ntu(tmp_path)
    assert index.missing(("ir",)) == {}
    assert index.missing() == {COMPLETE: ["rgb"], NO_IR: ["rgb"]}


def test_class_names_official():
    ntu60, ntu120 = ntu_class_names(), ntu_class_names(120)
    assert (len(ntu60), len(ntu120)) == (60, 120)
    assert ntu120[:60] == ntu60
    assert ntu60[0] == "drink water" and ntu60[59] == "walking apart from each other"
    assert ntu120[66] == "hush (quite)"  # A067, the official spelling
    assert ntu120[108] == "grab other person\u2019s stuff"  # A109 and A117 use U+2019
    assert ntu120[116] == "whisper in other person\u2019s ear"
    assert ntu120[119] == "finger-guessing game (playing rock-paper-scissors)"
    with pytest.raises(ValueError, match="60 or 120"):
        ntu_class_names(51)


def test_index_picks_official_class_names_by_the_largest_action(tmp_path):
    make_layout(tmp_path / "ntu60", {COMPLETE: ("rgb",)})
    make_layout(tmp_path / "ntu120", {COMPLETE: ("rgb",), "S018C001P045R001A061": ("rgb",)})
    assert index_ntu(tmp_path / "ntu60").class_names == ntu_class_names(60)
    assert index_ntu(tmp_path / "ntu120").class_names == ntu_class_names(120)


def test_index_prefers_the_dataset_class_list(tmp_path):
    make_layout(tmp_path, {COMPLETE: ("rgb",), "S001C001P001R001A003": ("rgb",)})
    (tmp_path / "class_names.txt").write_text("wave\nclap\njump\n")
    assert index_ntu(tmp_path).class_names == ["wave", "clap", "jump"]

    (tmp_path / "class_names.txt").write_text("wave\nclap\n")
    with pytest.raises(DataError, match="only 2 class names but sample S001C001P001R001A003 has action 3"):
        index_ntu(tmp_path)


def test_read_class_names_both_forms(tmp_path):
    plain = tmp_path / "plain.txt"
    plain.write_text("drink water\r\neat meal/snack\r\n\r\n", newline="")
    with_ids = tmp_path / "ids.txt"
    with_ids.write_text("A001\tdrink water\nA002\teat meal/snack\n")
    assert read_class_names(plain) == read_class_names(with_ids) == ["drink water", "eat meal/snack"]


@pytest.mark.parametrize(
    ("text", "line", "words"),
    [
        ("", None, "no class names"),
        ("\n \n", None, "no class names"),
        ("wave\n\nclap\n", 2, "empty line inside"),
        ("wave\nclap\nwave\n", 3, "repeats line 1"),
        ("A001\twave\nA003\tclap\n", 2, "expected class A002, found A003"),
        ("A001\twave\nclap\n", 2, "expected 'A002<TAB>name'"),
    ],
)
def test_read_class_names_rejects_bad_files(tmp_path, text, line, words):
    path = tmp_path / "class_names.txt"
    path.write_text(text)
    with pytest.raises(DataError) as info:
        read_class_names(path)
    assert info.value.path == str(path)
    assert info.value.line == line
    assert words in info.value.problem


def test_read_class_names_missing_file(tmp_path):
    with pytest.raises(DataError, match="cannot read class names"):
        read_class_names(tmp_path / "absent.txt")
