"""Commands that train and test one network: `train` (cross-entropy), `distill` (teacher into student),
`eval` (a checkpoint on its test split)."""

from __future__ import annotations

import argparse
from collections.abc import Callable
from functools import partial
from pathlib import Path

from arctic_kd.cli.common import add_config_options, command, config_from_args
from arctic_kd.errors import ArcticError

TRAIN_DESCRIPTION = """\
Train one network with cross-entropy on one modality: --modality rgb trains the teacher (config section
`teacher`), --modality ir the IR-only baseline (section `student`). Writes OUT/last.pt, OUT/best.pt,
OUT/metrics.jsonl (one line per epoch) and TensorBoard logs in OUT/tensorboard. --resume continues a
killed run from OUT/last.pt. Every train.eval_every epochs the network is evaluated on a validation
split carved out of the TRAINING split (data.val: whole subjects held out on cross-subject protocols, else
data.val.fraction of each class), which picks OUT/best.pt; the test split is read once, after the last
epoch (also every evaluation with --set train.test_every_eval=true, logged as test_*, never used to pick).
With --set data.val.enabled=false every training sample trains, evaluations are on the test split and no
best.pt is written: use last.pt. OUT belongs to one run: a folder that holds one is refused unless --resume
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

An RGB teacher is checked after training: a "warning: the RGB teacher looks weak" line says when its
accuracy is near chance or its training loss did not fall. --set train.restarts=3 trains it from seeds
seed, seed+1, seed+2 (in OUT/restart0…2, three times the time) and keeps the best (OUT/restarts.json).
"""


def add_train(commands) -> None:
    train = command(
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


def cmd_train(args: argparse.Namespace) -> int:
    from arctic_kd.engine.stages import run_train

    config = config_from_args(args)
    if args.pretrained:
        config.network(args.modality).pretrained = str(args.pretrained)
    return _train_into_run_folder(args, partial(run_train, config, args.modality, args.out))


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
--help`). Validation, best.pt and the test split: as in `arctic train --help` (data.val; without a
validation split no best.pt is written). Before training, the teacher's recorded accuracy is printed, with
a warning when the teacher looks weak (accuracy near chance, a training loss that did not fall).
"""


def add_distill(commands) -> None:
    distill = command(
        commands,
        "distill",
        cmd_distill,
        "distil a frozen RGB teacher into an IR student (ARCTIC or a baseline)",
        DISTILL_DESCRIPTION,
    )
    distill.add_argument("--teacher", type=Path, help="teacher checkpoint (overrides distill.teacher)")
    _add_run_options(distill, "student.pretrained")


def cmd_distill(args: argparse.Namespace) -> int:
    from arctic_kd.engine.stages import run_distill

    config = config_from_args(args)
    if args.teacher:
        config.distill.teacher = str(args.teacher)
    if not config.distill.teacher:
        raise ArcticError("distill needs a teacher checkpoint: --teacher runs/teacher/last.pt")
    if args.pretrained:
        config.student.pretrained = str(args.pretrained)
    return _train_into_run_folder(args, partial(run_distill, config, args.out))


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
    add_config_options(parser)


def _train_into_run_folder(args: argparse.Namespace, stage: Callable[..., dict]) -> int:
    """Run a training stage in the claimed --out folder, then draw its curves and print its result."""
    from arctic_kd.engine.distributed import shutdown
    from arctic_kd.engine.runs import claim_run_folder
    from arctic_kd.use.viz.curves import plot_run_curves

    try:
        with claim_run_folder(args.out, resume=args.resume, force=args.force):
            result = stage(resume=args.resume, schedule_change=args.allow_schedule_change)
            plot_run_curves(result)
    finally:
        shutdown()  # leaves the torchrun process group, if one was joined
    _print_result(result, args.out)
    return 0


def _print_result(result: dict, out: Path) -> None:
    from arctic_kd.engine.distributed import is_main_process

    if not is_main_process():
        return  # under torchrun, rank 0 speaks for all
    final = result["final"]
    print(
        f"final test (epoch {final['epoch']}): top-1 {final['top1']:.1f}  top-5 {final['top5']:.1f}  "
        f"mean class {final['mean_class']:.1f}"
    )
    checkpoints = f"{out / 'last.pt'} (no best.pt: no validation split, data.val.enabled=false)"
    if "validation" in result:
        val, best = result["validation"]["final"], result["validation"]["best"]
        best_text = f"best top-1 {best['top1']:.1f} (epoch {best['epoch']}, best.pt)"
        print(f"validation: final top-1 {val['top1']:.1f}, {best_text}")
        checkpoints = f"{out / 'last.pt'}, {out / 'best.pt'} (best on validation)"
    views = result["multiview"]
    print(
        f"final multi-view ({_views(views['views'])}): top-1 {views['top1']:.1f}  top-5 {views['top5']:.1f}  "
        f"mean class {views['mean_class']:.1f}"
    )
    print(f"checkpoints: {checkpoints}; log: {out / 'metrics.jsonl'}")
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


def add_eval(commands) -> None:
    evaluate = command(commands, "eval", cmd_eval, "test-split accuracy of a checkpoint", EVAL_DESCRIPTION)
    evaluate.add_argument("checkpoint", type=Path)
    evaluate.add_argument("--json", action="store_true", help="print the metrics as one JSON line")
    evaluate.add_argument(
        "--teacher",
        type=Path,
        help="RGB teacher checkpoint: also compare the student's activation maps with this teacher's",
    )
    add_config_options(evaluate, default=None)


def cmd_eval(args: argparse.Namespace) -> int:
    import json

    from arctic_kd.engine.checkpoint import load_checkpoint
    from arctic_kd.engine.stages import run_eval
    from arctic_kd.use.predict import checkpoint_config

    config = (
        config_from_args(args)
        if args.config
        else checkpoint_config(load_checkpoint(args.checkpoint), args.set)
    )
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
