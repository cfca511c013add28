"""A weak RGB teacher is never distilled from silently (`engine.health`), and `train.restarts` keeps the
best of several teacher seeds."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from arctic_kd.cli import main
from arctic_kd.config import load_config
from arctic_kd.engine import stages
from arctic_kd.engine.checkpoint import load_checkpoint
from arctic_kd.engine.health import checkpoint_health, teacher_warnings
from arctic_kd.errors import ConfigError
from arctic_kd.experiments import runner
from arctic_kd.experiments.bench import BenchPlan, build_base, load_plan, load_variants, run_bench
from arctic_kd.experiments.runner import TEACHER, RunRecord
from arctic_kd.experiments.tables import demo_table
from arctic_kd.presets import VARIANTS_FILE, resolve_config
from tests.conftest import TINY_SYNTH
from tests.trained import tiny_model_args

HEALTHY_LOSSES = [2.4, 1.6, 1.0, 0.7, 0.6]  # the shape of the demo teacher's curve, 12 classes


def test_a_healthy_teacher_gives_no_warning_and_each_sign_of_a_broken_one_does():
    assert teacher_warnings(90.9, 12, HEALTHY_LOSSES, ir_only_top1=79.1) == []
    (near_chance,) = teacher_warnings(12.0, 12, HEALTHY_LOSSES)
    assert "near chance (8.3 % for 12 classes)" in near_chance
    (stuck,) = teacher_warnings(39.6, 12, [2.4, 1.8, 1.6])  # the collapsed teacher
    assert "training loss did not fall enough" in stuck and "1.600 in epoch 3" in stuck
    (below,) = teacher_warnings(74.7, 12, HEALTHY_LOSSES, ir_only_top1=75.7)
    assert "not above the IR-only network's 75.7 %" in below
    assert len(teacher_warnings(8.0, 12, [2.5, 2.5], ir_only_top1=75.7)) == 3


def test_a_broken_teacher_is_warned_of_by_train_and_by_distill(tiny_dataset, tmp_path, capsys):
    """A learning rate far too small leaves the loss where it started: train says so, and distill prints
    the teacher's recorded accuracy and the same warning before it trains."""
    data = ["--set", f"data.root={tiny_dataset}"]
    stuck = tiny_model_args("optim.epochs=2", "optim.lr=0.000000001", "data.cache=false")
    teacher = tmp_path / "teacher"
    assert main(["train", "--modality", "rgb", "--out", str(teacher), *data, *stuck]) == 0
    trained = capsys.readouterr().out
    assert "warning: the RGB teacher looks weak: top-1 50.0 % is near chance" in trained
    assert "warning: the RGB teacher looks weak: its training loss did not fall enough" in trained
    student = ["--teacher", str(teacher / "last.pt"), "--out", str(tmp_path / "student")]
    assert main(["distill", *student, *data, *tiny_model_args("optim.epochs=1", "data.cache=false")]) == 0
    distilled = capsys.readouterr().out
    assert (
        f"teacher {teacher / 'last.pt'}: test top-1 " in distilled  # no validation split: its last test
        and "at its last evaluation, epoch 2" in distilled
    )
    assert "warning: the RGB teacher looks weak: top-1 50.0 % is near chance" in distilled
    assert "warning: the RGB teacher looks weak: its training loss did not fall enough" in distilled


def test_restarts_train_a_seed_each_and_keep_the_best(tmp_path, monkeypatch):
    accuracy = {0: 60.0, 1: 85.0, 2: 70.0}  # by seed: seed 1 wins

    run_train = stages.run_train

    def train_once(config, modality, run_dir, frame_cache=None, progress=True, **resuming):
        """The restarts themselves, stubbed: each writes its run files and gets its seed's accuracy."""
        if config.train.restarts > 1:
            return run_train(config, modality, run_dir, frame_cache, progress, **resuming)
        run_dir.mkdir(parents=True)
        for name in stages.RESTART_FILES:
            (run_dir / name).write_text(f"seed {config.seed}")
        return {"final": {"top1": accuracy[config.seed]}, "teacher_warnings": [], "metrics_log": None}

    monkeypatch.setattr(stages, "run_train", train_once)
    config = load_config(None, ["train.restarts=3", "data.cache=false"])
    result = train_once(config, "rgb", tmp_path, progress=False)
    assert result["final"]["top1"] == 85.0 and result["restarts"]["chosen"] == 1
    assert (tmp_path / "last.pt").read_text() == "seed 1" and (tmp_path / "best.pt").read_text() == "seed 1"
    assert json.loads((tmp_path / "restarts.json").read_text())["top1"] == [60.0, 85.0, 70.0]
    assert sorted(p.name for p in tmp_path.glob("restart?")) == ["restart0", "restart1", "restart2"]


