"""Commands that run whole experiments on (by default) synthetic data: `demo` and `bench`."""

from __future__ import annotations

import argparse
from pathlib import Path

from arctic_kd.cli.common import DEFAULT_DATA, add_config_options, command, config_from_args
from arctic_kd.errors import ArcticError
from arctic_kd.presets import BENCH_PRESETS, VARIANTS_FILE, preset_names, resolve_config

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
plan, each method's per-seed difference from it on the same teacher, ± its standard error: a difference
far smaller than the spread of the means can be resolved this way) and OUT/bench.png. bench.md ends with
the RGB teachers: mean, weakest seed, seeds not above IR-only, and warnings of a teacher that looks weak.
A preset's `renders` (name → `arctic synth` settings) are rendered into DATA/NAME and each benched like a
protocol of its own, in OUT/NAME.

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
    bench.add_argument(
        "--preset",
        default="full",
        metavar="NAME|FILE",
        help=f"bench preset ({', '.join(preset_names(BENCH_PRESETS))}) or a YAML file (default: %(default)s)",
    )
    bench.add_argument("--methods", nargs="+", metavar="NAME", help="methods to run (replaces the preset's)")
    bench.add_argument(
        "--seeds", type=int, nargs="+", metavar="N", help="training seeds (replaces the preset's)"
    )
    bench.add_argument("--protocols", nargs="+", metavar="NAME", help="protocols (replaces the preset's)")
    bench.add_argument(
        "--variants",
        type=Path,
        action="append",
        default=[],
        metavar="FILE",
        help="YAML file of extra or changed methods, in the layout of the shipped variants.yaml (see --list)",
    )
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
