"""What a run leaves in its folder besides checkpoints, and what a resume must find unchanged: the
per-epoch `metrics.jsonl` (and TensorBoard events) the training loop appends to, read back by the teacher
check, and the refusals of a resume into another kind of run or another schedule.
"""

from __future__ import annotations

import json
from pathlib import Path

from arctic_kd.config import Config
from arctic_kd.errors import ArcticError, DataError
from arctic_kd.progress import say


class MetricsLog:
    """`metrics.jsonl` and TensorBoard, written by rank 0 only; a resumed run drops what its checkpoint
    does not cover (an epoch logged after the last checkpoint was written will be trained again)."""

    def __init__(
        self, run_dir: Path, tensorboard: bool, epochs_kept: int, first_step: int, enabled: bool
    ) -> None:
        self.enabled = enabled
        self.path = run_dir / "metrics.jsonl"
        self.writer = None
        if not enabled:
            return
        run_dir.mkdir(parents=True, exist_ok=True)
        kept = [line for line in read_records(self.path) if json.loads(line)["epoch"] <= epochs_kept]
        self.path.write_text("".join(f"{line}\n" for line in kept))
        if tensorboard:
            from torch.utils.tensorboard import SummaryWriter  # imports TensorBoard: slow, so only here

            self.writer = SummaryWriter(run_dir / "tensorboard", purge_step=first_step)

    def epoch(self, record: dict, step: int) -> None:
        if not self.enabled:
            return
        with open(self.path, "a") as log:
            log.write(json.dumps(record) + "\n")
        if self.writer is not None:
            for key, value in record.items():
                if key != "epoch":
                    self.writer.add_scalar(key.replace("_", "/", 1), value, step)
            self.writer.flush()

    def close(self) -> None:
        if self.writer is not None:
            self.writer.close()


def read_records(path: Path) -> list[str]:
    """The JSON lines of a metrics log; a torn last line (a crash mid-write) is dropped, since the epoch it
    records is trained again, and any other line that is not JSON is an error naming it."""
    lines = path.read_text().splitlines() if path.is_file() else []
    for number, line in enumerate(lines, 1):
        try:
            record = json.loads(line)
        except ValueError:
            record = None
        if not isinstance(record, dict) or not isinstance(record.get("epoch"), int):
            if number == len(lines):
                say(f"{path}: dropping its torn last line (a run killed while writing it)")
                return lines[:-1]
            raise DataError(path, "not a metrics line (JSON with an epoch)", number)
    return lines


def check_same_run(checkpoint: dict, extra: dict, path: Path) -> None:
    """Refuse to resume a run of another kind (modality, method or network) than the one asked for."""
    for key in ("modality", "method", "model"):
        if key in checkpoint and checkpoint[key] != extra.get(key):
            raise ArcticError(
                f"{path}: --resume continues a run with {key} {checkpoint[key]!r}, but this command trains "
                f"{extra.get(key)!r}; use another --out (or --force to replace that run)"
            )


def check_same_schedule(checkpoint: dict, config: Config, steps_per_epoch: int, path: Path) -> None:
    """Refuse to resume under other optimisation settings than the checkpoint's: the learning rate at step
    k depends on them, so changing them mid-run splices two schedules."""
    saved = checkpoint.get("config", {})
    now = config.to_dict()
    changed = [
        f"optim.{key} {value!r} → {now['optim'].get(key)!r}"
        for key, value in saved.get("optim", {}).items()
        if now["optim"].get(key) != value
    ]
    saved_batch = saved.get("data", {}).get("batch_size", config.data.batch_size)
    if saved_batch != config.data.batch_size:
        changed.append(f"data.batch_size {saved_batch} → {config.data.batch_size}")
    saved_steps = checkpoint.get("resume", {}).get("steps_per_epoch", steps_per_epoch)
    if saved_steps != steps_per_epoch:
        changed.append(f"steps per epoch {saved_steps} → {steps_per_epoch} (the training split changed)")
    if changed:
        raise ArcticError(
            f"{path}: --resume with other optimisation settings than the run was started with "
            f"({'; '.join(changed)}) would splice two learning-rate schedules; resume with the same "
            "settings, or add --allow-schedule-change"
        )


def training_losses(metrics_log: Path) -> list[float]:
    """The mean total training loss of every epoch a run's `metrics.jsonl` holds (none: no file)."""
    return [json.loads(line)["train_total"] for line in read_records(metrics_log)]
