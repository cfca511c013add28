"""`arctic bench`: every method trains on tiny data, one teacher per seed, resumable, tables/JSON/plot."""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path
from types import SimpleNamespace

import pytest
import torch

from arctic_kd.cli import main
from arctic_kd.config import load_config
from arctic_kd.errors import ArcticError
from arctic_kd.experiments import runner
from arctic_kd.experiments.bench import (
    BenchPlan,
    build_base,
    load_plan,
    load_variants,
    plan_runs,
    run_bench,
    summarise,
)
from arctic_kd.experiments.runner import TEACHER, RunRecord, with_overrides
from arctic_kd.experiments.stats import gap_recovered, paired_difference, t_975
from arctic_kd.experiments.tables import bench_markdown
from arctic_kd.presets import VARIANTS_FILE, resolve_config

BENCH_FILES = sorted(VARIANTS_FILE.parent.glob("*.yaml"))
TINY = [
    "optim.epochs=1",
    "optim.teacher_epochs=0",  # the demo preset trains its teacher longer
    "train.eval_every=1",
    "data.rgb_size=32",
    "data.ir_size=32",
    "data.num_frames=4",
    "data.batch_size=4",
    "data.workers=0",
    "data.cache=false",
    "teacher.width=0.125",
    "student.width=0.125",
]
EVERY_METHOD = ("ir_only", "kd", "fitnets", "at", "sp", "rkd", "afd", "dkd", "arctic", "arctic-no-arm")
DATASET = "data/tiny, synthetic: num_classes=2"  # what `arctic bench` writes above its tables


@pytest.mark.parametrize("path", [p for p in BENCH_FILES if p != VARIANTS_FILE], ids=lambda p: p.name)
def test_every_bench_preset_loads_and_every_run_config_validates(path, tmp_path):
    plan = load_plan(str(path))
    variants = load_variants(VARIANTS_FILE)
    base = build_base(plan, resolve_config(plan.config), [], "data/synth")
    runs = plan_runs(plan, variants, base, tmp_path)
    teachers = [run for run in runs if run.name == TEACHER]
    assert len(teachers) == len(plan.protocols) * len(plan.seeds)
    assert len(runs) == len(teachers) * (1 + len(plan.methods))


def test_every_variant_is_a_valid_set_of_overrides():
    variants = load_variants(VARIANTS_FILE)
    assert {"ir_only", "kd", "fitnets", "at", "sp", "rkd", "afd", "dkd", "arctic"} <= set(variants)
    for name, variant in variants.items():
        config = with_overrides(load_config(None), variant.set)
        assert variant.stage == "train" or name.startswith(config.distill.method), name
    off = with_overrides(load_config(None), variants["arctic-no-arm"].set)
    assert off.distill.method == "arctic" and off.distill.arm.weight == 0


def test_gap_recovered_is_the_share_of_the_teacher_ir_gap():
    assert gap_recovered(90.0, 70.0, 80.0) == pytest.approx(50.0)
    assert gap_recovered(90.0, 70.0, 65.0) == pytest.approx(-25.0)
    assert gap_recovered(60.0, 70.0, 80.0) is None  # no gap to recover


def test_the_paired_difference_is_the_mean_of_per_seed_differences_with_its_standard_error():
    paired = paired_difference([90.0, 85.0, 88.0], [88.0, 86.0, 85.0])  # differences −2, +1, −3
    assert paired["mean"] == pytest.approx(-4 / 3)
    assert paired["se"] == pytest.approx((13 / 3) ** 0.5 / 3**0.5)  # sample std √(13/3), over √3
    assert paired["below"] == 2 and paired["values"] == [-2.0, 1.0, -3.0]
    half = 4.303 * paired["se"]  # t_2
    assert paired["ci95"] == pytest.approx([-4 / 3 - half, -4 / 3 + half])
    assert paired_difference([90.0], [80.0]) is None  # one seed has no spread to judge a difference by


