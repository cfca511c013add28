"""One training loop for every stage: a `Distiller` gives logits and named losses, the loop does the rest.

Per epoch: train with a progress bar, evaluate every `train.eval_every` epochs, append a line to
`metrics.jsonl` (and to TensorBoard), write `last.pt` and (when validation top-1 improves) `best.pt`
atomically. With a validation split the evaluations are on it and the test split is read once, at the last
epoch (at every evaluation with `train.test_every_eval`); without one the evaluations are on the test split
and no `best.pt` is kept: a checkpoint chosen on the test split would report a number chosen on it. Under
`torchrun` the student and the method's own modules train in DistributedDataParallel (the frozen teacher
stays outside it: it has nothing to synchronise), each process reads its share of every batch, evaluation
results of all processes are added up, and only rank 0 writes anything. `last.pt` holds the whole training
state, so `resume=True` continues a killed run where its last checkpoint left it: bit for bit in
deterministic mode.
"""

from __future__ import annotations

import time
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import torch
from torch import nn

from arctic_kd.config import Config
from arctic_kd.distill.base import Distiller
from arctic_kd.engine import distributed
from arctic_kd.engine.checkpoint import load_checkpoint, restore_rng_state, rng_state, save_checkpoint
from arctic_kd.engine.distributed import DistContext
from arctic_kd.engine.evaluate import evaluate, sum_over_processes
from arctic_kd.engine.precision import avoids_onednn
from arctic_kd.engine.runlog import MetricsLog, check_same_run, check_same_schedule
from arctic_kd.engine.setup import Run, prepare_run
from arctic_kd.errors import ArcticError, shortlist
from arctic_kd.progress import progress_bar, say, say_once


@dataclass
class _Progress:
    """Where training stands; all of it goes into `last.pt` so a resumed run picks up exactly here."""

    epoch: int = 0  # finished epochs
    step: int = 0  # optimizer steps taken
    seconds: float = 0.0  # training time before this process started
    best: dict = field(default_factory=lambda: {"top1": -1.0})  # the best validation evaluation
    final: dict = field(default_factory=dict)  # the last test evaluation
    sums: dict[str, float] = field(default_factory=dict)  # loss sums of the epoch in progress
    count: int = 0  # batches behind `sums`
    short_batches: int = 0  # training batches left with one clip by skipped samples, not trained on
    val: dict = field(default_factory=dict)  # the last validation evaluation


def fit(
    distiller: Distiller,
    train_batches,
    test_batches,
    config: Config,
    run_dir: Path,
    checkpoint_extra: dict,
    num_classes: int,
    context: DistContext,
    progress: bool = True,
    resume: bool = False,
    schedule_change: bool = False,
    val_batches=None,
) -> dict:
    """Train `distiller.student` (and the method's modules); returns the final test metrics ("final") and,
    with `val_batches`, the last and the best validation metrics ("validation": {"final", "best"}).

    The per-epoch records go to `run_dir/metrics.jsonl`, returned as `metrics_log` by the process that wrote
    it (None on the others); drawing them is the caller's business (`use.viz.curves.plot_run_curves`).

    `train_batches`/`test_batches`/`val_batches` are this process's shares (see `ClipLoader.shard`). A
    resume whose optimisation settings differ from the checkpoint's is refused unless `schedule_change`.
    """
    progress = progress and context.is_main
    run = prepare_run(distiller, config, context, len(train_batches))
    if progress and avoids_onednn(run.dtype, context.device):
        say_once(
            "train.precision=bf16: this CPU's oneDNN gets the bf16 Conv3d weight gradient wrong, so backward "
            "runs on ATen's kernels: correct, but slower than fp32 (train.precision=fp32 is faster here)"
        )
    state = _Progress()
    checkpoint_path = run_dir / "last.pt"
    if resume and _visible_to_all(checkpoint_path, context):
        checkpoint = load_checkpoint(checkpoint_path)
        check_same_run(checkpoint, checkpoint_extra, checkpoint_path)
        if not schedule_change:
            check_same_schedule(checkpoint, config, len(train_batches), checkpoint_path)
        state = _restore(checkpoint, run, train_batches)
        if progress:
            say(f"resuming {run_dir} after epoch {state.epoch} (step {state.step})")
    elif resume and progress:
        say(f"nothing to resume in {run_dir} (no last.pt): starting from scratch")
    log = MetricsLog(
        run_dir, config.train.tensorboard, state.epoch, _first_unsaved_step(state), context.is_main
    )
    start = time.perf_counter()

    def elapsed() -> float:
        return state.seconds + time.perf_counter() - start

    def save_last() -> None:
        if context.is_main:
            save_checkpoint(checkpoint_path, _payload(checkpoint_extra, run, state, train_batches, elapsed()))

    for epoch in range(state.epoch + 1, config.optim.epochs + 1):
        run.distiller.set_epoch(epoch)  # also on resume: the epoch being (re)entered
        losses = _train_epoch(run, train_batches, config, state, epoch, save_last, progress)
        if not losses:
            raise ArcticError(_nothing_trained(epoch, train_batches))
        last = epoch == config.optim.epochs
        due = epoch % config.train.eval_every == 0 or last
        # with validation, the test split is read after the last epoch only (unless train.test_every_eval)
        testing = val_batches is None or config.train.test_every_eval or last
        scores = {
            split: _evaluate(run, batches, num_classes, split)
            for split, batches in (("val", val_batches), ("test", test_batches))
            if due and batches is not None and (split == "val" or testing)
        }
        state.epoch, state.sums, state.count = epoch, {}, 0
        improved = "val" in scores and scores["val"]["top1"] > state.best["top1"]
        if "val" in scores:
            state.val = {**scores["val"], "epoch": epoch}
        if "test" in scores:
            state.final = {**scores["test"], "epoch": epoch}
        if improved:
            state.best = dict(state.val)
        log.epoch(
            {
                "epoch": epoch,
                "lr": run.scheduler.get_last_lr()[0],
                "seconds": elapsed(),
                **{f"train_{k}": v for k, v in losses.items()},
                **{f"{split}_{k}": m[k] for split, m in scores.items() for k in _LOGGED},
                **unused_counts(train_batches, test_batches, state.short_batches),
            },
            state.step,
        )
        save_last()
        if improved and context.is_main:
            save_checkpoint(run_dir / "best.pt", _payload(checkpoint_extra, run, state, train_batches))
        if progress:
            shown = "".join(
                f"  {split} top-1 {m['top1']:.1f}  top-5 {m['top5']:.1f}" for split, m in scores.items()
            )
            say(f"epoch {epoch}/{config.optim.epochs}: loss {losses['total']:.3f}{shown}")
    log.close()
    distributed.barrier(context)
    metrics_log = run_dir / "metrics.jsonl" if context.is_main else None
    result = {"final": state.final, "seconds": elapsed(), "metrics_log": metrics_log}
    if val_batches is not None:
        result["validation"] = {"final": state.val, "best": state.best}
    return result


