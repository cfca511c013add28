"""The demo: a three-run plan of the runner, its results table and the gap sentence."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest

from arctic_kd.config import load_config
from arctic_kd.experiments.demo import demo_runs, gap_sentence
from arctic_kd.experiments.runner import RunRecord
from arctic_kd.experiments.stats import gap_recovered
from arctic_kd.experiments.tables import demo_table
from arctic_kd.presets import resolve_config


def records(teacher: float, ir: float, arctic: float) -> list[RunRecord]:
    return [
        RunRecord("rgb_teacher", "RGB teacher", "rgb", "ntu60-xsub", 0, teacher, 99.0, 10.0, {}, teacher + 1),
        RunRecord("ir_only", "IR only", "ir", "ntu60-xsub", 0, ir, 98.0, 8.0, {}, ir + 1),
        RunRecord("arctic", "ARCTIC", "ir", "ntu60-xsub", 0, arctic, 97.0, 12.0, {}, arctic + 2),
    ]


def test_gap_recovered_is_the_share_of_the_teacher_ir_gap():
    assert gap_recovered(90.0, 70.0, 80.0) == pytest.approx(50.0)
    assert gap_recovered(90.0, 70.0, 65.0) == pytest.approx(-25.0)
    assert gap_recovered(60.0, 70.0, 80.0) is None  # no gap to recover
    assert gap_sentence(None).startswith("The RGB teacher is not better than IR alone here")
    assert gap_sentence(50.0) == "ARCTIC recovers 50 % of the teacher–IR-only top-1 gap."


def test_table_lists_each_method_once():
    text = demo_table(records(90.0, 70.0, 80.0))
    assert text.splitlines()[:2] == [
        "| method | modality | top-1 | top-5 | multi-view top-1 | wall time |",
        "| --- | --- | --- | --- | --- | --- |",
    ]
    assert text.count("\n") == 4 and "| ARCTIC | IR | 80.0 | 97.0 | 82.0 | 12 s |" in text


def test_the_demo_trains_teacher_ir_only_and_arctic_on_its_config_as_before(tmp_path: Path):
    config = load_config(resolve_config("demo"))
    teacher, ir_only, arctic = demo_runs(config, tmp_path)
    assert [(r.name, r.label, r.stage, r.modality) for r in (teacher, ir_only, arctic)] == [
        ("rgb_teacher", "RGB teacher", "train", "rgb"),
        ("ir_only", "IR only", "train", "ir"),
        ("arctic", "ARCTIC", "distill", "ir"),
    ]
    assert teacher.config == config and ir_only.config == config  # same seed, split and budget
    checkpoint = str(tmp_path / "rgb_teacher" / "last.pt")
    assert arctic.config == dataclasses.replace(
        config, distill=dataclasses.replace(config.distill, teacher=checkpoint)
    )
    assert [r.folder for r in (teacher, ir_only, arctic)] == [
        tmp_path / n for n in ("rgb_teacher", "ir_only", "arctic")
    ]
