"""Is a trained RGB teacher worth distilling from? Warnings, never errors: a teacher trained on a new
render or dataset can be broken (stuck loss, accuracy near chance, worse than IR alone) without anything
failing, and every student distilled from it inherits that silently.

The checks read what any run leaves: its accuracy on held-out data, the number of classes, its per-epoch
training losses and, when one was trained beside it, the IR-only run's accuracy.
"""

from __future__ import annotations

from pathlib import Path

from arctic_kd.engine.train import training_losses

CHANCE_FACTOR = 2.0  # an accuracy below this many times chance (1/classes) is "near chance"
LOSS_DROP = 0.2  # the last epoch's loss should be at least this fraction below the first epoch's


def teacher_warnings(
    top1: float, num_classes: int, losses: list[float], ir_only_top1: float | None = None
) -> list[str]:
    """Why a teacher with held-out top-1 `top1` (%) looks broken; [] when nothing does. `losses` are its
    per-epoch training losses (fewer than 2: their progress is not judged)."""
    warnings = []
    chance = 100.0 / num_classes
    if top1 < CHANCE_FACTOR * chance:
        warnings.append(f"top-1 {top1:.1f} % is near chance ({chance:.1f} % for {num_classes} classes)")
    if len(losses) >= 2 and not losses[-1] <= (1 - LOSS_DROP) * losses[0]:
        warnings.append(
            f"its training loss did not fall ({losses[0]:.3f} in epoch 1, {losses[-1]:.3f} in epoch "
            f"{len(losses)}): training diverged or is stuck"
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
        f"warning: {what} looks broken: {w}; students distilled from it learn from a weak teacher"
        for w in warnings
    ]


def checkpoint_health(checkpoint: dict, path: Path) -> tuple[str, list[str]]:
    """What a teacher checkpoint records of its accuracy (the metrics of its last evaluation), as a line,
    and the warnings they and the training losses of the run's `metrics.jsonl` beside it give."""
    metrics = checkpoint.get("metrics") or {}
    if "top1" not in metrics:
        return f"teacher {path}: no accuracy recorded (epoch {checkpoint.get('epoch', 0)})", []
    losses = training_losses(Path(path).parent / "metrics.jsonl")
    classes = len(checkpoint["class_names"])
    line = (
        f"teacher {path}: top-1 {metrics['top1']:.1f} %, top-5 {metrics['top5']:.1f} % on held-out data "
        f"after epoch {checkpoint['epoch']} ({classes} classes)"
    )
    return line, teacher_warnings(metrics["top1"], classes, losses)
