"""Is a trained RGB teacher worth distilling from? Warnings, never errors: a teacher trained on a new
render or dataset can be broken (stuck loss, accuracy near chance, worse than IR alone) without anything
failing, and every student distilled from it inherits that silently.

The checks read what any run leaves: its accuracy on held-out data, the number of classes, its per-epoch
training losses and, when one was trained beside it, the IR-only run's accuracy.
"""

from __future__ import annotations

import math
from pathlib import Path

from arctic_kd.engine.runlog import training_losses

NEAR_CHANCE = 0.1  # "near chance": less than this share of the way from chance (1/classes) to 100 %
# a training loss still above this share of ln(classes), the cross-entropy of a uniform guess, has not
# fallen: a healthy run ends far below it (the demo's teacher: 0.803 of 2.48 for 12 classes), and
# label smoothing's floor lies below it (0.50 for 12 classes at 0.1)
STUCK_LOSS = 0.5


def teacher_warnings(
    top1: float, num_classes: int, losses: list[float], ir_only_top1: float | None = None
) -> list[str]:
    """Why a teacher with held-out top-1 `top1` (%) looks broken; [] when nothing does. `losses` are its
    per-epoch training losses (none: not judged)."""
    warnings = []
    chance = 100.0 / num_classes
    if top1 < chance + NEAR_CHANCE * (100.0 - chance):
        warnings.append(f"top-1 {top1:.1f} % is near chance ({chance:.1f} % for {num_classes} classes)")
    uniform = math.log(num_classes)
    if losses and not losses[-1] <= STUCK_LOSS * uniform:
        warnings.append(
            f"its training loss did not fall enough ({losses[0]:.3f} in epoch 1, {losses[-1]:.3f} in epoch "
            f"{len(losses)}; a uniform guess over {num_classes} classes scores {uniform:.3f}): training is "
            "stuck, diverged or too short"
        )
    if ir_only_top1 is not None:
        warnings += below_ir_only(top1, ir_only_top1)
    return warnings


def below_ir_only(top1: float, ir_only_top1: float) -> list[str]:
    """The warning of a teacher no better than the IR-only network: it has nothing to teach."""
    if top1 > ir_only_top1:
        return []
    return [f"top-1 {top1:.1f} % is not above the IR-only network's {ir_only_top1:.1f} %"]


def warning_lines(warnings: list[str], what: str = "the RGB teacher") -> list[str]:
    """The console lines of `warnings` about `what`: one clear line each, saying what it means."""
    return [
        f"warning: {what} looks weak: {w} (a student distilled from it learns from a weak teacher)"
        for w in warnings
    ]


def checkpoint_health(checkpoint: dict, path: Path) -> tuple[str, list[str]]:
    """What a teacher checkpoint records of its accuracy (its last validation evaluation, or its last test
    one where it had no validation split), as a line, and the warnings they and the training losses of the
    run's `metrics.jsonl` beside it give."""
    validation = checkpoint.get("validation") or {}
    split, metrics = (
        ("validation", validation) if "top1" in validation else ("test", checkpoint.get("metrics") or {})
    )
    if "top1" not in metrics:
        return f"teacher {path}: no accuracy recorded (epoch {checkpoint.get('epoch', 0)})", []
    losses = training_losses(Path(path).parent / "metrics.jsonl")
    classes = len(checkpoint["class_names"])
    line = (
        f"teacher {path}: {split} top-1 {metrics['top1']:.1f} %, top-5 {metrics['top5']:.1f} % at its last "
        f"evaluation, epoch {checkpoint['epoch']} ({classes} classes)"
    )
    return line, teacher_warnings(metrics["top1"], classes, losses)
