"""One training loop for every stage: a `Distiller` gives logits and named losses, the loop does the rest.

Per epoch: train with a progress bar, evaluate on the test split, append a line to `metrics.jsonl`,
write `last.pt` and (when top-1 improves) `best.pt` atomically.
"""

from __future__ import annotations

import json
import math
import time
from collections import defaultdict
from collections.abc import Callable, Iterable
from pathlib import Path

import torch
from torch import nn

from arctic_kd.config import OptimConfig
from arctic_kd.distill.base import Distiller
from arctic_kd.engine.checkpoint import save_checkpoint
from arctic_kd.engine.evaluate import evaluate
from arctic_kd.progress import progress_bar, say


def build_optimizer(parameters: Iterable[nn.Parameter], config: OptimConfig) -> torch.optim.Optimizer:
    """SGD (Nesterov) or AdamW; no weight decay on biases and normalisation weights."""
    decay, no_decay = [], []
    for p in parameters:
        (no_decay if p.ndim <= 1 else decay).append(p)
    groups = [
        {"params": decay, "weight_decay": config.weight_decay},
        {"params": no_decay, "weight_decay": 0.0},
    ]
    if config.optimizer == "sgd":
        return torch.optim.SGD(groups, lr=config.lr, momentum=config.momentum, nesterov=config.momentum > 0)
    return torch.optim.AdamW(groups, lr=config.lr)


def warmup_cosine(total_steps: int, warmup_steps: int) -> Callable[[int], float]:
    """Learning-rate factor per step: linear warm-up to 1, then cosine decay to 0."""

    def factor(step: int) -> float:
        if step < warmup_steps:
            return (step + 1) / warmup_steps
        progress = (step - warmup_steps) / max(1, total_steps - warmup_steps)
        return 0.5 * (1.0 + math.cos(math.pi * min(1.0, progress)))

    return factor


def fit(
    distiller: Distiller,
    train_batches,
    test_batches,
    config: OptimConfig,
    run_dir: Path,
    checkpoint_extra: dict,
    num_classes: int,
    device: torch.device,
    progress: bool = True,
) -> dict:
    """Train `distiller.student` (and the method's modules); returns the best and the final test metrics."""
    run_dir.mkdir(parents=True, exist_ok=True)
    distiller.to(device)
    optimizer = build_optimizer(distiller.trainable_parameters(), config)
    steps_per_epoch = len(train_batches)
    scheduler = torch.optim.lr_scheduler.LambdaLR(
        optimizer,
        warmup_cosine(config.epochs * steps_per_epoch, round(config.warmup_epochs * steps_per_epoch)),
    )
    best: dict = {"top1": -1.0}
    final: dict = {}
    start = time.perf_counter()
    for epoch in range(1, config.epochs + 1):
        distiller.set_epoch(epoch)
        losses = _train_epoch(distiller, train_batches, optimizer, scheduler, config, device, epoch, progress)
        metrics = evaluate(distiller.student, test_batches, distiller.student_modality, num_classes, device)
        record = {
            "epoch": epoch,
            "lr": scheduler.get_last_lr()[0],
            "seconds": time.perf_counter() - start,
            **{f"train_{k}": v for k, v in losses.items()},
            **{f"test_{k}": metrics[k] for k in ("top1", "top5", "mean_class")},
        }
        with open(run_dir / "metrics.jsonl", "a") as log:
            log.write(json.dumps(record) + "\n")
        payload = {
            **checkpoint_extra,
            "state_dict": distiller.student.state_dict(),
            "method_state": distiller.extra_modules().state_dict(),
            "epoch": epoch,
            "metrics": metrics,
        }
        save_checkpoint(run_dir / "last.pt", payload)
        if metrics["top1"] > best["top1"]:
            best = {**metrics, "epoch": epoch}
            save_checkpoint(run_dir / "best.pt", payload)
        final = {**metrics, "epoch": epoch}
        if progress:
            say(
                f"epoch {epoch}/{config.epochs}: loss {losses['total']:.3f}  "
                f"test top-1 {metrics['top1']:.1f}  top-5 {metrics['top5']:.1f}"
            )
    return {"best": best, "final": final, "seconds": time.perf_counter() - start}


def _train_epoch(
    distiller, batches, optimizer, scheduler, config, device, epoch, progress
) -> dict[str, float]:
    distiller.train()
    sums: dict[str, float] = defaultdict(float)
    count = 0
    bar = progress_bar(batches, desc=f"epoch {epoch}", unit="batch", leave=False, enabled=progress)
    for batch in bar:
        batch = {k: v.to(device, non_blocking=True) if torch.is_tensor(v) else v for k, v in batch.items()}
        _, losses = distiller.forward_train(batch)
        total = sum(losses.values())
        if not torch.isfinite(total):
            raise FloatingPointError(f"epoch {epoch}: loss became {total.item()} ({_format(losses)})")
        optimizer.zero_grad(set_to_none=True)
        total.backward()
        if config.clip_grad > 0:
            torch.nn.utils.clip_grad_norm_(list(distiller.trainable_parameters()), config.clip_grad)
        optimizer.step()
        scheduler.step()
        for name, value in {**losses, "total": total}.items():
            sums[name] += float(value.detach())
        count += 1
        bar.set_postfix_str(_format({k: v / count for k, v in sums.items()}))
    return {k: v / max(count, 1) for k, v in sums.items()}


def _format(losses: dict) -> str:
    return " ".join(f"{k} {float(v):.3f}" for k, v in losses.items())
