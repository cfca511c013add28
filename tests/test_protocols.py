"""The four NTU protocols reproduce the official split sizes and the published NTU60 split lists."""

from __future__ import annotations

import os
from functools import cache
from pathlib import Path

import pytest

from arctic_kd.data.ntu import SampleName
from arctic_kd.data.protocols import PROTOCOLS, get_protocol, missing_skeleton_names, split

# protocol -> ((train, test) over all samples, (train, test) over skeleton-available samples),
# from the table in reference/README.md
OFFICIAL_COUNTS = {
    "ntu60-xsub": ((40_320, 16_560), (40_091, 16_487)),
    "ntu60-xview": ((37_920, 18_960), (37_646, 18_932)),
    "ntu120-xsub": ((63_360, 51_120), (63_026, 50_919)),
    "ntu120-xset": ((54_720, 59_760), (54_468, 59_477)),
}
NAME_LISTS = {"ntu60": "ntu60_all_sample_names_fusion.txt", "ntu120": "ntu120_all_sample_names_derived.txt"}


def reference_dir() -> Path:
    """`$ARCTIC_REFERENCE`, else the shared reference folder next to the repository."""
    folder = Path(
        os.environ.get("ARCTIC_REFERENCE")
        or Path(__file__).resolve().parents[1] / ".." / "shared" / "reference"
    )
    if not folder.is_dir():
        pytest.skip(f"reference data not found at {folder} (set ARCTIC_REFERENCE to the folder)")
    return folder


@cache
def _names(dataset: str) -> tuple[SampleName, ...]:
    text = (reference_dir() / NAME_LISTS[dataset]).read_text()  # str.split() also handles the CRLF list
    return tuple(SampleName.parse(token) for token in text.split())


def reference_names(dataset: str) -> tuple[SampleName, ...]:
    names = _names(dataset)
    assert len(names) == {"ntu60": 56_880, "ntu120": 114_480}[dataset]
    return names


@pytest.mark.parametrize("protocol", OFFICIAL_COUNTS)
@pytest.mark.parametrize("drop_missing_skeletons", [False, True])
def test_split_sizes_match_the_official_counts(protocol, drop_missing_skeletons):
    train, test = split(reference_names(PROTOCOLS[protocol].dataset), protocol, drop_missing_skeletons)
    assert (len(train), len(test)) == OFFICIAL_COUNTS[protocol][drop_missing_skeletons]
    assert not set(train) & set(test)


def test_ntu60_protocols_on_the_ntu120_list_give_the_ntu60_splits():
    for protocol in ("ntu60-xsub", "ntu60-xview"):
        train, test = split(reference_names("ntu120"), protocol)
        assert (len(train), len(test)) == OFFICIAL_COUNTS[protocol][0]
        assert all(name.setup <= 17 and name.action <= 60 for name in train + test)


def read_motionrgbd_split(protocol: str, part: str) -> set[SampleName]:
    """Lines like `S001C001P001R001A001_rgb 103 0 `: the first field without `_rgb` is the sample."""
    path = reference_dir() / "motionrgbd_ntu60_splits" / f"{protocol}_{part}.txt"
    lines = path.read_text().splitlines()
    return {SampleName.parse(line.split()[0].removesuffix("_rgb")) for line in lines if line.strip()}


@pytest.mark.parametrize(("protocol", "listed"), [("ntu60-xsub", "CS"), ("ntu60-xview", "CV")])
def test_ntu60_splits_equal_the_published_lists(protocol, listed):
    train, test = split(reference_names("ntu60"), protocol)
    assert set(train) == read_motionrgbd_split(listed, "train")
    assert set(test) == read_motionrgbd_split(listed, "valid")


def test_missing_skeleton_lists_are_the_official_ones():
    ntu60, ntu120 = missing_skeleton_names("ntu60"), missing_skeleton_names("ntu120")
    assert (len(ntu60), len(ntu120)) == (302, 535)
    assert ntu60 < ntu120
    assert "S001C002P005R002A008" in ntu60
    assert all(SampleName.parse(name).setup >= 18 for name in ntu120 - ntu60)
    with pytest.raises(ValueError, match="ntu60, ntu120"):
        missing_skeleton_names("pku")


def test_rules_on_single_names():
    name = SampleName.parse("S002C001P003R001A061")
    assert not PROTOCOLS["ntu60-xsub"].includes(name)  # action 61 is NTU120 only
    assert not PROTOCOLS["ntu60-xview"].includes(SampleName.parse("S018C002P008R001A001"))
    assert PROTOCOLS["ntu120-xsub"].includes(name) and not PROTOCOLS["ntu120-xsub"].is_train(name)
    assert PROTOCOLS["ntu120-xset"].is_train(name)
    assert not PROTOCOLS["ntu120-xset"].is_train(SampleName.parse("S031C001P003R001A061"))
    assert PROTOCOLS["ntu60-xview"].is_train(SampleName.parse("S001C003P003R001A001"))
    assert not PROTOCOLS["ntu60-xview"].is_train(SampleName.parse("S001C001P001R001A001"))
    assert PROTOCOLS["ntu120-xsub"].is_train(SampleName.parse("S020C001P103R001A070"))


def test_split_keeps_input_order_and_drops_only_with_the_flag():
    names = [
        SampleName.parse(n) for n in ("S001C001P002R001A001", "S001C002P005R002A008", "S001C001P001R001A002")
    ]
    assert split(names, "ntu60-xsub") == (names, [])
    assert split(names, get_protocol("ntu60-xsub"), drop_missing_skeletons=True) == ([names[0], names[2]], [])


def test_unknown_protocol_lists_the_known_ones():
    with pytest.raises(ValueError, match="ntu60-xsub, ntu60-xview, ntu120-xsub, ntu120-xset"):
        get_protocol("ntu60-cs")
