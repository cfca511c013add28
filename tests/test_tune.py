"""`arctic tune`: the same grid for every method, scored on validation, resumable, a variants file out."""

from __future__ import annotations

import json
import math

import pytest

from arctic_kd.cli import main
from arctic_kd.config import load_config
from arctic_kd.errors import ArcticError, ConfigError
from arctic_kd.experiments import runner
from arctic_kd.experiments.bench import build_base, load_plan, load_variants
from arctic_kd.experiments.runner import RunRecord, with_overrides
from arctic_kd.experiments.tune import TunePlan, grid_variants, load_tune_plan, summarise_tune
from arctic_kd.presets import TUNE_PRESETS, VARIANTS_FILE, resolve_config
from tests.test_bench import TINY, _counted


@pytest.mark.parametrize("path", sorted(TUNE_PRESETS.glob("*.yaml")), ids=lambda p: p.name)
def test_every_tune_preset_gives_every_method_the_same_grid_of_valid_runs(path):
    plan = load_tune_plan(str(path))
    base = build_base(plan, resolve_config(plan.config), [], "data/synth")
    grid = grid_variants(plan, load_variants(VARIANTS_FILE), base)
    counts = {m: sum(p["method"] == m for p in grid.values()) for m in plan.methods}
    assert set(counts.values()) == {5} and "arctic" in counts and len(counts) == 8
    for point in grid.values():
        config = with_overrides(base, point["variant"].set)
        for key, value in point["settings"].items():
            section, name = key.rsplit(".", 1)
            assert getattr(_section(config, section), name) == value
    arctic = [p["settings"] for p in grid.values() if p["method"] == "arctic"]
    assert {"distill.arm.weight": 2.0, "distill.kd.weight": 0.25} in arctic  # the defaults are a point
    assert {"distill.arm.weight": 6.0, "distill.kd.weight": 0.075} in arctic
    kd = sorted(p["settings"]["distill.hinton.weight"] for p in grid.values() if p["method"] == "kd")
    assert kd == [0.09, 0.27, 0.9, 2.7, 9.0]


def _section(config, dotted: str):
    for part in dotted.split("."):
        config = getattr(config, part)
    return config


def test_a_plan_with_unequal_budgets_is_refused():
    with pytest.raises(ConfigError, match="same number of grid points: 5 factors but 2 pairs"):
        TunePlan(pairs=((1.0, 1.0), (3.0, 3.0)), methods={"kd": ("distill.hinton.weight",)})
    with pytest.raises(ConfigError, match="tunes 1 key"):
        TunePlan(methods={"arctic": ("distill.arm.weight", "distill.kd.weight")})  # 2 keys need pairs


def _record(name: str, seed: int, val: float, test: float) -> RunRecord:
    return RunRecord(name, name, "ir", "ntu60-xsub", seed, test, 100.0, 1.0, {}, test, 2, val)


def test_the_chosen_point_is_the_best_validation_mean_never_the_best_test():
    plan = TunePlan(factors=(0.3, 1.0, 3.0), seeds=(0, 1), methods={"kd": ("distill.hinton.weight",)})
    grid = grid_variants(plan, load_variants(VARIANTS_FILE), load_config(None))
    names = list(grid)  # kd@0.3, kd@1, kd@3
    scores = {names[0]: ((70, 95), (72, 95)), names[1]: ((80, 60), (60, 60)), names[2]: ((75, 50), (74, 50))}
    records = [_record(n, s, *scores[n][s]) for n in names for s in (0, 1)]
    summary = summarise_tune(plan, grid, records, "")
    assert summary["methods"]["kd"]["chosen"] == names[2]  # mean 74.5, against 71 and 70; test says kd@0.3
    tie = [_record(n, s, 70.0, 0.0) for n in names for s in (0, 1)]
    assert summarise_tune(plan, grid, tie, "")["methods"]["kd"]["chosen"] == names[1]  # a tie: the default
    with pytest.raises(ArcticError, match="recorded no validation accuracy"):
        summarise_tune(plan, grid, [_record(n, s, math.nan, 0.0) for n in names for s in (0, 1)], "")


def test_tune_end_to_end_on_tiny_data_is_resumable_and_writes_a_variants_file(tiny_dataset, tmp_path):
    plan = tmp_path / "plan.yaml"
    plan.write_text(
        "protocol: ntu60-xsub\nseeds: [0]\nfactors: [0.1, 1, 10]\npairs: [[1, 1], [0.3, 3], [3, 0.3]]\n"
        "methods: {kd: [distill.hinton.weight], arctic: [distill.arm.weight, distill.kd.weight]}\n"
        "set: [data.val.enabled=true]\n"  # as the shipped preset: the demo config validates on nothing
    )
    out = tmp_path / "tune"
    args = ["tune", "--preset", str(plan), "--data", str(tiny_dataset), "--out", str(out)]
    args += [arg for setting in TINY for arg in ("--set", setting)]
    calls = []
    with pytest.MonkeyPatch.context() as patch:
        for stage in ("run_train", "run_distill"):
            patch.setattr(runner, stage, _counted(calls, stage, getattr(runner, stage)))
        assert main(args) == 0
    assert [stage for stage, _, _ in calls].count("run_distill") == 6 and len(calls) == 7  # + 1 teacher
    summary = json.loads((out / "tune.json").read_text())
    for method in ("kd", "arctic"):
        points = summary["methods"][method]["points"]
        assert len(points) == 3 and all(0 <= p["mean"] <= 100 for p in points)
        for point in points:
            recorded = json.loads((out / "ntu60-xsub" / "seed0" / point["name"] / "result.json").read_text())
            assert point["val_top1"] == [recorded["val_top1"]]
    assert "**kd**" in (out / "tune.md").read_text()
    tuned = load_variants(out / "tuned.yaml")
    chosen = next(
        p
        for p in summary["methods"]["arctic"]["points"]
        if p["name"] == summary["methods"]["arctic"]["chosen"]
    )
    config = with_overrides(load_config(None), tuned["arctic"].set)
    assert config.distill.arm.weight == chosen["settings"]["distill.arm.weight"]
    ablation = with_overrides(load_config(None), tuned["arctic-no-arm"].set)
    assert (
        ablation.distill.arm.weight == 0
        and ablation.distill.kd.weight == chosen["settings"]["distill.kd.weight"]
    )
    assert tuned["arctic-no-arm"].label == "ARCTIC − ARM" and "fitnets" not in tuned
    calls.clear()
    with pytest.MonkeyPatch.context() as patch:
        for stage in ("run_train", "run_distill"):
            patch.setattr(runner, stage, _counted(calls, stage, None))
        assert main(args) == 0  # every run recorded: nothing trains again
    assert calls == []
    assert main([*args, "--set", "data.val.enabled=false", "--out", str(tmp_path / "none")]) == 2


def test_a_bad_tune_or_bench_plan_file_is_refused_naming_the_file(tmp_path):
    broken = tmp_path / "broken.yaml"
    broken.write_text("methods: [kd\n")
    with pytest.raises(ConfigError, match=f"{broken}: not valid YAML"):
        load_tune_plan(str(broken))
    unknown = tmp_path / "unknown.yaml"
    unknown.write_text("seeds: [0]\nepochs: 3\n")
    with pytest.raises(ConfigError, match=f"{unknown}.*epochs"):
        load_tune_plan(str(unknown))
    render = tmp_path / "render.yaml"
    render.write_text("renders: {faint: {quality: 99}}\n")
    with pytest.raises(ConfigError, match=f"{render}: renders: faint"):
        load_plan(str(render))
