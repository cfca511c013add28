"""The `arctic` command: parse arguments, call one library function per subcommand, report errors plainly."""

from __future__ import annotations

import argparse
import dataclasses
import sys
from collections.abc import Sequence
from pathlib import Path

from arctic_kd import __version__
from arctic_kd.errors import ArcticError

DEFAULT_DATA = Path("data/synth")
CONFIG_DIR = Path(__file__).resolve().parents[2] / "configs"

DESCRIPTION = """\
arctic-kd: teach an infrared (IR) action recogniser with an RGB video teacher (ARCTIC distillation).

Data is paired RGB + IR video in the NTU RGB+D layout:
  ROOT/nturgb+d_rgb/SsssCcccPpppRrrrAaaa_rgb.avi
  ROOT/nturgb+d_ir/SsssCcccPpppRrrrAaaa_ir.avi
  ROOT/nturgb+d_skeletons/SsssCcccPpppRrrrAaaa.skeleton
`arctic synth` renders such a dataset, so everything runs without downloading anything. PKU-MMD phase 1
(`--set data.dataset=pkummd`) and any rig listed in a CSV manifest (`--set data.dataset=manifest`) work too.

Typical session:
  arctic demo                               # synthetic data, then a check of the whole data path
  arctic synth data/synth --performers 20   # a bigger synthetic dataset
  arctic check /datasets/ntu60 --protocol ntu60-xsub --split test
"""

SYNTH_DESCRIPTION = """\
Render a synthetic NTU RGB+D dataset: an articulated Kinect-25 figure performing actions, seen by three
Kinect-like sensors (16:9 RGB, 512:424 IR), with .skeleton files whose colour and depth pixel coordinates
match the rendered frames. Some classes share a motion and differ only by a small held object, vivid in
RGB and faint in IR. The same seed gives the same decoded frames; an existing dataset made with the same
options is kept.

--layout pkummd writes PKU-MMD phase 1's layout instead: long recordings (each subject performs every
class in a row, with idle gaps) named 0002-L.avi, label files of label,start,end,confidence rows and the
cross-subject / cross-view split files.

  arctic synth data/synth
  arctic synth data/pku --layout pkummd --performers 6 --num-classes 5
  arctic check data/pku --dataset pkummd --protocol pkummd-xview
"""

CHECK_DESCRIPTION = """\
Walk a dataset the way training will: index it (reporting samples that miss a modality), count the
train/test split of every protocol, parse the skeleton files (NTU) and decode paired RGB+IR clips of one
split through a DataLoader. Bad files are listed at the end with the reason; the exit status is 1 if any
sample misses a modality or is bad. Works on NTU RGB+D folders, PKU-MMD phase 1 (label rows become clips;
a malformed label or split line is an error naming file and line) and CSV manifests.

  arctic check /data/ntu60 --protocol ntu60-xview --split train
  arctic check /data/pkummd --dataset pkummd --protocol pkummd-xview
  arctic check /data/pkummd --dataset pkummd --set data.pkummd.ir=Data/IR_VIDEO/{video}   # PNG folders
  arctic check rig/manifest.csv --dataset manifest --set data.class_names=rig/classes.txt
"""

DEMO_DESCRIPTION = """\
The whole job on synthetic data, in minutes on a laptop CPU:
  1. render the default synthetic NTU dataset into DATA (skipped when DATA already holds it);
  2. train the RGB teacher;            3. train the IR-only baseline (same network as the student);
  4. distil the frozen teacher into the IR student with ARCTIC;
  5. print a table (method, modality, top-1, top-5, wall time) and write OUT/results.json.
Accuracies are the final epoch's, on the cross-subject test split (performers never seen in training).
"""

