"""Evaluation: top-1, top-5, mean class accuracy, per-class accuracy and the confusion matrix."""

from __future__ import annotations

from collections.abc import Iterable

import torch
from torch import Tensor, nn

from arctic_kd.progress import progress_bar


def accuracy_report(confusion: Tensor, top5_hits: int) -> dict:
    """Metrics from a (true × predicted) confusion matrix and the number of top-5 hits."""
    total = int(confusion.sum())
    per_class_total = confusion.sum(1)
    per_class = (confusion.diag() / per_class_total.clamp_min(1)).tolist()
    present = per_class_total > 0
    return {
        "top1": 100.0 * float(confusion.diag().sum()) / max(total, 1),
        "top5": 100.0 * top5_hits / max(total, 1),
        "mean_class": 100.0 * float(torch.tensor(per_class)[present].mean()) if present.any() else 0.0,
        "per_class": [100.0 * v for v in per_class],
        "confusion": confusion.tolist(),
        "samples": total,
        "top5_hits": top5_hits,  # with the confusion matrix, what partial results of several processes add up
    }


@torch.no_grad()
def evaluate(
    model: nn.Module,
    batches: Iterable[dict],
    modality: str,
    num_classes: int,
    device: torch.device,
    progress: bool = False,
) -> dict:
    """Single-clip accuracy of `model` on `modality` clips."""
    model.eval()
    confusion = torch.zeros(num_classes, num_classes, dtype=torch.long)
    top5_hits = 0
    for batch in progress_bar(batches, desc="eval", unit="batch", leave=False, enabled=progress):
        logits = model(batch[modality].to(device, non_blocking=True)).float().cpu()
        labels = batch["label"]
        confusion += torch.bincount(labels * num_classes + logits.argmax(1), minlength=num_classes**2).view(
            num_classes, num_classes
        )
        k = min(5, num_classes)
        top5_hits += int((logits.topk(k, dim=1).indices == labels[:, None]).any(1).sum())
    return accuracy_report(confusion, top5_hits)
