"""The `arctic` command: parse arguments, call one library function per subcommand, report errors plainly."""

from __future__ import annotations

import argparse
import dataclasses
import os
import sys
from collections.abc import Sequence
from pathlib import Path

from arctic_kd import __version__
from arctic_kd.errors import ArcticError
from arctic_kd.presets import BENCH_PRESETS, CONFIG_PRESETS, VARIANTS_FILE, preset_names, resolve_config

DEFAULT_DATA = Path("data/synth")

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
  arctic prepare /datasets/ntu60 --out /fast/ntu60-store   # decode once; train with data.store
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

TRAIN_DESCRIPTION = """\
Train one network with cross-entropy on one modality: --modality rgb trains the teacher (config section
`teacher`), --modality ir the IR-only baseline (section `student`). Writes OUT/last.pt, OUT/best.pt,
OUT/metrics.jsonl (one line per epoch) and TensorBoard logs in OUT/tensorboard. --resume continues a
killed run from OUT/last.pt. OUT belongs to one run: a folder that holds one is refused unless --resume
continues it or --force replaces it, and a second process writing to it is refused (OUT/.arctic.lock).
Several GPUs or nodes: launch through torchrun (see README, "Training at scale"); data.batch_size is the
global batch.

  arctic train --modality rgb --out runs/teacher
  arctic train --modality rgb --out runs/teacher --set data.root=/data/ntu60 --set teacher.depth=18
  arctic train --modality rgb --out runs/teacher --resume
  torchrun --nproc_per_node=4 -m arctic_kd train --modality rgb --out runs/teacher --set train.precision=bf16
  arctic train --modality rgb --out runs/teacher --set teacher.arch=r2plus1d --set teacher.depth=18 \\
      --pretrained r2plus1d_18_kinetics400.pth

--pretrained starts from a torchvision-format Kinetics-400 state dict (r3d_18, mc3_18, r2plus1d_18 at
width 1): the classifier is re-initialised for the dataset's classes, a 1-channel IR network gets the RGB
stem filters summed over colour channels, and keys that do not fit are listed. After the last epoch the
final model is also tested on data.test_clips × data.test_crops views (OUT/multiview.json).
"""

DISTILL_DESCRIPTION = """\
Distil a frozen RGB teacher into an IR student. The default method, ARCTIC, trains
L = CE + λ_arm·ARM + λ_arc·ARC + λ_kd·KD (config sections distill.arm, .arc, .kd; a weight of 0 switches
that part off). `distill.method` picks a baseline instead, each at its published default weights, set in
its own section: kd (distill.hinton), fitnets, at, sp, rkd, afd, dkd (distill.<method>).

  arctic distill --teacher runs/teacher/last.pt --out runs/arctic
  arctic distill --teacher runs/teacher/last.pt --out runs/arm-relation --set distill.arm.value=relation
  arctic distill --teacher runs/teacher/last.pt --out runs/dkd --set distill.method=dkd
  arctic distill --teacher runs/teacher/last.pt --out runs/arctic --resume     # continue a killed run
  torchrun --nproc_per_node=4 -m arctic_kd distill --teacher runs/teacher/last.pt --out runs/arctic
  arctic distill --teacher runs/teacher/last.pt --out runs/arctic --pretrained r3d_18_kinetics400.pth \\
      --set student.depth=18 --set student.width=1

--pretrained starts the IR student from a torchvision-format Kinetics-400 state dict (see `arctic train
--help`).
"""

EVAL_DESCRIPTION = """\
Evaluate a checkpoint on the test split of its dataset and protocol: by default those of the config stored
in the checkpoint; --config and --set point it elsewhere (e.g. --set data.root=/data/ntu60).
Reports single-clip accuracy (segment centres, centre crop) and multi-view accuracy: softmax probabilities
averaged over data.test_clips clips (evenly spaced offsets in each TSN segment) × data.test_crops crops
(along the long side; needs data.test_crop < 1), in one pass.
With --teacher, also how closely an IR student's class activation maps follow the RGB teacher's on the
same test clips: the true class's maps at the last stage, the teacher's warped onto the student's crop,
as ARC aligns them at its default distill.arc.maps=cam (the teacher sees RGB clips as distillation gives
them). It reports their mean per-clip correlation (1: the same regions light up) and L_ARC at
distill.arc.rho, which tells whether the constraint binds. The test clips are then RGB+IR pairs, so a
sample with a missing or unreadable RGB video is treated as in distillation (data.skip_bad), not counted.

  arctic eval runs/teacher/last.pt
  arctic eval runs/teacher/last.pt --set data.test_clips=3 --set data.test_crops=3 --set data.test_crop=0.875
  arctic eval runs/arctic/last.pt --teacher runs/teacher/last.pt
"""

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