TRAIN_DESCRIPTION = """\
Train one network with cross-entropy on one modality: --modality rgb trains the teacher (config section
`teacher`), --modality ir the IR-only baseline (section `student`). Writes OUT/last.pt, OUT/best.pt and
OUT/metrics.jsonl (one line per epoch).

  arctic train --modality rgb --out runs/teacher
  arctic train --modality rgb --out runs/teacher --set data.root=/data/ntu60 --set teacher.depth=18
"""

DISTILL_DESCRIPTION = """\
Distil a frozen RGB teacher into an IR student: L = CE + λ_arm·ARM + λ_arc·ARC + λ_kd·KD (config section
`distill`; set a weight to 0 to switch that part off).

  arctic distill --teacher runs/teacher/last.pt --out runs/arctic
  arctic distill --teacher runs/teacher/last.pt --out runs/arm-attention --set distill.arm.value=attention
"""

EVAL_DESCRIPTION = """\
Evaluate a checkpoint on the test split of its dataset and protocol: by default those of the config stored
in the checkpoint; --config and --set point it elsewhere (e.g. --set data.root=/data/ntu60).
"""

BENCH_DESCRIPTION = """\
Run the demo pipeline (teacher, IR-only, ARCTIC) for several training seeds on the same synthetic data and
report mean ± std of top-1 and top-5 per method. Finished seeds are not run again (resumable). Writes
OUT/bench.json and OUT/bench.md.
"""


def _size(text: str) -> tuple[int, int]:
    try:
        width, height = (int(v) for v in text.lower().replace("×", "x").split("x"))
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected WIDTHxHEIGHT, e.g. 256x144, got {text!r}") from None
    return width, height


def _add_synth_options(parser: argparse.ArgumentParser) -> None:
    """One option per SynthConfig knob, with the knob's own help and default."""
    from arctic_kd.data.synth import SynthConfig

    group = parser.add_argument_group("dataset size and difficulty")
    for knob in dataclasses.fields(SynthConfig):
        kind = _size if knob.type in ("tuple[int, int]", tuple[int, int]) else type(knob.default)
        shown = "x".join(map(str, knob.default)) if isinstance(knob.default, tuple) else knob.default
        group.add_argument(
            f"--{knob.name.replace('_', '-')}",
            type=kind,
            default=knob.default,
            metavar={_size: "WxH", int: "N", float: "X"}[kind],
            help=f"{knob.metadata['help']} (default: {shown})",
        )


def _synth_config(args: argparse.Namespace):
    from arctic_kd.data.synth import SynthConfig

    try:
        return SynthConfig(**{k.name: getattr(args, k.name) for k in dataclasses.fields(SynthConfig)})
    except ValueError as error:
        raise ArcticError(str(error)) from None


def cmd_synth(args: argparse.Namespace) -> int:
    from arctic_kd.data.synth import generate, is_rendered

    config = _synth_config(args)
    if args.layout == "pkummd":
        return _synth_pkummd(args, config)
    if is_rendered(args.root, config) and not args.force:
        print(
            f"{args.root} already holds this synthetic dataset ({len(config.sample_names())} samples); "
            "--force renders it again"
        )
        return 0
    generate(args.root, config, workers=args.workers)
    print(f"wrote {len(config.sample_names())} samples ({config.num_classes} classes) to {args.root}")
    return 0


def _synth_pkummd(args: argparse.Namespace, config) -> int:
    from arctic_kd.data.synth import pkummd

    count = (
        f"{len(pkummd.recordings(config)) * config.cameras} videos, {pkummd.instance_count(config)} instances"
    )
    if pkummd.is_rendered(args.root, config, args.ir_frames) and not args.force:
        print(f"{args.root} already holds this synthetic PKU-MMD dataset ({count}); --force renders it again")
        return 0
    try:
        pkummd.generate(args.root, config, args.ir_frames, workers=args.workers)
    except ValueError as error:
        raise ArcticError(str(error)) from None
    print(f"wrote {count} ({config.num_classes} classes) in the PKU-MMD layout to {args.root}")
    return 0


