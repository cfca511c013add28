"""Commands about datasets: `synth` renders one, `check` walks one as training will, `prepare` decodes one
into a clip store."""

from __future__ import annotations

import argparse
import dataclasses
from pathlib import Path

from arctic_kd.cli.common import DEFAULT_DATA, add_config_options, command, config_from_args
from arctic_kd.errors import ArcticError

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


def add_synth(commands) -> None:
    synth = command(
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


CHECK_DESCRIPTION = """\
Walk a dataset the way training will: index it (reporting samples that miss a modality), count the
train/test split of every protocol, parse the skeleton files (NTU) and decode paired RGB+IR clips of one
split through a DataLoader. Bad files are listed at the end with the reason; the exit status is 1 if any
sample misses a modality or is bad. Works on NTU RGB+D folders, PKU-MMD phase 1 (label rows become clips;
a malformed label or split line is an error naming file and line) and CSV manifests.

With data.person_crop (the default) NTU clips are decoded as training crops them, and each sample's
person box and RGB→IR registration (fitted, borrowed from its setup/camera, or nominal) are checked:
boxes that are missing, off-frame, tiny or larger than the frame and fits that disagree with their own
joints are listed with the figures, and a summary line counts each problem. PKU-MMD: the layout found
(when the configured patterns find nothing) and the suspicious label rows (end before start, zero length,
overlapping) are listed with file and line; they are left out of training unless
data.pkummd.suspicious_rows=keep.

  arctic check /data/ntu60 --protocol ntu60-xview --split train
  arctic check /data/pkummd --dataset pkummd --protocol pkummd-xview
  arctic check /data/pkummd --dataset pkummd --set data.pkummd.ir=Data/IR_VIDEO/{video}   # PNG folders
  arctic check rig/manifest.csv --dataset manifest --set data.class_names=rig/classes.txt
"""


def add_check(commands) -> None:
    from arctic_kd.data.loaders import DATASET_PROTOCOLS

    parser = command(
        commands,
        "check",
        cmd_check,
        "index a dataset, count protocol splits, decode paired clips and report bad samples",
        CHECK_DESCRIPTION,
    )
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
        "--frames", type=int, metavar="T", help="frames per clip (default: data.num_frames, 8)"
    )
    parser.add_argument(
        "--size", type=int, metavar="PX", help="clip side, pixels (default: data.ir_size, 112)"
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
    parser.add_argument(
        "--list-all",
        action="store_true",
        help="print every checked sample's person crop and registration, and every suspicious PKU-MMD "
        "label row (default: the first 10 with a problem)",
    )
    add_config_options(parser, default=None)


def cmd_check(args: argparse.Namespace) -> int:
    from arctic_kd.data.check import check_dataset

    data = config_from_args(args).data
    data.dataset = args.dataset or data.dataset
    report = check_dataset(
        args.root,
        protocol=args.protocol,
        subset=args.split,
        drop_missing_skeletons=args.drop_missing_skeletons,
        num_frames=_option_or_setting(args.frames, "--frames", data.num_frames, "data.num_frames", args.set),
        size=_option_or_setting(args.size, "--size", data.ir_size, "data.ir_size", args.set),
        batch_size=args.batch_size,
        workers=args.workers,
        skip_bad=args.skip_bad,
        limit=args.limit,
        data=data,
        list_all=args.list_all,
    )
    print("\n".join(report.lines()))
    return 0 if report.ok else 1


def _option_or_setting(value: int | None, option: str, setting: int, key: str, overrides: list[str]) -> int:
    """A command-line option, else the config's value; both given and different is an error, not a choice."""
    if value is None:
        return setting
    if any(item.partition("=")[0].strip() == key for item in overrides) and setting != value:
        raise ArcticError(f"{option} {value} and --set {key}={setting} disagree: give one of them")
    if value < 1:
        raise ArcticError(f"{option} must be at least 1, got {value}")
    return value


PREPARE_DESCRIPTION = """\
Decode every sample of the configured protocol (train and test) once into a clip store that training
reads with little CPU: both streams cropped to the performer (skeleton boxes made consistent through the
RGB→IR registration), shrunk to short side --side and kept as JPEG frames, with each sample's
registration for ARC. Runs in --workers processes with a progress bar; interrupted (even killed), it
resumes where it stopped and ends with the same store. Bad samples (corrupt video, RGB/IR durations that
disagree, ...) are skipped, listed at the end and in STORE/report.json; the others are prepared, and the
exit status is then 1.

  arctic prepare data/synth --out data/synth-store
  arctic prepare /data/ntu60 --out /fast/ntu60-store --set data.protocol=ntu60-xview --workers 8
  arctic train --modality ir --out runs/ir --set data.store=/fast/ntu60-store --set data.root=/data/ntu60

Training from the store still reads ROOT's file names (protocol split, class names), no video.
"""


def add_prepare(commands) -> None:
    prepare = command(
        commands,
        "prepare",
        cmd_prepare,
        "decode a dataset once into a compact, person-cropped clip store for training",
        PREPARE_DESCRIPTION,
    )
    prepare.add_argument("root", type=Path, help="dataset folder (sets data.root)")
    prepare.add_argument("--out", type=Path, required=True, help="store folder (created; reused to resume)")
    prepare.add_argument(
        "--side",
        type=int,
        default=128,
        metavar="PX",
        help="short side of stored crops (default: %(default)s)",
    )
    prepare.add_argument(
        "--quality", type=int, default=90, metavar="Q", help="JPEG quality, 1–100 (default: %(default)s)"
    )
    prepare.add_argument(
        "--workers", type=int, default=None, metavar="N", help="processes (default: data.workers)"
    )
    add_config_options(prepare)


def cmd_prepare(args: argparse.Namespace) -> int:
    from arctic_kd.data.loaders import protocol_samples
    from arctic_kd.data.samples import MODALITIES
    from arctic_kd.data.store import StoreSettings, prepare_store, store_margin

    config = config_from_args(args)
    config.data.root = str(args.root)
    data = config.data
    try:
        settings = StoreSettings(args.side, args.quality, store_margin(data))
    except ValueError as error:
        raise ArcticError(str(error)) from None
    samples = protocol_samples(data, MODALITIES, progress=True)
    workers = data.workers if args.workers is None else args.workers
    report = prepare_store(samples.train + samples.test, args.out, settings, workers, data.decode_threads)
    print("\n".join(report.lines()))
    print(f"train from it with --set data.store={args.out} --set data.root={args.root}")
    return 1 if report.bad else 0