_LOGGED = ("top1", "top5", "mean_class", "samples")  # what metrics.jsonl keeps of each evaluation


def _visible_to_all(path: Path, context: DistContext) -> bool:
    """Whether every process sees `path`; an error when only some do (every rank must resume alike)."""
    seen = int(distributed.all_sum(torch.tensor(int(path.is_file())), context))
    if 0 < seen < context.world_size:
        raise ArcticError(
            f"{path} is visible to {seen} of {context.world_size} processes: to resume a run on several "
            "nodes, its folder must be on a filesystem they all share"
        )
    return seen > 0


def _payload(extra: dict, run: Run, state: _Progress, loader, seconds: float | None = None) -> dict:
    """A checkpoint: the deployable student, plus (for `last.pt`, given `seconds`) the training state."""
    payload = {
        **extra,
        "state_dict": run.distiller.student.state_dict(),
        "method_state": run.distiller.extra_modules().state_dict(),
        "epoch": state.epoch,
        "step": state.step,
        "metrics": state.final,
        "validation": state.val,
    }
    if seconds is not None:
        payload["resume"] = {
            "optimizer": run.optimizer.state_dict(),
            "scheduler": run.scheduler.state_dict(),
            "scaler": run.scaler.state_dict(),
            "loader": loader.state_dict(),
            "rng": rng_state(run.context.device),
            "seconds": seconds,
            "best": state.best,
            "sums": dict(state.sums),
            "count": state.count,
            "short_batches": state.short_batches,
            "steps_per_epoch": len(loader),
        }
    return payload


def _restore(checkpoint: dict, run: Run, loader) -> _Progress:
    if "resume" not in checkpoint:
        raise ArcticError("last.pt holds no training state to resume from (written by an older version)")
    saved = checkpoint["resume"]
    run.distiller.student.load_state_dict(checkpoint["state_dict"])
    run.distiller.extra_modules().load_state_dict(checkpoint["method_state"])
    run.optimizer.load_state_dict(saved["optimizer"])
    run.scheduler.load_state_dict(saved["scheduler"])
    run.scaler.load_state_dict(saved["scaler"])
    loader.load_state_dict(saved["loader"])
    restore_rng_state(saved["rng"], run.context.device)
    final = dict(checkpoint["metrics"])
    return _Progress(
        checkpoint["epoch"],
        checkpoint["step"],
        saved["seconds"],
        saved["best"],
        final,
        saved["sums"],
        saved["count"],
        saved.get("short_batches", 0),
        checkpoint.get("validation", {}),
    )