BENCH_DESCRIPTION = """\
Compare distillation methods on the synthetic dataset (or a real one: --data): every method × seed ×
protocol of a bench preset (`arctic bench --list`), one RGB teacher per protocol and seed shared by all its
methods. Finished runs are recorded (OUT/PROTOCOL/seedN/METHOD/result.json) and not run again, so an
interrupted bench resumes.
Writes OUT/bench.json, OUT/bench.md (top-1 and top-5 mean ± std, wall time per run; with ARCTIC in the
plan, each method's per-seed difference from it on the same teacher, ± its standard error: a difference
far smaller than the spread of the means can be resolved this way) and OUT/bench.png.

Methods are named variants (the package's configs/bench/variants.yaml): sets of --set overrides, e.g.
arctic-no-arm is `distill.method=arctic distill.arm.weight=0`. `arctic bench --list` shows them all.

  arctic bench                                   # preset `full`: 12 methods, 3 seeds, xsub and xview
  arctic bench --preset quick                    # every method × 3 seeds on cross-subject, shorter runs
  arctic bench --methods ir_only kd arctic --seeds 0 --protocols ntu60-xsub --out runs/try
  arctic bench --preset ablations --set distill.arc.rho=0.5 --out runs/rho05
  arctic bench --preset ablations --config ntu --data /data/ntu60 --out runs/ntu60   # a real dataset
"""

PREDICT_DESCRIPTION = """\
Recognise the action in your own IR videos with a trained student checkpoint. Each whole video (any length,
resolution or common container: AVI, MP4, MKV, MOV, ...) is cut into --clips clips of the checkpoint's
frames per clip, prepared as evaluation prepares test clips on whole frames, and their class probabilities
are averaged. Folders are searched for video files. A file that cannot be read is reported and the others
are still predicted; the exit status is then 1.

Note: a student trained on person crops (data.person_crop, on by default) saw the performer enlarged; on
whole frames it meets a smaller person than in training. Train with --set data.person_crop=false for a
model meant to run on whole frames.

  arctic predict clip.avi --checkpoint runs/arctic/best.pt
  arctic predict night_cam/ --checkpoint runs/arctic/best.pt --topk 3 --clips 5
  arctic predict a.mp4 b.avi --checkpoint runs/arctic/best.pt --json > predictions.jsonl
"""

EXPORT_DESCRIPTION = """\
Export a checkpoint's network for a deployment runtime: ONNX (opset 17) or TorchScript, with a dynamic
batch axis (input "clip" of shape N×C×T×H×W, output "logits" N×classes). The clip recipe (frames, size,
mean/std, per-clip standardisation) and the class names are stored in the file's metadata. The export is
then verified: the saved file runs in onnxruntime (or as TorchScript) on clips of a real video, and the
largest absolute difference from PyTorch is printed; above 1e-4 the command fails.

  arctic export runs/arctic/best.pt --format onnx                       # writes runs/arctic/best.onnx
  arctic export runs/arctic/best.pt --format torchscript --out student.torchscript.pt
  arctic export runs/arctic/best.pt --format onnx --video night_cam/clip.avi
"""

VIZ_DESCRIPTION = """\
Pictures of models and runs, as PNG:
  activations  class activation maps of the RGB teacher over its RGB frames beside the IR student(s) over
               IR frames, for chosen test samples (one row per network; optional GIF);
  confusion    the test confusion matrix stored in a checkpoint;
  curves       the learning curves of a run folder (from its metrics.jsonl).

  arctic viz activations --teacher runs/teacher/best.pt --student runs/ir/best.pt \\
                         --student runs/arctic/best.pt --out maps.png --gif maps.gif
  arctic viz confusion runs/arctic/best.pt --out confusion.png
  arctic viz curves runs/arctic --out curves.png
"""