def cmd_check(args: argparse.Namespace) -> int:
    from arctic_kd.config import load_config
    from arctic_kd.data.check import check_dataset
    from arctic_kd.data.loaders import DATASET_PROTOCOLS

    data = load_config(resolve_config(args.config) if args.config else None, args.set).data
    data.dataset = args.dataset or data.dataset
    protocols = DATASET_PROTOCOLS[data.dataset]
    protocol = args.protocol or (data.protocol if data.protocol in protocols else protocols[0])
    report = check_dataset(
        args.root,
        protocol=protocol,
        subset=args.split,
        drop_missing_skeletons=args.drop_missing_skeletons,
        num_frames=args.frames,
        size=args.size,
        batch_size=args.batch_size,
        workers=args.workers,
        skip_bad=args.skip_bad,
        limit=args.limit,
        data=data,
    )
    print("\n".join(report.lines()))
    return 0 if report.ok else 1


def _config(args: argparse.Namespace):
    from arctic_kd.config import load_config

    return load_config(resolve_config(args.config), args.set)


def resolve_config(name: str) -> Path:
    """A config file path, or the name of a preset in the repository's configs/ folder."""
    path = Path(name)
    if path.is_file():
        return path
    preset = CONFIG_DIR / f"{name}.yaml"
    if preset.is_file():
        return preset
    presets = ", ".join(sorted(p.stem for p in CONFIG_DIR.glob("*.yaml")))
    raise ArcticError(f"{name}: no such config file or preset (presets: {presets})")


def cmd_train(args: argparse.Namespace) -> int:
    from arctic_kd.engine.stages import run_train

    config = _config(args)
    result = run_train(config, args.modality, args.out)
    _print_result(result, args.out)
    return 0


def cmd_distill(args: argparse.Namespace) -> int:
    from arctic_kd.engine.stages import run_distill

    config = _config(args)
    if args.teacher:
        config.distill.teacher = str(args.teacher)
    if not config.distill.teacher:
        raise ArcticError("distill needs a teacher checkpoint: --teacher runs/teacher/last.pt")
    result = run_distill(config, args.out)
    _print_result(result, args.out)
    return 0


def _print_result(result: dict, out: Path) -> None:
    final, best = result["final"], result["best"]
    print(
        f"final (epoch {final['epoch']}): top-1 {final['top1']:.1f}  top-5 {final['top5']:.1f}  "
        f"mean class {final['mean_class']:.1f}   best top-1 {best['top1']:.1f} (epoch {best['epoch']})"
    )
    print(f"checkpoints: {out / 'last.pt'}, {out / 'best.pt'}; log: {out / 'metrics.jsonl'}")
    for sample, problem in result["skipped"].items():
        print(f"skipped {sample}: {problem}")


def cmd_eval(args: argparse.Namespace) -> int:
    import json

    from arctic_kd.engine.checkpoint import load_checkpoint
    from arctic_kd.engine.stages import run_eval

    config = _config(args) if args.config else _checkpoint_config(load_checkpoint(args.checkpoint), args.set)
    metrics = run_eval(args.checkpoint, config)
    if args.json:
        print(json.dumps(metrics))
        return 0
    print(
        f"{args.checkpoint}: {metrics['samples']} test clips of {config.data.root} ({config.data.protocol})"
    )
    print(f"top-1 {metrics['top1']:.1f}  top-5 {metrics['top5']:.1f}  mean class {metrics['mean_class']:.1f}")
    return 0


def _checkpoint_config(checkpoint: dict, overrides: list[str]):
    """The config a checkpoint was trained with, so `arctic eval ckpt` alone re-tests it on its own split."""
    from arctic_kd.config import apply_overrides, config_from_dict

    return config_from_dict(apply_overrides(checkpoint["config"], overrides))