def test_restarts_must_be_at_least_one_and_change_what_the_teacher_reads_only():
    with pytest.raises(ConfigError, match=r"train\.restarts must be at least 1, got 0"):
        load_config(None, ["train.restarts=0"])
    once, thrice = load_config(None), load_config(None, ["train.restarts=3"])
    assert stages.what_it_reads(once, "train", "ir") == stages.what_it_reads(thrice, "train", "ir")
    assert stages.what_it_reads(once, "train", "rgb") != stages.what_it_reads(thrice, "train", "rgb")


def test_the_robustness_preset_renders_differ_and_are_valid_settings():
    plan = load_plan("robustness")
    assert len(plan.renders) >= 4 and len(plan.seeds) == 3 and plan.methods == ("ir_only",)
    assert len({json.dumps(r, sort_keys=True) for r in plan.renders.values()}) == len(plan.renders)
    assert len({r["seed"] for r in plan.renders.values()}) == len(plan.renders)


def test_a_bench_over_renders_runs_each_and_flags_weak_teachers(tmp_path, monkeypatch):
    """Two tiny renders, stages patched: the teacher of render b, seed 1 is below IR-only; bench.md says
    so per render, with the teacher's mean and weakest seed."""
    top1 = {("a", "rgb"): 90.0, ("a", "ir"): 70.0, ("b", "rgb"): 60.0, ("b", "ir"): 70.0}

    def train(config, modality, folder, cache, progress):
        folder.mkdir(parents=True, exist_ok=True)
        accuracy = top1[(Path(config.data.root).name, modality)] + config.seed
        return {
            "final": {"top1": accuracy, "top5": 99.0},
            "multiview": {"top1": accuracy},
            "metrics_log": None,
        }

    monkeypatch.setattr(runner, "run_train", train)
    tiny = {k: v for k, v in vars(TINY_SYNTH).items() if k in ("num_classes", "performers", "setups")}
    tiny |= {"replications": 1, "cameras": 2, "min_frames": 8, "max_frames": 8}
    plan = BenchPlan(protocols=("ntu60-xsub",), seeds=(0, 1), methods=("ir_only",))
    plan.renders = {"a": {**tiny, "seed": 1}, "b": {**tiny, "seed": 2, "rgb_clutter": 0.6}}
    base = build_base(plan, resolve_config("demo"), [], str(tmp_path / "data"))
    summary = run_bench(plan, load_variants(VARIANTS_FILE), base, tmp_path / "out", progress=False)
    assert list(summary["protocols"]) == ["a/ntu60-xsub", "b/ntu60-xsub"]
    assert (tmp_path / "data" / "b" / "synth.json").is_file() and (
        tmp_path / "out" / "b" / "ntu60-xsub"
    ).is_dir()
    health = summary["protocols"]["b/ntu60-xsub"]["rgb_teacher"]["health"]
    assert health["below_ir_only"] == {"seeds": [0, 1], "of": 2} and health["min_top1"] == 60.0
    assert "not above the IR-only network's 70.0 %" in health["warnings"]["0"][0]
    table = (tmp_path / "out" / "bench.md").read_text()
    assert "| a/ntu60-xsub | 90.5 ± 0.7 | 90.0 | 70.5 ± 0.7 | 0/2 | none |" in table
    assert "| b/ntu60-xsub | 60.5 ± 0.7 | 60.0 | 70.5 ± 0.7 | 2/2 | seed 0: top-1 60.0 %" in table
    assert "RGB teacher ⚠ weak" in table


def test_the_demo_table_flags_a_weak_teacher():
    fields = dict(protocol="ntu60-xsub", seed=0, top5=99.0, seconds=1.0, config={}, multiview_top1=80.0)
    weak = RunRecord(
        TEACHER, "RGB teacher", "rgb", top1=74.7, teacher_warnings=["top-1 74.7 % is …"], **fields
    )
    table = demo_table([weak, RunRecord("ir_only", "IR only", "ir", top1=75.7, **fields)])
    assert "| RGB teacher ⚠ weak | RGB | 74.7 |" in table and "| IR only | IR | 75.7 |" in table


def test_a_teacher_with_a_validation_split_is_judged_on_it(tiny_dataset, tmp_path):
    settings = tiny_model_args("optim.epochs=1", "data.cache=false", "data.val.enabled=true")
    teacher = tmp_path / "teacher"
    assert (
        main(
            [
                "train",
                "--modality",
                "rgb",
                "--out",
                str(teacher),
                "--set",
                f"data.root={tiny_dataset}",
                *settings,
            ]
        )
        == 0
    )
    checkpoint = load_checkpoint(teacher / "last.pt")
    line, _ = checkpoint_health(checkpoint, teacher / "last.pt")
    assert f"validation top-1 {checkpoint['validation']['top1']:.1f} %" in line
