"""Commands that run whole experiments on (by default) synthetic data: `demo`, `bench` and `tune`."""

from __future__ import annotations

import argparse
from pathlib import Path

from arctic_kd.cli.common import DEFAULT_DATA, add_config_options, command, config_from_args
from arctic_kd.errors import ArcticError
from arctic_kd.presets import BENCH_PRESETS, TUNE_PRESETS, VARIANTS_FILE, preset_names, resolve_config

DEMO_DESCRIPTION = """\
The whole job on synthetic data, in minutes on a laptop CPU:
  1. render the default synthetic NTU dataset into DATA (skipped when DATA already holds it);
  2. train the RGB teacher;            3. train the IR-only baseline (same network as the student);
  4. distil the frozen teacher into the IR student with ARCTIC;
  5. print a table (method, modality, top-1, top-5, multi-view top-1, wall time) and write
     OUT/results.json.
Accuracies are the final epoch's, on the cross-subject test split (performers never seen in training);
top-1/top-5 are single-clip, multi-view top-1 averages the data.test_clips × data.test_crops views.
"""


def add_demo(commands) -> None:
    demo = command(
        commands,
        "demo",
        cmd_demo,
        "the whole job on synthetic data: synth, teacher, IR baseline, ARCTIC",
        DEMO_DESCRIPTION,
    )
    _add_synthetic_run_options(demo, "runs/demo")


def cmd_demo(args: argparse.Namespace) -> int:
    from arctic_kd.engine.health import warning_lines
    from arctic_kd.experiments.demo import asked_synth, gap_sentence, run_demo
    from arctic_kd.experiments.tables import demo_table

    config = config_from_args(args)
    config.data.root = str(args.data)
    result = run_demo(config, args.out, asked_synth(args.synth_seed))
    print(demo_table(result.records))
    print(gap_sentence(result.gap_recovered))
    for line in warning_lines(result.records[0].teacher_warnings):
        print(line)
    print(f"total {result.seconds / 60:.1f} min; results: {args.out / 'results.json'}")
    return 0


BENCH_DESCRIPTION = """\
Compare distillation methods on the synthetic dataset (or a real one: --data): every method × seed ×
protocol of a bench preset (`arctic bench --list`), one RGB teacher per protocol and seed shared by all its
methods. Finished runs are recorded (OUT/PROTOCOL/seedN/METHOD/result.json) and not run again, so an
interrupted bench resumes.
Writes OUT/bench.json, OUT/bench.md (top-1 and top-5 mean ± std, wall time per run; with ARCTIC in the
plan, each method's per-seed difference from it on the same teacher, ± its standard error, with its 95 %
interval, and per protocol the smallest paired difference the run resolves at 95 %: a difference far
smaller than the spread of the means can be resolved this way) and OUT/bench.png. Accuracies are the
final epoch's on the test split; --variants OUT/tuned.yaml of `arctic tune` runs the tuned weights.
bench.md ends with the RGB teachers: mean, weakest seed, seeds not above IR-only, and warnings of a
teacher that looks weak. A preset's `renders` (name → `arctic synth` settings) are rendered into
DATA/NAME and each benched like a protocol of its own, in OUT/NAME.

Methods are named variants (the package's configs/bench/variants.yaml): sets of --set overrides, e.g.
arctic-no-arm is `distill.method=arctic distill.arm.weight=0`. `arctic bench --list` shows them all.

  arctic bench                                   # preset `full`: 12 methods, 3 seeds, xsub and xview
  arctic bench --preset quick                    # every method × 3 seeds on cross-subject, shorter runs
  arctic bench --methods ir_only kd arctic --seeds 0 --protocols ntu60-xsub --out runs/try
  arctic bench --preset ablations --set distill.arc.rho=0.5 --out runs/rho05
  arctic bench --preset ablations --config ntu --data /data/ntu60 --out runs/ntu60   # a real dataset
  arctic bench --preset robustness --data data/robustness --out runs/robustness   # teachers on 4 renders
"""


def add_bench(commands) -> None:
    bench = command(
        commands,
        "bench",
        cmd_bench,
        "compare methods over seeds and protocols: tables, JSON and a plot (resumable)",
        BENCH_DESCRIPTION,
    )
    _add_plan_options(
        bench,
        ("bench", BENCH_PRESETS, "full"),
        "methods to run (replaces the preset's)",
        "YAML file of extra or changed methods, in the layout of the shipped variants.yaml (see --list)",
    )
    bench.add_argument("--protocols", nargs="+", metavar="NAME", help="protocols (replaces the preset's)")
    bench.add_argument("--list", action="store_true", help="list the known methods and presets, then exit")
    _add_synthetic_run_options(
        bench,
        "runs/bench",
        None,
        "the preset's `config`, e.g. demo",
        "dataset folder: a synthetic render (made if absent), or a real NTU RGB+D or PKU-MMD root without "
        "synth.json, used as it is",
    )


