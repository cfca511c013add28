"""The experiment runner: typed run records, reuse decided by what each stage reads, the [k/N] line."""

from __future__ import annotations

import json
import math
from pathlib import Path
from types import SimpleNamespace

import pytest

from arctic_kd.config import load_config
from arctic_kd.engine.stages import what_it_reads
from arctic_kd.errors import ArcticError
from arctic_kd.experiments import runner
from arctic_kd.experiments.demo import demo_runs
from arctic_kd.experiments.runner import TEACHER, PlannedRun, RunRecord, run_all, with_overrides
from arctic_kd.presets import resolve_config

SECONDS_PER_RUN = 40.0


@pytest.fixture
def demo_config():
    return load_config(resolve_config("demo"))


@pytest.fixture
def fake_stages(monkeypatch):
    """Stages that train nothing: each takes SECONDS_PER_RUN on a fake clock and records the call."""
    clock, calls = [0.0], []

    def outcome(config, folder: Path, top1: float = 80.0) -> dict:
        folder.mkdir(parents=True, exist_ok=True)
        clock[0] += SECONDS_PER_RUN
        final, views = {"top1": top1, "top5": 99.0}, {"top1": 81.0}
        validation = {"final": {"top1": top1 - 1}, "best": {"top1": top1 - 1}}
        return {"final": final, "multiview": views, "validation": validation, "metrics_log": None}

    def train(config, modality, folder, cache, progress):
        calls.append(modality)
        return outcome(config, folder, 90.0 if modality == "rgb" else 80.0)  # a teacher above IR-only

    def distill(config, folder, cache, progress):
        calls.append(config.distill.method)
        return outcome(config, folder)

    monkeypatch.setattr(runner, "run_train", train)
    monkeypatch.setattr(runner, "run_distill", distill)
    monkeypatch.setattr(runner, "time", SimpleNamespace(perf_counter=lambda: clock[0]))
    return calls


def record(**changes) -> RunRecord:
    fields = dict(name=TEACHER, label="RGB teacher", modality="rgb", protocol="ntu60-xsub", seed=0)
    fields |= dict(top1=90.0, top5=99.5, seconds=12.5, config={"seed": 0}, multiview_top1=91.0, threads=2)
    fields |= dict(val_top1=88.0)
    return RunRecord(**(fields | changes))


def test_a_run_record_reads_back_as_written_and_an_old_one_at_its_defaults(tmp_path):
    written = record()
    written.write(tmp_path)
    assert RunRecord.read(tmp_path / "result.json") == written
    assert not (tmp_path / "result.json.partial").exists()
    old = json.loads((tmp_path / "result.json").read_text())
    del old["multiview_top1"], old["threads"], old["val_top1"]  # as written before they existed
    (tmp_path / "result.json").write_text(json.dumps(old))
    read = RunRecord.read(tmp_path / "result.json")
    assert math.isnan(read.multiview_top1) and read.threads == 0 and read.top1 == 90.0
    assert math.isnan(read.val_top1)


def test_what_a_run_depends_on_is_said_by_its_stage(demo_config):
    def reads(config):
        return [what_it_reads(config, *stage) for stage in (("train", "rgb"), ("train", "ir"), ("distill",))]

    teacher, ir_only, arctic = reads(demo_config)
    smoothed = reads(with_overrides(demo_config, ["optim.teacher_label_smoothing=0.3"]))
    assert smoothed[0] != teacher and smoothed[1] == ir_only  # the teacher's own setting
    weighted = reads(with_overrides(demo_config, ["distill.arc.weight=0.5"]))
    assert weighted[:2] == [teacher, ir_only] and weighted[2] != arctic
    kd = with_overrides(demo_config, ["distill.method=kd"])
    kd_weighted = with_overrides(kd, ["distill.arc.weight=0.5"])
    assert what_it_reads(kd_weighted, "distill") == what_it_reads(kd, "distill")  # not KD's section


def test_finished_runs_are_reused_unless_what_their_stage_reads_changed(demo_config, fake_stages, tmp_path):
    def plan(config) -> list[PlannedRun]:
        kd = with_overrides(config, ["distill.method=kd"])
        return [
            *demo_runs(config, tmp_path),
            PlannedRun("kd", "KD", "distill", "ir", "ntu60-xsub", 0, kd, tmp_path / "kd"),
        ]

    first = run_all(plan(demo_config), progress=False)
    assert fake_stages == ["rgb", "ir", "arctic", "kd"]
    smoothed = plan(with_overrides(demo_config, ["optim.teacher_label_smoothing=0.3"]))
    assert run_all(smoothed[1:2], progress=False) == first[1:2]  # the IR-only run still stands
    with pytest.raises(ArcticError, match=r"rgb_teacher was run with another config \(optim\.label_sm"):
        run_all(smoothed[:1], progress=False)
    weighted = plan(with_overrides(demo_config, ["distill.arc.weight=0.5"]))
    assert run_all([weighted[i] for i in (0, 1, 3)], progress=False) == [first[i] for i in (0, 1, 3)]
    with pytest.raises(ArcticError, match=r"arctic was run with another config \(distill\.arc\.weight: 1"):
        run_all(weighted, progress=False)
    assert fake_stages == ["rgb", "ir", "arctic", "kd"]  # nothing trained again


def test_each_run_is_announced_with_its_network_its_epochs_and_the_time_left(
    demo_config, fake_stages, tmp_path, capsys
):
    records = run_all(demo_runs(demo_config, tmp_path), progress=False, resumable=False)
    lines = capsys.readouterr().out.splitlines()
    assert lines[0] == "[1/3] RGB teacher — R3D-10 ×0.25, 25 epochs"
    # 40 s for the teacher's 25 epochs: 1.6 s each, for 30 epochs left; then 80 s for 40: 2 s, 15 left
    assert lines[2] == "[2/3] IR only — R3D-10 ×0.25, 15 epochs; about 48 s left at 1.6 s per epoch so far"
    assert lines[4] == "[3/3] ARCTIC — R3D-10 ×0.25, 15 epochs; about 30 s left at 2.0 s per epoch so far"
    assert lines[5] == "[3/3] ARCTIC: top-1 80.0, top-5 99.0 in 40 s" and len(lines) == 6
    assert [r.seconds for r in records] == [SECONDS_PER_RUN] * 3
    assert not (tmp_path / TEACHER / "result.json").exists()  # the demo records its runs in results.json


def test_the_model_text_names_architecture_depth_and_width():
    config = load_config(None, ["student.arch=r2plus1d", "student.depth=18"])
    assert runner.model_text(config.student) == "R(2+1)D-18"
    assert runner.model_text(load_config(None, ["teacher.width=0.5"]).teacher).endswith("×0.5")