def cmd_demo(args: argparse.Namespace) -> int:
    from arctic_kd.data.synth import SynthConfig
    from arctic_kd.demo import Row, gap_sentence, run_demo, table

    config = _config(args)
    config.data.root = str(args.data)
    results = run_demo(config, args.out, SynthConfig(seed=args.synth_seed))
    print(table([Row(**r) for r in results["rows"]]))
    print(gap_sentence(results["gap_recovered"]))
    print(f"total {results['seconds'] / 60:.1f} min; results: {args.out / 'results.json'}")
    return 0


def cmd_bench(args: argparse.Namespace) -> int:
    from arctic_kd.data.synth import SynthConfig
    from arctic_kd.demo import bench_table, run_bench

    config = _config(args)
    config.data.root = str(args.data)
    summary = run_bench(config, args.out, SynthConfig(seed=args.synth_seed), args.seeds)
    print(bench_table(summary))
    print(f"written: {args.out / 'bench.json'}, {args.out / 'bench.md'}")
    return 0


def _add_config_options(parser: argparse.ArgumentParser, default: str | None = "demo") -> None:
    parser.add_argument(
        "--config",
        default=default,
        metavar="FILE|PRESET",
        help="YAML config, or a preset name from configs/ (default: %(default)s)",
    )
    parser.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="override a config value, e.g. --set optim.epochs=30 --set data.root=/data/ntu60 "
        "(repeatable; values are YAML)",
    )


def _add_check_options(parser: argparse.ArgumentParser) -> None:
    from arctic_kd.data.loaders import DATASET_PROTOCOLS

    parser.add_argument(
        "root",
        type=Path,
        help="dataset folder (NTU: holding nturgb+d_rgb/, nturgb+d_ir/, ...; PKU-MMD: holding Data/, Split/, "
        "...), or the CSV file of a manifest",
    )
    parser.add_argument(
        "--dataset",
        choices=tuple(DATASET_PROTOCOLS),
        default=None,
        help="what ROOT holds (default: data.dataset of the config, ntu)",
    )
    parser.add_argument(
        "--protocol",
        choices=[p for names in DATASET_PROTOCOLS.values() for p in names],
        default=None,
        help="evaluation protocol whose split is decoded (default: the config's data.protocol when it "
        "belongs to the dataset, else ntu60-xsub, pkummd-xsub or manifest-split)",
    )
    parser.add_argument(
        "--split", choices=("train", "test"), default="test", help="which side (default: %(default)s)"
    )
    parser.add_argument(
        "--drop-missing-skeletons",
        action="store_true",
        help="leave out the official samples without skeletons (as skeleton-based work does)",
    )
    parser.add_argument(
        "--frames", type=int, default=8, metavar="T", help="frames per clip (default: %(default)s)"
    )
    parser.add_argument(
        "--size", type=int, default=112, metavar="PX", help="clip side, pixels (default: %(default)s)"
    )
    parser.add_argument(
        "--batch-size", type=int, default=8, metavar="N", help="clips per batch (default: %(default)s)"
    )
    parser.add_argument(
        "--workers",
        type=int,
        default=2,
        metavar="N",
        help="DataLoader worker processes (default: %(default)s)",
    )
    parser.add_argument(
        "--limit", type=int, default=None, metavar="N", help="decode only the first N samples"
    )
    parser.add_argument(
        "--stop-on-bad",
        dest="skip_bad",
        action="store_false",
        help="stop at the first bad sample instead of listing every one at the end",
    )
    _add_config_options(parser, default=None)


