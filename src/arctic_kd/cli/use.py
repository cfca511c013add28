"""Commands that use a trained network: `predict` on your own videos, `export` it for a runtime, `viz`
pictures of it and of its run, and a `report` page of a run."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from arctic_kd.cli.common import command
from arctic_kd.errors import ArcticError

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


def add_predict(commands) -> None:
    predict = command(
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


def add_export(commands) -> None:
    export = command(
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


def cmd_export(args: argparse.Namespace) -> int:
    from arctic_kd.use.export import export_checkpoint

    result = export_checkpoint(args.checkpoint, args.format, args.out, args.video)
    print(f"wrote {result.path} ({result.format}, dynamic batch axis)")
    print(
        f"verified on {result.clips} clips of {result.verified_on}: max |{result.format} - PyTorch| = "
        f"{result.max_abs_diff:.2e} (tolerance 1e-4)"
    )
    return 0


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


def add_viz(commands) -> None:
    """`viz` only groups its pictures; each picture is a command of its own."""
    viz = command(
        commands, "viz", None, "activation maps, confusion matrix, learning curves (PNG)", VIZ_DESCRIPTION
    )
    pictures = viz.add_subparsers(dest="picture", metavar="PICTURE", required=True)
    _add_viz_activations(pictures)
    _add_viz_confusion(pictures)
    _add_viz_curves(pictures)


def _add_viz_activations(pictures) -> None:
    activations = command(
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


def _add_viz_confusion(pictures) -> None:
    confusion = command(
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


def cmd_viz_confusion(args: argparse.Namespace) -> int:
    from arctic_kd.use.viz.confusion import plot_checkpoint_confusion

    print(f"wrote {plot_checkpoint_confusion(args.checkpoint, args.out)}")
    return 0


def _add_viz_curves(pictures) -> None:
    curves = command(
        pictures,
        "curves",
        cmd_viz_curves,
        "learning curves of a run",
        "Training losses, test accuracy and learning rate per epoch, from a run folder's metrics.jsonl.",
    )
    curves.add_argument("run_dir", metavar="RUN", type=Path, help="run folder (or its metrics.jsonl)")
    curves.add_argument("--out", type=Path, default=Path("curves.png"), help="PNG (default: %(default)s)")


def cmd_viz_curves(args: argparse.Namespace) -> int:
    from arctic_kd.use.viz.curves import plot_learning_curves

    metrics = args.run_dir / "metrics.jsonl" if args.run_dir.is_dir() else args.run_dir
    print(f"wrote {plot_learning_curves(metrics, args.out)}")
    return 0


REPORT_DESCRIPTION = """\
Write one self-contained HTML page for a run folder (images embedded): a summary, the learning curves, the
confusion matrix, activation maps of the run's network (beside its RGB teacher for a distillation run,
or the --teacher given), how closely an IR network's maps follow that teacher's over the whole test split
(as `arctic eval --teacher` measures it), the metrics of every epoch and the config. Activation examples
need the run's dataset; without it the page says so.

  arctic report runs/arctic                      # writes runs/arctic/report.html
  arctic report runs/ir --teacher runs/teacher/best.pt --samples 4 --out ir.html
"""


def add_report(commands) -> None:
    report = command(
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


def cmd_report(args: argparse.Namespace) -> int:
    from arctic_kd.use.report import build_report

    print(f"wrote {build_report(args.run_dir, args.out, args.teacher, args.samples, args.data)}")
    return 0
