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

DESCRIPTION = """\
arctic-kd: teach an infrared (IR) action recogniser with an RGB video teacher (ARCTIC distillation).

Data is paired RGB + IR video in the NTU RGB+D layout:
  ROOT/nturgb+d_rgb/SsssCcccPpppRrrrAaaa_rgb.avi
  ROOT/nturgb+d_ir/SsssCcccPpppRrrrAaaa_ir.avi
  ROOT/nturgb+d_skeletons/SsssCcccPpppRrrrAaaa.skeleton
`arctic synth` renders such a dataset, so everything runs without downloading anything.

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
"""

CHECK_DESCRIPTION = """\
Walk a dataset the way training will: index the NTU folders (reporting samples that miss a modality),
count the train/test split of every protocol, parse the skeleton files and decode paired RGB+IR clips of
one split through a DataLoader. Bad files are listed at the end with the reason; the exit status is 1 if
any sample misses a modality or is bad.
"""

DEMO_DESCRIPTION = """\
Render the default synthetic dataset (unless DATA already holds it) and check the data path on its
cross-subject test split. Training, distillation and the results table join as they land.
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
    if is_rendered(args.root, config) and not args.force:
        print(
            f"{args.root} already holds this synthetic dataset ({len(config.sample_names())} samples); "
            "--force renders it again"
        )
        return 0
    generate(args.root, config, workers=args.workers)
    print(f"wrote {len(config.sample_names())} samples ({config.num_classes} classes) to {args.root}")
    return 0


def cmd_check(args: argparse.Namespace) -> int:
    from arctic_kd.data.check import check_dataset

    report = check_dataset(
        args.root,
        protocol=args.protocol,
        subset=args.split,
        drop_missing_skeletons=args.drop_missing_skeletons,
        num_frames=args.frames,
        size=args.size,
        batch_size=args.batch_size,
        workers=args.workers,
        skip_bad=args.skip_bad,
        limit=args.limit,
    )
    print("\n".join(report.lines()))
    return 0 if report.ok else 1


def cmd_demo(args: argparse.Namespace) -> int:
    from arctic_kd.data.check import check_dataset
    from arctic_kd.data.synth import SynthConfig, generate, is_rendered

    config = SynthConfig(seed=args.seed)
    if is_rendered(args.data, config):
        print(f"using the synthetic dataset in {args.data}")
    else:
        print(f"rendering the synthetic dataset into {args.data} ({len(config.sample_names())} samples)")
        generate(args.data, config)
    report = check_dataset(args.data, protocol="ntu60-xsub", subset="test", workers=args.workers)
    print("\n".join(report.lines()))
    return 0 if report.ok else 1


def _add_check_options(parser: argparse.ArgumentParser) -> None:
    from arctic_kd.data.protocols import PROTOCOLS

    parser.add_argument("root", type=Path, help="dataset folder holding nturgb+d_rgb/, nturgb+d_ir/, ...")
    parser.add_argument(
        "--protocol",
        choices=sorted(PROTOCOLS),
        default="ntu60-xsub",
        help="evaluation protocol whose split is decoded (default: %(default)s)",
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


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="arctic", description=DESCRIPTION, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--version", action="version", version=f"arctic-kd {__version__}")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)

    synth = commands.add_parser(
        "synth",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        help="render a synthetic paired RGB+IR dataset in the NTU RGB+D layout",
        description=SYNTH_DESCRIPTION,
    )
    synth.add_argument(
        "root", nargs="?", type=Path, default=DEFAULT_DATA, help="output folder (default: %(default)s)"
    )
    synth.add_argument("--workers", type=int, default=None, help="parallel processes (default: one per core)")
    synth.add_argument(
        "--force", action="store_true", help="render again even if ROOT already holds this dataset"
    )
    _add_synth_options(synth)
    synth.set_defaults(run=cmd_synth)

    check = commands.add_parser(
        "check",
        help="index a dataset, count protocol splits, decode paired clips and report bad samples",
        description=CHECK_DESCRIPTION,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    _add_check_options(check)
    check.set_defaults(run=cmd_check)

    demo = commands.add_parser(
        "demo",
        help="the whole job on synthetic data: synth (unless present), then check",
        description=DEMO_DESCRIPTION,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    demo.add_argument(
        "--data", type=Path, default=DEFAULT_DATA, help="synthetic dataset folder (default: %(default)s)"
    )
    demo.add_argument(
        "--seed", type=int, default=0, help="seed of the synthetic dataset (default: %(default)s)"
    )
    demo.add_argument(
        "--workers", type=int, default=2, metavar="N", help="DataLoader workers (default: %(default)s)"
    )
    demo.set_defaults(run=cmd_demo)
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