REPORT_DESCRIPTION = """\
Write one self-contained HTML page for a run folder (images embedded): a summary, the learning curves, the
confusion matrix, activation maps of the run's network (beside its RGB teacher for a distillation run,
or the --teacher given), how closely an IR network's maps follow that teacher's over the whole test split
(as `arctic eval --teacher` measures it), the metrics of every epoch and the config. Activation examples
need the run's dataset; without it the page says so.

  arctic report runs/arctic                      # writes runs/arctic/report.html
  arctic report runs/ir --teacher runs/teacher/best.pt --samples 4 --out ir.html
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


def _config(args: argparse.Namespace):
    from arctic_kd.config import load_config

    return load_config(resolve_config(args.config), args.set)


def cmd_train(args: argparse.Namespace) -> int:
    from arctic_kd.engine.distributed import shutdown
    from arctic_kd.engine.stages import run_train
    from arctic_kd.use.viz.curves import plot_run_curves

    config = _config(args)
    if args.pretrained:
        (config.teacher if args.modality == "rgb" else config.student).pretrained = str(args.pretrained)
    try:
        with _claimed_run_folder(args):
            result = run_train(config, args.modality, args.out, **_run_options(args))
            plot_run_curves(result)
    finally:
        shutdown()  # leaves the torchrun process group, if one was joined
    _print_result(result, args.out)
    return 0


def cmd_distill(args: argparse.Namespace) -> int:
    from arctic_kd.engine.distributed import shutdown
    from arctic_kd.engine.stages import run_distill
    from arctic_kd.use.viz.curves import plot_run_curves

    config = _config(args)
    if args.teacher:
        config.distill.teacher = str(args.teacher)
    if not config.distill.teacher:
        raise ArcticError("distill needs a teacher checkpoint: --teacher runs/teacher/last.pt")
    if args.pretrained:
        config.student.pretrained = str(args.pretrained)
    try:
        with _claimed_run_folder(args):
            result = run_distill(config, args.out, **_run_options(args))
            plot_run_curves(result)
    finally:
        shutdown()  # leaves the torchrun process group, if one was joined
    _print_result(result, args.out)
    return 0


def _claimed_run_folder(args: argparse.Namespace):
    """--out claimed and locked for this run (by rank 0 alone under torchrun: one lock per run)."""
    import contextlib

    from arctic_kd.engine.distributed import is_main_process
    from arctic_kd.engine.runs import claim_run_folder

    if not is_main_process():
        return contextlib.nullcontext(args.out)
    return claim_run_folder(args.out, resume=args.resume, force=args.force)


def _run_options(args: argparse.Namespace) -> dict:
    return {"resume": args.resume, "schedule_change": args.allow_schedule_change}


def _print_result(result: dict, out: Path) -> None:
    from arctic_kd.engine.distributed import is_main_process

    if not is_main_process():
        return  # under torchrun, rank 0 speaks for all
    final, best = result["final"], result["best"]
    print(
        f"final (epoch {final['epoch']}): top-1 {final['top1']:.1f}  top-5 {final['top5']:.1f}  "
        f"mean class {final['mean_class']:.1f}   best top-1 {best['top1']:.1f} (epoch {best['epoch']})"
    )
    views = result["multiview"]
    print(
        f"final multi-view ({_views(views['views'])}): top-1 {views['top1']:.1f}  top-5 {views['top5']:.1f}  "
        f"mean class {views['mean_class']:.1f}"
    )
    print(f"checkpoints: {out / 'last.pt'}, {out / 'best.pt'}; log: {out / 'metrics.jsonl'}")
    for sample, problem in result["skipped"].items():
        print(f"skipped {sample}: {problem}")
    for key, what in (("left_out", "left out"), ("whole_frames", "read as whole frames")):
        for sample, why in result.get(key, {}).items():
            print(f"{what} {sample}: {why}")
    unused = [f"{len(result.get(k, {}))} {w}" for k, w in _UNUSED.items() if result.get(k)]
    if unused:
        print(f"samples not used as intended: {', '.join(unused)} (listed in {out / 'samples.json'})")


_UNUSED = {
    "left_out": "left out (a video missing)",
    "skipped": "skipped (bad)",
    "whole_frames": "read as whole frames (no usable skeleton)",
}


def cmd_eval(args: argparse.Namespace) -> int:
    import json

    from arctic_kd.engine.checkpoint import load_checkpoint
    from arctic_kd.engine.stages import run_eval

    config = _config(args) if args.config else _checkpoint_config(load_checkpoint(args.checkpoint), args.set)
    metrics = run_eval(args.checkpoint, config, teacher_path=args.teacher)
    if args.json:
        print(json.dumps(metrics))
        return 0
    print(
        f"{args.checkpoint}: {metrics['samples']} test clips of {config.data.root} ({config.data.protocol})"
    )
    if metrics["skipped"]:
        print(f"skipped {metrics['skipped']} unreadable test samples (data.skip_bad)")
    views = metrics["multiview"]
    for title, m in (("single clip", metrics), (f"multi-view ({_views(metrics['views'])})", views)):
        print(f"{title}: top-1 {m['top1']:.1f}  top-5 {m['top5']:.1f}  mean class {m['mean_class']:.1f}")
    if "agreement" in metrics:
        agreement = metrics["agreement"]
        print(
            f"activation maps vs {agreement['teacher']}: correlation {agreement['map_correlation']:.3f}  "
            f"L_ARC {agreement['arc_loss']:.4f} (rho {agreement['rho']:g})"
        )
    return 0


def _views(count: int) -> str:
    return f"{count} view" if count == 1 else f"{count} views"


def _checkpoint_config(checkpoint: dict, overrides: list[str]):
    """The config a checkpoint was trained with, so `arctic eval ckpt` alone re-tests it on its own split."""
    from arctic_kd.config import apply_overrides, config_from_dict

    return config_from_dict(apply_overrides(checkpoint["config"], overrides))


def _bench_dataset(args: argparse.Namespace, base) -> str:
    """Make sure the bench's data is there: a dataset in --data that is not an NTU-layout synthetic render
    (a real one, or a PKU-MMD render) is used as it is, anything else is the synthetic one (rendered if
    absent; `data/synth` is always synthetic). Returns the line that bench.md shows above its tables."""
    from arctic_kd.data.synth import describe_settings
    from arctic_kd.data.synth.folder import is_foreign_folder
    from arctic_kd.demo import ensure_synthetic
    from arctic_kd.progress import say

    if args.synth_seed is None and args.data != DEFAULT_DATA and is_foreign_folder(args.data):
        say(f"using the dataset in {args.data} as it is (not a synthetic render of the NTU layout)")
        if base.data.cache and not base.data.store:
            say(
                "data.cache is on: every video of the protocol is decoded into memory first; for a full-size "
                "dataset use --set data.cache=false, or a clip store (arctic prepare, --set data.store=STORE)"
            )
        return f"{args.data} ({base.data.dataset} layout, used as it is)"
    return f"{args.data}, synthetic: {describe_settings(ensure_synthetic(args.data, _asked_synth(args)))}"


def _asked_synth(args: argparse.Namespace):
    """The synthetic dataset --synth-seed asks for; None: whichever --data holds (see `ensure_synthetic`)."""
    from arctic_kd.data.synth import SynthConfig

    return None if args.synth_seed is None else SynthConfig(seed=args.synth_seed)


def cmd_demo(args: argparse.Namespace) -> int:
    from arctic_kd.demo import Row, gap_sentence, run_demo, table

    config = _config(args)
    config.data.root = str(args.data)
    results = run_demo(config, args.out, _asked_synth(args))
    print(table([Row(**r) for r in results["rows"]]))
    print(gap_sentence(results["gap_recovered"]))
    print(f"total {results['seconds'] / 60:.1f} min; results: {args.out / 'results.json'}")
    return 0


def cmd_prepare(args: argparse.Namespace) -> int:
    from arctic_kd.data.loaders import protocol_samples
    from arctic_kd.data.samples import MODALITIES
    from arctic_kd.data.store import StoreSettings, prepare_store

    config = _config(args)
    config.data.root = str(args.root)
    data = config.data
    try:
        settings = StoreSettings(args.side, args.quality, data.person_margin if data.person_crop else None)
    except ValueError as error:
        raise ArcticError(str(error)) from None
    samples = protocol_samples(data, MODALITIES, progress=True)
    workers = data.workers if args.workers is None else args.workers
    report = prepare_store(samples.train + samples.test, args.out, settings, workers, data.decode_threads)
    print("\n".join(report.lines()))
    print(f"train from it with --set data.store={args.out} --set data.root={args.root}")
    return 1 if report.bad else 0


def cmd_bench(args: argparse.Namespace) -> int:
    import shlex

    from arctic_kd.bench import (
        bench_markdown,
        build_base,
        check_plan,
        describe,
        load_plan,
        load_variants,
        run_bench,
    )

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
    dataset = _bench_dataset(args, base)
    summary = run_bench(
        plan, variants, base, args.out, command="arctic " + shlex.join(args.argv), dataset=dataset
    )
    print(bench_markdown(summary))
    print(f"written: {args.out / 'bench.json'}, {args.out / 'bench.md'}, {args.out / 'bench.png'}")
    return 0


def cmd_predict(args: argparse.Namespace) -> int:
    import json

    from arctic_kd.engine.stages import resolve_device
    from arctic_kd.progress import progress_bar
    from arctic_kd.use.predict import Failure, Predictor, format_table, video_files

    if args.topk < 1:
        raise ArcticError(f"--topk must be at least 1, got {args.topk}")
    files = video_files(args.videos)
    predictor = Predictor(args.checkpoint, args.clips, resolve_device(args.device))
    if predictor.trained_on_person_crops:
        print(
            f"arctic predict: note: {args.checkpoint} was trained on person crops (data.person_crop); "
            "predict reads whole frames, where the performer looks smaller (see arctic predict --help)",
            file=sys.stderr,
        )
    failed = 0
    for result in predictor.predict_all(
        progress_bar(files, desc="predict", unit="video", leave=False), args.topk
    ):
        failed += isinstance(result, Failure)
        if args.json:  # every file gets its line, failures included
            print(json.dumps(result.as_dict()), flush=True)
        elif isinstance(result, Failure):  # said once, on standard error
            print(f"arctic predict: error: {result.path}: {result.problem}", file=sys.stderr)
        else:
            print(format_table([result]), flush=True)
    if failed:
        print(f"arctic predict: {failed} of {len(files)} file(s) could not be read", file=sys.stderr)
    return 1 if failed else 0


def cmd_export(args: argparse.Namespace) -> int:
    from arctic_kd.use.export import export_checkpoint

    result = export_checkpoint(args.checkpoint, args.format, args.out, args.video)
    print(f"wrote {result.path} ({result.format}, dynamic batch axis)")
    print(
        f"verified on {result.clips} clips of {result.verified_on}: max |{result.format} - PyTorch| = "
        f"{result.max_abs_diff:.2e} (tolerance 1e-4)"
    )
    return 0


def cmd_viz_activations(args: argparse.Namespace) -> int:
    from arctic_kd.use.viz.activations import (
        collect_panels,
        load_model,
        plot_activation_grid,
        write_activation_gif,
    )

    paths = ([args.teacher] if args.teacher else []) + list(args.student)
    if not paths:
        raise ArcticError("give a --teacher and/or one or more --student checkpoints")
    if args.num_samples < 1 or args.frames < 1:
        raise ArcticError("--num-samples and --frames must be at least 1")
    panels = collect_panels([load_model(p) for p in paths], args.data, args.samples, args.num_samples)
    print(f"wrote {plot_activation_grid(panels, args.out, args.frames)}")
    if args.gif:
        print(f"wrote {write_activation_gif(panels, args.gif)}")
    return 0


def cmd_viz_confusion(args: argparse.Namespace) -> int:
    from arctic_kd.use.viz.confusion import plot_checkpoint_confusion

    print(f"wrote {plot_checkpoint_confusion(args.checkpoint, args.out)}")
    return 0


def cmd_viz_curves(args: argparse.Namespace) -> int:
    from arctic_kd.use.viz.curves import plot_learning_curves

    metrics = args.run_dir / "metrics.jsonl" if args.run_dir.is_dir() else args.run_dir
    print(f"wrote {plot_learning_curves(metrics, args.out)}")
    return 0


def cmd_report(args: argparse.Namespace) -> int:
    from arctic_kd.use.report import build_report

    print(f"wrote {build_report(args.run_dir, args.out, args.teacher, args.samples, args.data)}")
    return 0


def _add_config_options(
    parser: argparse.ArgumentParser, default: str | None = "demo", default_help: str = "%(default)s"
) -> None:
    parser.add_argument(
        "--config",
        default=default,
        metavar="FILE|PRESET",
        help=f"YAML config, or a preset: {', '.join(preset_names(CONFIG_PRESETS))} (default: {default_help})",
    )
    parser.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="override a config value, e.g. --set optim.epochs=30 --set data.root=/data/ntu60 "
        "(repeatable; values are YAML)",
    )


def _add_run_options(parser: argparse.ArgumentParser, pretrained_key: str) -> None:
    """Options of the commands that train into a run folder; --pretrained sets `pretrained_key`."""
    parser.add_argument("--out", type=Path, required=True, help="run folder for checkpoints and logs")
    parser.add_argument(
        "--resume",
        action="store_true",
        help="continue the run in OUT from OUT/last.pt (model, optimizer, schedule, data order and random "
        "state), e.g. after it was killed; starts from scratch when OUT holds no last.pt",
    )
    parser.add_argument(
        "--force",
        action="store_true",
        help="replace the run already in OUT (its checkpoints, metrics and logs are removed, and listed); "
        "without --force or --resume an existing run folder is refused",
    )
    parser.add_argument(
        "--allow-schedule-change",
        action="store_true",
        help="with --resume: continue even though the optimisation settings (optim.*, data.batch_size) "
        "differ from those of OUT/last.pt, splicing two learning-rate schedules",
    )
    parser.add_argument(
        "--pretrained",
        type=Path,
        metavar="PATH",
        help=f"start from a torchvision-format Kinetics-400 state dict (sets {pretrained_key})",
    )
    _add_config_options(parser)


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
    _add_config_options(parser, default=None)


def _command(commands, name: str, run, summary: str, description: str) -> argparse.ArgumentParser:
    parser = commands.add_parser(
        name, help=summary, description=description, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.set_defaults(run=run)
    return parser


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
    _add_config_options(parser, config, config_help)


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
    _add_run_options(train, "teacher.pretrained or student.pretrained, by --modality")

    distill = _command(
        commands,
        "distill",
        cmd_distill,
        "distil a frozen RGB teacher into an IR student (ARCTIC or a baseline)",
        DISTILL_DESCRIPTION,
    )
    distill.add_argument("--teacher", type=Path, help="teacher checkpoint (overrides distill.teacher)")
    _add_run_options(distill, "student.pretrained")

    evaluate = _command(commands, "eval", cmd_eval, "test-split accuracy of a checkpoint", EVAL_DESCRIPTION)
    evaluate.add_argument("checkpoint", type=Path)
    evaluate.add_argument("--json", action="store_true", help="print the metrics as one JSON line")
    evaluate.add_argument(
        "--teacher",
        type=Path,
        help="RGB teacher checkpoint: also compare the student's activation maps with this teacher's",
    )
    _add_config_options(evaluate, default=None)

    demo = _command(
        commands,
        "demo",
        cmd_demo,
        "the whole job on synthetic data: synth, teacher, IR baseline, ARCTIC",
        DEMO_DESCRIPTION,
    )
    _add_synthetic_run_options(demo, "runs/demo")

    prepare = _command(
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
    _add_config_options(prepare)

    bench = _command(
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
    _add_use_commands(commands)
    return parser


def _add_use_commands(commands) -> None:
    """predict, export, viz and report: using a trained network."""
    predict = _command(
        commands, "predict", cmd_predict, "top-k actions in your own IR video files", PREDICT_DESCRIPTION
    )
    predict.add_argument("videos", nargs="+", help="IR video files or folders of them")
    predict.add_argument("--checkpoint", type=Path, required=True, help="student checkpoint (best.pt)")
    predict.add_argument(
        "--topk", type=int, default=5, metavar="K", help="classes shown (default: %(default)s)"
    )
    predict.add_argument(
        "--clips", type=int, default=3, metavar="N", help="clips averaged per video (default: %(default)s)"
    )
    predict.add_argument("--json", action="store_true", help="one JSON line per file instead of a table")
    predict.add_argument("--device", default="cpu", help="cpu, cuda, cuda:1 or auto (default: %(default)s)")

    export = _command(
        commands,
        "export",
        cmd_export,
        "ONNX or TorchScript file of a checkpoint, verified",
        EXPORT_DESCRIPTION,
    )
    export.add_argument("checkpoint", type=Path)
    export.add_argument("--format", choices=("onnx", "torchscript"), required=True)
    export.add_argument(
        "--out", type=Path, help="output file (default: the checkpoint's name with .onnx / .torchscript.pt)"
    )
    export.add_argument(
        "--video", type=Path, help="video to verify on (default: the first of the checkpoint's dataset)"
    )

    viz = _command(
        commands, "viz", None, "activation maps, confusion matrix, learning curves (PNG)", VIZ_DESCRIPTION
    )
    pictures = viz.add_subparsers(dest="picture", metavar="PICTURE", required=True)
    activations = _command(
        pictures,
        "activations",
        cmd_viz_activations,
        "teacher vs student activation maps on test samples",
        "Class activation maps of the true class over each network's own test clip: the RGB teacher over RGB "
        "frames, each IR student over IR frames; one row per network, one block per sample.",
    )
    activations.add_argument("--teacher", type=Path, help="RGB teacher checkpoint")
    activations.add_argument(
        "--student", type=Path, action="append", default=[], help="IR student checkpoint (repeatable)"
    )
    activations.add_argument(
        "--out", type=Path, default=Path("activations.png"), help="PNG (default: %(default)s)"
    )
    activations.add_argument("--gif", type=Path, help="also write an animation over the clip's frames")
    activations.add_argument("--samples", nargs="+", default=[], metavar="ID", help="test sample ids to show")
    activations.add_argument(
        "--num-samples",
        type=int,
        default=3,
        metavar="N",
        help="without --samples: N samples of different classes",
    )
    activations.add_argument(
        "--frames", type=int, default=4, metavar="N", help="frames shown per row (default: 4)"
    )
    activations.add_argument("--data", type=Path, help="dataset folder (default: the first checkpoint's)")
    confusion = _command(
        pictures,
        "confusion",
        cmd_viz_confusion,
        "confusion matrix of a checkpoint's test evaluation",
        "The confusion matrix stored in a checkpoint (its test-split evaluation at the epoch it was saved), "
        "coloured by the share of each true class and annotated with counts.",
    )
    confusion.add_argument("checkpoint", type=Path)
    confusion.add_argument(
        "--out", type=Path, default=Path("confusion.png"), help="PNG (default: %(default)s)"
    )
    curves = _command(
        pictures,
        "curves",
        cmd_viz_curves,
        "learning curves of a run",
        "Training losses, test accuracy and learning rate per epoch, from a run folder's metrics.jsonl.",
    )
    curves.add_argument("run_dir", metavar="RUN", type=Path, help="run folder (or its metrics.jsonl)")
    curves.add_argument("--out", type=Path, default=Path("curves.png"), help="PNG (default: %(default)s)")

    report = _command(
        commands, "report", cmd_report, "self-contained HTML report of a run", REPORT_DESCRIPTION
    )
    report.add_argument(
        "run_dir", metavar="RUN", type=Path, help="run folder (holding metrics.jsonl and best.pt / last.pt)"
    )
    report.add_argument("--out", type=Path, help="HTML file (default: RUN/report.html)")
    report.add_argument("--teacher", type=Path, help="RGB teacher shown beside the run's network")
    report.add_argument(
        "--samples", type=int, default=2, metavar="N", help="activation examples (default: %(default)s)"
    )
    report.add_argument("--data", type=Path, help="dataset folder (default: the run's)")


def main(argv: Sequence[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    args = build_parser().parse_args(argv)
    args.argv = argv
    try:
        return args.run(args)
    except ArcticError as error:
        print(f"arctic {args.command}: error: {error}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"arctic {args.command}: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:  # output piped into e.g. `head`, which has stopped reading
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())  # so the exit flush stays quiet
        return 141
    except OSError as error:  # permission, not a folder, disk full, ...: the path and the cause
        from arctic_kd.errors import os_error

        print(f"arctic {args.command}: error: {os_error(error)}", file=sys.stderr)
        return 2
    except Exception as error:  # a bug or an unforeseen failure: one line, the trace in a file
        print(f"arctic {args.command}: internal error: {_last_resort(error)}", file=sys.stderr)
        return 3


def _last_resort(error: Exception) -> str:
    """One line about an unexpected error; its full trace goes to a file the line names (for a bug report)."""
    import tempfile
    import traceback

    first = (str(error).strip().splitlines() or [""])[0]
    text = f"{type(error).__name__}: {first}" if first else type(error).__name__
    try:
        handle, path = tempfile.mkstemp(prefix="arctic-error-", suffix=".txt")
        with os.fdopen(handle, "w") as trace:
            trace.write(f"arctic {' '.join(sys.argv[1:])}\n")
            traceback.print_exception(error, file=trace)
    except OSError:
        return f"{text} (the full trace could not be written)"
    return f"{text} (full trace: {path}; please include it in a bug report)"


if __name__ == "__main__":
    sys.exit(main())