def test_the_table_compares_every_ir_method_with_arctic_seed_by_seed():
    plan = BenchPlan(protocols=("ntu60-xsub",), seeds=(0, 1), methods=("ir_only", "arctic", "arctic-no-kd"))
    variants = load_variants(VARIANTS_FILE)
    top1 = {
        "rgb_teacher": (90.0, 80.0),
        "ir_only": (70.0, 72.0),
        "arctic": (85.0, 75.0),
        "arctic-no-kd": (86.0, 70.0),
    }
    labels = {name: variants[name].label for name in plan.methods} | {"rgb_teacher": "RGB teacher"}
    results = [
        RunRecord(name, labels[name], "ir", "ntu60-xsub", seed, accuracy, 99.0, 10.0, {}, accuracy)
        for name, accuracies in top1.items()
        for seed, accuracy in enumerate(accuracies)
    ]
    methods = summarise(plan, variants, results, "")["protocols"]["ntu60-xsub"]
    assert "vs_reference" not in methods["rgb_teacher"] and "vs_reference" not in methods["arctic"]
    assert methods["arctic-no-kd"]["vs_reference"]["values"] == [1.0, -5.0]
    assert methods["ir_only"]["vs_reference"]["mean"] == pytest.approx(-9.0)
    table = bench_markdown(summarise(plan, variants, results, ""))
    header = next(line for line in table.splitlines() if line.startswith("| method"))
    assert header.endswith("| top-1 − ARCTIC, paired | wall time per run |")
    assert "| ARCTIC − KD | IR | 78.0 ± 11.3 |" in table
    assert "| -2.0 ± 3.0 SE, 95 % CI [-40.1, +36.1], below on 1/2 |" in table  # ± t_1 · SE = 12.706 · 3
    # pooled paired std √((72 + 18) / 2) of IR-only's (−15, −3) and ARCTIC − KD's (+1, −5), t_1 · s / √2
    resolvable = summarise(plan, variants, results, "")["resolvable"]["ntu60-xsub"]
    assert resolvable["sd"] == pytest.approx(45**0.5) and resolvable["half_width"] == pytest.approx(
        60.27, abs=0.01
    )
    assert (
        "Resolved at 95 %: paired differences of at least 60.3 points (2 seeds, pooled paired std 6.7)"
        in table
    )


def test_the_t_quantiles_behind_the_intervals():
    assert [t_975(df) for df in (1, 4, 30)] == [12.706, 2.776, 2.042]
    assert t_975(40) == pytest.approx(2.021, abs=1e-3) and t_975(120) == pytest.approx(1.980, abs=1e-3)


@pytest.fixture(scope="module")
def benched(tiny_dataset, tmp_path_factory):
    """One seed of every method on the tiny dataset, with the stages counted."""
    out = tmp_path_factory.mktemp("bench")
    plan = BenchPlan(config="demo", protocols=("ntu60-xsub",), seeds=(0,), methods=EVERY_METHOD)
    base = build_base(plan, resolve_config("demo"), TINY, str(tiny_dataset))
    variants = load_variants(VARIANTS_FILE)
    calls = []
    with pytest.MonkeyPatch.context() as patch:
        for stage in ("run_train", "run_distill"):
            original = getattr(runner, stage)
            patch.setattr(runner, stage, _counted(calls, stage, original))
        summary = run_bench(
            plan, variants, base, out, progress=False, command="arctic bench --test", dataset=DATASET
        )
    return SimpleNamespace(plan=plan, base=base, variants=variants, out=out, summary=summary, calls=calls)


def _counted(calls: list, stage: str, function):
    def wrapper(config, *args, **kwargs):
        calls.append((stage, config, args))
        return function(config, *args, **kwargs)

    return wrapper


def test_every_method_trains_without_nan_and_shares_the_seeds_teacher(benched):
    b = benched
    out = b.out
    trained = [args[0] for stage, _, args in b.calls if stage == "run_train"]
    assert sorted(trained) == ["ir", "rgb"]  # one RGB teacher, one IR-only baseline
    distills = [config for stage, config, _ in b.calls if stage == "run_distill"]
    assert len(distills) == len(EVERY_METHOD) - 1
    methods = {c.distill.method for c in distills}
    assert methods == {"kd", "fitnets", "at", "sp", "rkd", "afd", "dkd", "arctic"}
    teacher_checkpoint = str(out / "ntu60-xsub" / "seed0" / "rgb_teacher" / "last.pt")
    assert {c.distill.teacher for c in distills} == {teacher_checkpoint}
    for method in EVERY_METHOD:
        lines = (out / "ntu60-xsub" / "seed0" / method / "metrics.jsonl").read_text().splitlines()
        assert len(lines) == 1 and json.loads(lines[0])["test_top1"] >= 0
    assert list(b.summary["protocols"]["ntu60-xsub"]) == ["rgb_teacher", *EVERY_METHOD]


