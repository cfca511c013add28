"""PKU-MMD label rows that training must not take at face value, and copies laid out in other ways than
the configured patterns: hand-written files in the real formats (no video needed)."""

from __future__ import annotations

import pytest

from arctic_kd.config import PkuMmdConfig, load_config
from arctic_kd.data.loaders import protocol_samples
from arctic_kd.data.pkummd import index_pkummd
from arctic_kd.errors import ConfigError, DataError

SPLIT = "Training videos: \n0007-L, 0007-R, \nValidataion videos: \n0007-M, \n"  # the download's spelling


def write(root, relative: str, text: str) -> None:
    path = root / relative
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)


def pku_folder(root, labels: str, split_name: str = "cross-view", rows: str = "5,10,20,2\n") -> None:
    write(root, f"Split/{split_name}.txt", SPLIT)
    for view in "LMR":
        write(root, labels.format(video=f"0007-{view}"), rows)


# rows of one recording: 1 and 2 are fine and meet at frame 20; 3 is reversed; 4 is zero-length; 5 and 6
# overlap by 8 of 10 frames; 7 overlaps 6 by 1 frame only; 8 has confidence 0
ROWS = "5,10,20,2\n6,20,30,1\n7,60,50,2\n8,70,70,2\n9,100,109,2\n10,102,111,2\n11,111,130,2\n12,140,150,0\n"


def test_reversed_zero_length_and_overlapping_rows_are_listed_and_dropped(tmp_path):
    pku_folder(tmp_path, "Label/{video}.txt", rows=ROWS)
    index = index_pkummd(tmp_path)
    kept = [int(c.sample_id[-3:]) for c in index.clips("0007-L")]
    assert kept == [1, 2, 7, 8]
    path = tmp_path / "Label" / "0007-L.txt"
    assert [str(p) for p in index.row_problems()] == [
        f"{path}:3: 7,60,50,2: end 50 before start 60 (dropped)",
        f"{path}:4: 8,70,70,2: zero length (start = end = 70) (dropped)",
        f"{path}:5: 9,100,109,2: shares 8 frames with line 6 (dropped)",
        f"{path}:6: 10,102,111,2: shares 8 frames with line 5 (dropped)",
    ]
    assert index.row_summary() == "4 suspicious label row(s): 4 dropped (data.pkummd.suspicious_rows: drop)"


def test_keep_trains_on_every_row_and_a_looser_overlap_lets_rows_5_and_6_through(tmp_path):
    pku_folder(tmp_path, "Label/{video}.txt", rows=ROWS)
    kept = index_pkummd(tmp_path, PkuMmdConfig(labels="Label/{video}.txt", suspicious_rows="keep"))
    assert [(c.start, c.end) for c in kept.clips("0007-L")][2:4] == [(49, 60), (69, 70)]  # swapped; 1 frame
    assert {p.action for p in kept.row_problems()} == {"swapped", "kept"}
    loose = index_pkummd(tmp_path, PkuMmdConfig(labels="Label/{video}.txt", max_overlap=0.9))
    assert [int(c.sample_id[-3:]) for c in loose.clips("0007-L")] == [1, 2, 5, 6, 7, 8]


def test_min_confidence_filters_rows_and_the_summary_counts_them(tmp_path):
    pku_folder(tmp_path, "Label/{video}.txt", rows=ROWS)
    strong = index_pkummd(tmp_path, PkuMmdConfig(labels="Label/{video}.txt", min_confidence=2))
    assert [int(c.sample_id[-3:]) for c in strong.clips("0007-L")] == [1, 7]
    assert "2 under data.pkummd.min_confidence 2 left out" in strong.row_summary()


@pytest.mark.parametrize(
    ("labels", "split_name"),
    [
        ("Label/Train_Label_PKU_final/{video}.txt", "cross-view"),
        ("Label/{video}.txt", "cross_view"),
        ("Train_Label_PKU_final/{video}.txt", "cross_view"),
    ],
)
def test_known_layouts_are_found_and_named(tmp_path, labels, split_name):
    pku_folder(tmp_path, labels, split_name)
    index = index_pkummd(tmp_path, PkuMmdConfig(labels="Labels/{video}.txt"))
    assert index.layout.labels == labels and len(index.clips("0007-M")) == 1
    assert f"data.pkummd.labels: nothing at 'Labels/{{video}}.txt'; using '{labels}' (3 of 3 recordings)" in (
        index.notes
    )
    assert index.split("pkummd-xview", ())[1][0].sample_id == "F007V002C005L001"
    if split_name == "cross_view":
        assert "pkummd-xview: no Split/cross-view.txt; using Split/cross_view.txt" in index.notes[0]


def test_configured_split_names_are_used_without_a_note(tmp_path):
    pku_folder(tmp_path, "Label/{video}.txt", "xview")
    layout = PkuMmdConfig(
        splits="Split/{split}.txt", split_names=("xsub", "xview"), labels="Label/{video}.txt"
    )
    index = index_pkummd(tmp_path, layout)
    assert list(index.splits) == ["pkummd-xview"] and index.split_files["pkummd-xview"] == ["Split/xview.txt"]
    assert not any("split" in note or "labels" in note for note in index.notes)  # only: no videos found


def test_no_split_file_names_every_pattern_tried(tmp_path):
    write(tmp_path, "Split/readme.txt", "")
    with pytest.raises(DataError) as caught:
        index_pkummd(tmp_path)
    assert str(caught.value) == (
        f"{tmp_path}: no PKU-MMD split files found; tried Split/cross-subject.txt, Split/cross_subject.txt, "
        "Split/cross-view.txt, Split/cross_view.txt"
    )


def test_labels_found_nowhere_name_the_patterns_tried(tmp_path):
    write(tmp_path, "Split/cross-view.txt", SPLIT)
    index = index_pkummd(tmp_path)
    assert (
        "data.pkummd.labels: no file for any recording; tried 'Train_Label_PKU_final/{video}.txt', "
        "'Label/Train_Label_PKU_final/{video}.txt', 'Label/{video}.txt'" in index.notes
    )
    assert index.missing()["0007-L"] == ["rgb", "ir", "labels"]


def test_a_bad_max_overlap_is_a_config_error():
    with pytest.raises(ConfigError, match=r"data.pkummd.max_overlap must be in \(0, 1\], got 0"):
        load_config(None, ["data.pkummd.max_overlap=0"])


def test_training_says_which_layout_it_found_and_how_many_rows_it_left_out(tmp_path, capsys):
    pku_folder(tmp_path, "Label/{video}.txt", rows=ROWS)
    for view in "LMR":  # the index only asks whether the files exist
        write(tmp_path, f"Data/RGB_VIDEO/0007-{view}.avi", "")
        write(tmp_path, f"Data/IR_VIDEO/0007-{view}-infrared.avi", "")
    config = load_config(None, ["data.dataset=pkummd", f"data.root={tmp_path}", "data.protocol=pkummd-xview"])
    samples = protocol_samples(config.data, ("rgb", "ir"), progress=True)
    assert (len(samples.train), len(samples.test)) == (8, 4)
    assert capsys.readouterr().err.splitlines() == [
        "arctic: note: data.pkummd.labels: nothing at 'Train_Label_PKU_final/{video}.txt'; "
        "using 'Label/{video}.txt' (3 of 3 recordings)",
        "arctic: note: 12 suspicious label row(s): 12 dropped (data.pkummd.suspicious_rows: drop); "
        "`arctic check` lists them",
    ]