def cmd_bench(args: argparse.Namespace) -> int:
    import shlex

    from arctic_kd.experiments.bench import (
        bench_dataset,
        build_base,
        check_plan,
        describe,
        load_plan,
        load_variants,
        run_bench,
    )
    from arctic_kd.experiments.demo import asked_synth
    from arctic_kd.experiments.tables import bench_markdown

    variants = load_variants(VARIANTS_FILE, *args.variants)
    if args.list:
        print(describe(variants))
        return 0
    plan = load_plan(args.preset)
    for key in ("methods", "seeds", "protocols"):
        if getattr(args, key):
            setattr(plan, key, tuple(getattr(args, key)))
    check_plan(plan, variants)
    base = build_base(plan, resolve_config(args.config or plan.config), args.set, str(args.data))
    if plan.renders and args.synth_seed is not None:
        raise ArcticError(
            f"--synth-seed: the preset's renders ({', '.join(plan.renders)}) set their own seeds"
        )
    dataset = "" if plan.renders else bench_dataset(args.data, asked_synth(args.synth_seed), base)
    summary = run_bench(
        plan, variants, base, args.out, command="arctic " + shlex.join(args.argv), dataset=dataset
    )
    print(bench_markdown(summary))
    print(f"written: {args.out / 'bench.json'}, {args.out / 'bench.md'}, {args.out / 'bench.png'}")
    return 0


TUNE_DESCRIPTION = """\
Give every method the same tuning budget: for each method of a tune preset, a small grid over its main
loss weight(s) (one weight: ×0.1, ×0.3, ×1, ×3, ×10 of its default; two, such as ARCTIC's λ_arm and λ_kd:
the defaults and the four corners at ×0.3 and ×3, as many points), each point trained for every seed of
the preset on one RGB teacher per seed, and scored by its final epoch's top-1 on the VALIDATION split
(data.val, carved out of the training split); the test split chooses nothing. Finished runs are recorded
and reused, as in `arctic bench`, so an interrupted tune resumes.
Writes OUT/tuned.yaml (the chosen settings, with every ablation of a tuned method on top of them, as a
variants file: `arctic bench --variants OUT/tuned.yaml`), OUT/tune.md and OUT/tune.json (the whole grid).

  arctic tune                                    # preset `demo`: 8 methods × 5 points × 2 seeds, ~2.5 h
  arctic tune --methods kd arctic --seeds 0 --out runs/tune-try
  arctic bench --variants runs/tune/tuned.yaml --seeds 0 1 2 3 4 --out runs/tuned
"""


def add_tune(commands) -> None:
    tune = command(
        commands,
        "tune",
        cmd_tune,
        "the same loss-weight grid for every method, scored on the validation split (resumable)",
        TUNE_DESCRIPTION,
    )
    _add_plan_options(
        tune,
        ("tune", TUNE_PRESETS, "demo"),
        "tune only these methods of the preset",
        "YAML file of extra or changed methods, as for `arctic bench --variants`",
    )
    _add_synthetic_run_options(tune, "runs/tune", None, "the preset's `config`, e.g. demo")


def cmd_tune(args: argparse.Namespace) -> int:
    import shlex

    from arctic_kd.errors import ArcticError
    from arctic_kd.experiments.bench import bench_dataset, build_base, load_variants
    from arctic_kd.experiments.demo import asked_synth
    from arctic_kd.experiments.tune import load_tune_plan, run_tune, tune_markdown

    plan = load_tune_plan(args.preset)
    if args.methods:
        unknown = [m for m in args.methods if m not in plan.methods]
        if unknown:
            raise ArcticError(
                f"--methods: {unknown[0]!r} is not in the tune preset ({', '.join(plan.methods)})"
            )
        plan.methods = {m: plan.methods[m] for m in args.methods}
    if args.seeds:
        plan.seeds = tuple(args.seeds)
    variants = load_variants(VARIANTS_FILE, *args.variants)
    base = build_base(plan, resolve_config(args.config or plan.config), args.set, str(args.data))
    bench_dataset(args.data, asked_synth(args.synth_seed), base)
    summary = run_tune(plan, variants, base, args.out, command="arctic " + shlex.join(args.argv))
    print(tune_markdown(summary))
    print(f"written: {args.out / 'tuned.yaml'}, {args.out / 'tune.md'}, {args.out / 'tune.json'}")
    return 0


def _add_plan_options(
    parser: argparse.ArgumentParser, preset: tuple[str, Path, str], methods_help: str, variants_help: str
) -> None:
    """The options `bench` and `tune` share: the plan preset (kind, folder, default), the methods and seeds
    that replace the preset's, and variants files."""
    kind, folder, default = preset
    parser.add_argument(
        "--preset",
        default=default,
        metavar="NAME|FILE",
        help=f"{kind} preset ({', '.join(preset_names(folder))}) or a YAML file (default: %(default)s)",
    )
    parser.add_argument("--methods", nargs="+", metavar="NAME", help=methods_help)
    parser.add_argument(
        "--seeds", type=int, nargs="+", metavar="N", help="training seeds (replaces the preset's)"
    )
    parser.add_argument(
        "--variants", type=Path, action="append", default=[], metavar="FILE", help=variants_help
    )


def _add_synthetic_run_options(
    parser: argparse.ArgumentParser,
    out: str,
    config: str | None = "demo",
    config_help: str = "%(default)s",
    data_help: str = "synthetic dataset folder",
) -> None:
    """Options shared by the commands that run the whole pipeline on synthetic data."""
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA, help=f"{data_help} (default: %(default)s)")
    parser.add_argument("--out", type=Path, default=Path(out), help="run folder (default: %(default)s)")
    parser.add_argument(
        "--synth-seed",
        type=int,
        help="seed of the synthetic dataset to render into an empty --data (default: 0); without it, a "
        "synthetic dataset already in --data is used whatever its settings, and with it, one of other "
        "settings is an error",
    )
    add_config_options(parser, config, config_help)