def test_bench_writes_json_markdown_and_a_plot(benched):
    b = benched
    out = b.out
    saved = json.loads((out / "bench.json").read_text())
    assert saved["command"] == "arctic bench --test" and saved["dataset"] == DATASET
    methods = saved["protocols"]["ntu60-xsub"]
    record = json.loads((out / "ntu60-xsub" / "seed0" / "kd" / "result.json").read_text())
    assert methods["kd"]["top1"]["values"] == [record["top1"]] and methods["kd"]["label"] == "KD"
    table = (out / "bench.md").read_text()
    assert f"Data: {DATASET}." in table
    for label in ("IR only", "KD", "FitNets", "AT", "SP", "RKD", "AFD", "DKD", "ARCTIC − ARM"):
        assert f"| {label} |" in table
    # a one-epoch teacher on two classes is weak (its loss still near ln 2): flagged, with its warnings
    assert "| RGB teacher ⚠ weak |" in table and "training loss did not fall enough" in table
    warned = saved["protocols"]["ntu60-xsub"]["rgb_teacher"]["health"]["warnings"]["0"]
    assert any("training loss did not fall enough" in warning for warning in warned)
    mv = record["multiview_top1"]
    assert 0 <= mv <= 100 and methods["kd"]["multiview_top1"]["values"] == [mv]
    assert f"| KD | IR | {record['top1']:.1f} ± 0.0 | {record['top5']:.1f} ± 0.0 | {mv:.1f} ± 0.0 |" in table
    assert (out / "bench.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert record["threads"] == torch.get_num_threads()  # runs are bit-reproducible only at the same count


def test_a_second_invocation_trains_nothing_and_reports_the_same(benched):
    b = benched
    out = b.out
    logs = {p: p.stat().st_mtime_ns for p in out.rglob("metrics.jsonl")}
    calls = []
    with pytest.MonkeyPatch.context() as patch:
        for stage in ("run_train", "run_distill"):
            patch.setattr(runner, stage, _counted(calls, stage, None))
        again = run_bench(
            b.plan, b.variants, b.base, out, progress=False, command="arctic bench --test", dataset=DATASET
        )
    assert calls == []
    assert {p: p.stat().st_mtime_ns for p in out.rglob("metrics.jsonl")} == logs
    assert again["protocols"] == b.summary["protocols"]
    assert bench_markdown(again) == (out / "bench.md").read_text().rstrip("\n")


def test_a_finished_run_with_another_config_is_an_error_not_a_silent_reuse(benched, tmp_path):
    b = benched
    out = tmp_path / "bench"
    shutil.copytree(b.out, out)  # the runs are reused below, so bench.md is rewritten: on a copy
    changed = with_overrides(b.base, ["optim.lr=0.3"])
    with pytest.raises(ArcticError, match=r"rgb_teacher was run with another config \(optim\.lr: 0\.1"):
        run_bench(b.plan, b.variants, changed, out, progress=False)
    # a distillation setting does not concern the teacher or the IR-only run, only the distillation
    changed = with_overrides(b.base, ["distill.hinton.tau=8"])
    with pytest.raises(
        ArcticError, match=r"seed0/kd was run with another config \(distill\.hinton\.tau: 4\.0"
    ):
        run_bench(b.plan, b.variants, changed, out, progress=False)
    # and only the method's own: new ARCTIC settings leave the baselines' runs valid, not ARCTIC's
    changed = with_overrides(b.base, ["distill.kd.tau=2", "distill.arm.dim=32"])
    baselines = BenchPlan(config="demo", protocols=("ntu60-xsub",), seeds=(0,), methods=("kd", "dkd"))
    reused = run_bench(baselines, b.variants, changed, out, progress=False)["protocols"]["ntu60-xsub"]
    for method in ("kd", "dkd"):  # the recorded runs, seconds included: nothing was trained again
        recorded = b.summary["protocols"]["ntu60-xsub"][method]
        assert (reused[method]["top1"], reused[method]["seconds"]) == (recorded["top1"], recorded["seconds"])
    with pytest.raises(
        ArcticError, match=r"seed0/arctic was run with another config \(distill\.arm\.dim: 64"
    ):
        run_bench(b.plan, b.variants, changed, out, progress=False)


def test_the_teacher_and_the_ir_baseline_are_compared_on_what_each_of_them_reads(benched, tmp_path):
    b = benched
    seed0 = tmp_path / "bench" / "ntu60-xsub" / "seed0"
    for name in ("rgb_teacher", "ir_only"):
        shutil.copytree(b.out / "ntu60-xsub" / "seed0" / name, seed0 / name)
    teacher_only = BenchPlan(config="demo", protocols=("ntu60-xsub",), seeds=(0,), methods=("ir_only",))
    # the teacher's schedule spelt another way (its own epochs, unchanged) is the teacher's: only the
    # IR-only run, whose epochs did change, is another config
    respelt = with_overrides(b.base, [f"optim.teacher_epochs={b.base.optim.epochs}", "optim.epochs=2"])
    with pytest.raises(
        ArcticError, match=r"seed0/ir_only was run with another config \(optim\.epochs: 1, now 2"
    ):
        run_bench(teacher_only, b.variants, respelt, tmp_path / "bench", progress=False)
    # a teacher-only setting trains the teacher again and reuses the IR-only run
    shutil.rmtree(seed0 / "rgb_teacher")
    calls = []
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(runner, "run_train", _counted(calls, "run_train", runner.run_train))
        smoothed = with_overrides(b.base, ["optim.teacher_label_smoothing=0.2"])
        run_bench(teacher_only, b.variants, smoothed, tmp_path / "bench", progress=False)
    assert [args[0] for _, _, args in calls] == ["rgb"]


def test_a_run_recorded_before_a_config_key_existed_is_reused_at_that_keys_default(benched, tmp_path):
    b = benched
    out = tmp_path / "bench"
    shutil.copytree(b.out, out)
    record = out / "ntu60-xsub" / "seed0" / "rgb_teacher" / "result.json"
    saved = json.loads(record.read_text())
    del saved["config"]["optim"]["teacher_label_smoothing"]  # as written before the key was added
    del saved["threads"]
    record.write_text(json.dumps(saved))
    teacher_only = BenchPlan(config="demo", protocols=("ntu60-xsub",), seeds=(0,), methods=("ir_only",))
    calls = []
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(runner, "run_train", _counted(calls, "run_train", None))
        reused = run_bench(teacher_only, b.variants, b.base, out, progress=False)["protocols"]["ntu60-xsub"]
        # but a recorded value that differs from the default is still a different config (the teacher's
        # smoothing: its own, or the students' where unset)
        changed = with_overrides(b.base, ["optim.teacher_label_smoothing=0.2"])
        with pytest.raises(
            ArcticError, match=r"rgb_teacher was run .*optim\.label_smoothing: 0\.1, now 0\.2"
        ):
            run_bench(teacher_only, b.variants, changed, out, progress=False)
        saved["config"]["optim"]["momentum_schedule"] = "cosine"  # a key this version does not know
        record.write_text(json.dumps(saved))
        with pytest.raises(ArcticError, match=r"holds a config this version cannot read.*momentum_schedule"):
            run_bench(teacher_only, b.variants, b.base, out, progress=False)
    assert calls == [] and reused["rgb_teacher"]["top1"]["values"] == [saved["top1"]]


_WRONG_TYPES = json.dumps(
    dict(name="rgb_teacher", label="RGB teacher", modality="rgb", protocol="ntu60-xsub", seed=True)
    | dict(top1=90, top5=99.0, seconds=1.0, config=None)
)


@pytest.mark.parametrize(
    ("damage", "reason"),
    [
        ('{"name": "rgb_te', r"not JSON: Unterminated string starting at: line 1 column 10 \(char 9\)"),
        ('{"name": "rgb_teacher"}', "missing: config, label, modality, protocol, seconds, seed, top1, top5"),
        ('{"name": "rgb_teacher", "new_field": 1}', "missing: .*top5; unknown: new_field"),
        ("[1, 2]", "a JSON list, not an object"),
        (_WRONG_TYPES, r"of the wrong type: config \(NoneType\), seed \(bool\)"),  # top1 90: a float
    ],
)
def test_a_damaged_run_record_is_an_error_that_names_it(benched, tmp_path, damage, reason):
    b = benched
    out = tmp_path / "bench"
    shutil.copytree(b.out, out)
    record = out / "ntu60-xsub" / "seed0" / "rgb_teacher" / "result.json"
    record.write_text(damage)
    teacher_only = BenchPlan(config="demo", protocols=("ntu60-xsub",), seeds=(0,), methods=("ir_only",))
    expected = rf"{re.escape(str(record))} is not a finished run's record \({reason}\); delete it"
    with pytest.raises(ArcticError, match=expected):
        run_bench(teacher_only, b.variants, b.base, out, progress=False)


def test_training_next_to_runs_of_another_thread_count_says_so(benched, tmp_path, capsys):
    b = benched
    out = tmp_path / "bench"
    shutil.copytree(
        b.out / "ntu60-xsub" / "seed0" / "rgb_teacher", out / "ntu60-xsub" / "seed0" / "rgb_teacher"
    )
    record = out / "ntu60-xsub" / "seed0" / "rgb_teacher" / "result.json"
    saved = json.loads(record.read_text())
    saved["threads"] = torch.get_num_threads() + 1
    record.write_text(json.dumps(saved))
    ir_only = BenchPlan(config="demo", protocols=("ntu60-xsub",), seeds=(0,), methods=("ir_only",))
    run_bench(ir_only, b.variants, b.base, out, progress=False)
    printed = capsys.readouterr().out
    assert f"1 of 1 recorded runs trained at {saved['threads']} threads" in printed
    run_bench(ir_only, b.variants, b.base, out, progress=False)  # nothing to train: nothing to compare
    assert "threads" not in capsys.readouterr().out


def test_an_unfinished_run_is_cleared_and_trained_again(benched, tmp_path):
    b = benched
    out = b.out
    single = BenchPlan(config="demo", protocols=("ntu60-xsub",), seeds=(0,), methods=("kd",))
    copy = tmp_path / "bench"
    for name in ("rgb_teacher", "kd"):  # run folders hold files and a tensorboard/ folder
        shutil.copytree(out / "ntu60-xsub" / "seed0" / name, copy / "ntu60-xsub" / "seed0" / name)
    (copy / "ntu60-xsub" / "seed0" / "kd" / "result.json").unlink()  # as if interrupted after epoch 1
    run_bench(single, b.variants, b.base, copy, progress=False)
    lines = (copy / "ntu60-xsub" / "seed0" / "kd" / "metrics.jsonl").read_text().splitlines()
    assert len(lines) == 1  # trained again from scratch, not appended to the old log


def test_the_cli_lists_methods_and_rejects_unknown_names_in_one_line(capsys, tmp_path):
    assert main(["bench", "--list"]) == 0
    listing = capsys.readouterr().out
    assert "arctic-no-kd" in listing and "distill.kd.weight=0" in listing and "quick" in listing
    assert main(["bench", "--methods", "crd", "--out", str(tmp_path)]) == 2
    assert "arctic bench: error: unknown method 'crd'; known:" in capsys.readouterr().err
    extra = tmp_path / "mine.yaml"
    extra.write_text("kd-hot: {label: KD τ=8, set: [distill.method=kd, distill.hinton.tau=8]}\n")
    assert main(["bench", "--list", "--variants", str(extra)]) == 0
    assert "KD τ=8" in capsys.readouterr().out
    assert main(["bench", "--preset", "variants"]) == 2
    assert "no such bench file or preset" in capsys.readouterr().err


def test_a_variant_file_with_a_typo_names_the_file_and_the_key(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("kd: {label: KD, sett: [distill.method=kd]}\n")
    with pytest.raises(ArcticError, match=r"bad\.yaml: kd: unknown key 'sett'"):
        load_variants(Path(bad))


def test_a_real_dataset_is_benched_as_it_is_and_never_rendered_into(tiny_dataset, tmp_path, capsys):
    real = tmp_path / "ntu60"
    shutil.copytree(tiny_dataset, real)
    (real / "synth.json").unlink()  # what a real NTU RGB+D root looks like to the bench
    videos = {p: p.stat().st_mtime_ns for p in real.rglob("*.avi")}
    sets = [arg for item in TINY for arg in ("--set", item)]
    plan = ["--methods", "ir_only", "--seeds", "0", "--protocols", "ntu60-xsub", "--config", "demo"]
    cached = ["--set", "data.cache=true"]  # after TINY's data.cache=false
    assert main(["bench", *plan, "--data", str(real), "--out", str(tmp_path / "b"), *sets, *cached]) == 0
    said = capsys.readouterr()
    assert f"using the dataset in {real} as it is" in said.err + said.out
    assert "data.cache is on: every video of the protocol is decoded into memory" in said.err + said.out
    assert f"Data: {real} (ntu layout, used as it is)." in (tmp_path / "b" / "bench.md").read_text()
    assert {p: p.stat().st_mtime_ns for p in real.rglob("*.avi")} == videos
    assert not (real / "synth.json").exists()