def _train_epoch(
    run: Run, batches, config: Config, state: _Progress, epoch: int, save_last: Callable[[], None], progress
) -> dict[str, float]:
    """One pass (or the rest of one, after a resume); the epoch's mean losses over every process."""
    run.distiller.train()
    sums: dict[str, float] = defaultdict(float, state.sums)
    state.sums = sums
    bar = progress_bar(batches, desc=f"epoch {epoch}", unit="batch", leave=False, enabled=progress)
    parameters = list(run.distiller.trainable_parameters())
    needs_pairs = _needs_pairs(run)
    for batch in bar:
        if needs_pairs and _too_short(batch, run):
            state.short_batches += 1
            continue
        batch = run.to_device(batch)
        with run.autocast():
            _, losses = run.model(batch)
        total = sum(losses.values())
        if not torch.isfinite(total):
            raise FloatingPointError(f"epoch {epoch}: loss became {total.item()} ({_format(losses)})")
        run.optimizer.zero_grad(set_to_none=True)
        with run.backward_kernels():
            run.scaler.scale(total).backward()
        if config.optim.clip_grad > 0:
            run.scaler.unscale_(run.optimizer)
            torch.nn.utils.clip_grad_norm_(parameters, config.optim.clip_grad)
        run.scaler.step(run.optimizer)
        run.scaler.update()
        run.scheduler.step()
        for name, value in {**losses, "total": total}.items():
            sums[name] += float(value.detach())
        state.count += 1
        state.step += 1
        bar.set_postfix_str(_format({k: v / state.count for k, v in sums.items()}))
        if config.train.checkpoint_every and state.step % config.train.checkpoint_every == 0:
            save_last()
    names = sorted(sums)
    totals = distributed.all_sum(
        torch.tensor([sums[n] for n in names] + [state.count], dtype=torch.float64), run.context
    )
    return {n: float(v) / max(float(totals[-1]), 1.0) for n, v in zip(names, totals[:-1], strict=True)}


def _evaluate(run: Run, batches, num_classes: int, split: str = "test") -> dict:
    """Metrics of the student on `split` ("val" or "test") over every process's share: each clip counted
    exactly once."""
    with run.autocast():
        metrics = evaluate(
            run.distiller.student, batches, run.distiller.student_modality, num_classes, run.context.device
        )
    metrics = sum_over_processes(metrics, run.context)
    require_test_clips(metrics, batches, "validation" if split == "val" else "test")
    return metrics


def require_test_clips(metrics: dict, batches, split: str = "test") -> None:
    """A test pass that read no clip has no accuracy: 0 % of nothing would read as a result."""
    if not metrics["samples"]:
        bad = f"{len(batches.report)} of {len(batches.dataset)} {split} samples are bad"
        raise ArcticError(
            f"the {split} split gave no usable clip: {bad} (data.skip_bad skipped them; first: "
            f"{_first_bad(batches.report)}); `arctic check` lists them"
        )


def _first_unsaved_step(state: _Progress) -> int:
    """The first TensorBoard step this run writes, from which older events of the folder are hidden: 0 for
    a new run; after a resume, the step after the checkpoint's epoch, or in the middle of an epoch, the
    checkpoint's own step (the epoch's record, logged at its last step, is written again)."""
    if state.step == 0:
        return 0
    return state.step if state.count else state.step + 1


def _needs_pairs(run: Run) -> bool:
    """Whether the method normalises over a batch of vectors (BatchNorm1d: ARM's and AFD's embeddings),
    which a batch of one clip cannot train."""
    return any(isinstance(m, nn.BatchNorm1d) for m in run.distiller.extra_modules().modules())


def _too_short(batch: dict, run: Run) -> bool:
    """A training batch of a single clip (what skipped bad samples can leave) when the method needs pairs:
    passed over and counted; under torchrun, skipped by every process when any has one."""
    short = len(batch["label"]) < 2
    if run.context.distributed:
        short = bool(distributed.all_sum(torch.tensor(int(short)), run.context))
    return short


def unused_counts(train_batches, test_batches, short_batches: int) -> dict[str, int]:
    """Samples the run could not use (so far), by cause, for every epoch's metrics line."""
    report = train_batches.report
    return {
        "left_out_samples": len(report.left_out),
        "skipped_train_samples": len(report),
        "skipped_test_samples": len(test_batches.report),
        "skipped_short_batches": short_batches,
        "whole_frame_samples": len(report.whole_frames),
    }


def _nothing_trained(epoch: int, batches) -> str:
    """Why an epoch took no step: with data.skip_bad every training sample was bad (or left alone)."""
    return (
        f"epoch {epoch}: no training batch was usable: {len(batches.report)} of {len(batches.dataset)} "
        "training samples are bad (data.skip_bad skipped them) and the rest made no batch of two clips; "
        f"`arctic check` lists them (first: {_first_bad(batches.report)})"
    )


def _first_bad(report, count: int = 3) -> str:
    return shortlist([f"{b.sample_id}: {b.problem}" for b in report.samples.values()], count, "; ") or "none"


def _format(losses: dict) -> str:
    return " ".join(f"{k} {float(v):.3f}" for k, v in losses.items())