def _command(commands, name: str, run, summary: str, description: str) -> argparse.ArgumentParser:
    parser = commands.add_parser(
        name, help=summary, description=description, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.set_defaults(run=run)
    return parser


def _add_synthetic_run_options(parser: argparse.ArgumentParser, out: str) -> None:
    """Options shared by the commands that run the whole pipeline on synthetic data."""
    parser.add_argument(
        "--data", type=Path, default=DEFAULT_DATA, help="synthetic dataset folder (default: %(default)s)"
    )
    parser.add_argument("--out", type=Path, default=Path(out), help="run folder (default: %(default)s)")
    parser.add_argument(
        "--synth-seed", type=int, default=0, help="seed of the synthetic dataset (default: %(default)s)"
    )
    _add_config_options(parser)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="arctic", description=DESCRIPTION, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--version", action="version", version=f"arctic-kd {__version__}")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)

    synth = _command(
        commands,
        "synth",
        cmd_synth,
        "render a synthetic paired RGB+IR dataset in the NTU RGB+D layout",
        SYNTH_DESCRIPTION,
    )
    synth.add_argument(
        "root", nargs="?", type=Path, default=DEFAULT_DATA, help="output folder (default: %(default)s)"
    )
    synth.add_argument("--workers", type=int, default=None, help="parallel processes (default: one per core)")
    synth.add_argument(
        "--force", action="store_true", help="render again even if ROOT already holds this dataset"
    )
    synth.add_argument(
        "--layout",
        choices=("ntu", "pkummd"),
        default="ntu",
        help="ntu: one short video per sample (default); pkummd: long recordings of several actions with "
        "label and split files, as PKU-MMD phase 1 (performers = subjects, replications = recordings "
        "per subject, num-classes = actions per recording, cameras = views M, L, R)",
    )
    synth.add_argument(
        "--ir-frames",
        choices=("avi", "png"),
        default="avi",
        help="pkummd layout: IR as AVI files (default) or as folders of per-frame PNGs "
        "(read them with --set data.pkummd.ir=Data/IR_VIDEO/{video})",
    )
    _add_synth_options(synth)

    check = _command(
        commands,
        "check",
        cmd_check,
        "index a dataset, count protocol splits, decode paired clips and report bad samples",
        CHECK_DESCRIPTION,
    )
    _add_check_options(check)

    train = _command(
        commands,
        "train",
        cmd_train,
        "train one modality with cross-entropy (RGB teacher, IR baseline)",
        TRAIN_DESCRIPTION,
    )
    train.add_argument(
        "--modality",
        choices=("rgb", "ir"),
        required=True,
        help="rgb trains the teacher network, ir the IR-only student baseline",
    )
    train.add_argument("--out", type=Path, required=True, help="run folder for checkpoints and logs")
    _add_config_options(train)

    distill = _command(
        commands,
        "distill",
        cmd_distill,
        "distil a frozen RGB teacher into an IR student (ARCTIC)",
        DISTILL_DESCRIPTION,
    )
    distill.add_argument("--teacher", type=Path, help="teacher checkpoint (overrides distill.teacher)")
    distill.add_argument("--out", type=Path, required=True, help="run folder for checkpoints and logs")
    _add_config_options(distill)

    evaluate = _command(commands, "eval", cmd_eval, "test-split accuracy of a checkpoint", EVAL_DESCRIPTION)
    evaluate.add_argument("checkpoint", type=Path)
    evaluate.add_argument("--json", action="store_true", help="print the metrics as one JSON line")
    _add_config_options(evaluate, default=None)

    demo = _command(
        commands,
        "demo",
        cmd_demo,
        "the whole job on synthetic data: synth, teacher, IR baseline, ARCTIC",
        DEMO_DESCRIPTION,
    )
    _add_synthetic_run_options(demo, "runs/demo")

    bench = _command(
        commands,
        "bench",
        cmd_bench,
        "the demo pipeline over several seeds: mean ± std per method",
        BENCH_DESCRIPTION,
    )
    bench.add_argument(
        "--seeds", type=int, nargs="+", default=[0, 1, 2], help="training seeds (default: 0 1 2)"
    )
    _add_synthetic_run_options(bench, "runs/bench")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return args.run(args)
    except ArcticError as error:
        print(f"arctic {args.command}: error: {error}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"arctic {args.command}: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
