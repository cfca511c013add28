"""Evaluation: top-1, top-5, mean class accuracy, per-class accuracy and the confusion matrix; single-clip
and multi-view (clips × crops, softmax probabilities averaged per video). Method-specific measurements
share the pass through the `on_batch` hook (ARCTIC's map agreement: `distill.agreement`)."""

from __future__ import annotations

from collections.abc import Callable, Iterable

import torch
from torch import Tensor, nn

from arctic_kd.engine import distributed
from arctic_kd.engine.distributed import DistContext
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


def sum_over_processes(report: dict, context: DistContext) -> dict:
    """The report of all processes' shares together (see `ClipLoader.shard`): their confusion matrices and
    top-5 hits add up, so each test clip is counted exactly once."""
    if not context.distributed:
        return report
    n = len(report["confusion"])
    counts = torch.cat([torch.tensor(report["confusion"]).flatten(), torch.tensor([report["top5_hits"]])])
    counts = distributed.all_sum(counts, context)
    return accuracy_report(counts[:-1].view(n, n), int(counts[-1]))


class ScoreCounts:
    """Running confusion matrix and top-5 hits of class scores (logits or probabilities) against labels."""

    def __init__(self, num_classes: int) -> None:
        self.num_classes = num_classes
        self.confusion = torch.zeros(num_classes, num_classes, dtype=torch.long)
        self.top5_hits = 0

    def add(self, scores: Tensor, labels: Tensor) -> None:
        n = self.num_classes
        self.confusion += torch.bincount(labels * n + scores.argmax(1), minlength=n**2).view(n, n)
        self.top5_hits += int((scores.topk(min(5, n), dim=1).indices == labels[:, None]).any(1).sum())

    def report(self) -> dict:
        return accuracy_report(self.confusion, self.top5_hits)


def average_view_probabilities(logits: Tensor) -> Tensor:
    """(N, V, K) logits of V views of N videos → (N, K) mean softmax probabilities, the multi-view score.

    Probabilities, not logits, are averaged (as TSN and mmaction2 do): one overconfident view cannot
    outvote the others by an arbitrarily large margin.
    """
    return logits.float().softmax(-1).mean(1)


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
    counts = ScoreCounts(num_classes)
    for batch in progress_bar(batches, desc="eval", unit="batch", leave=False, enabled=progress):
        counts.add(model(batch[modality].to(device, non_blocking=True)).float().cpu(), batch["label"])
    return counts.report()


@torch.no_grad()
def evaluate_views(
    model: nn.Module,
    batches: Iterable[dict],
    modality: str,
    num_classes: int,
    device: torch.device,
    progress: bool = False,
    on_batch: Callable[[dict], None] | None = None,
) -> dict:
    """Single-clip and multi-view accuracy in one pass over multi-view clips (N, V, C, T, H, W).

    The top-level metrics are view 0's (the single-clip test clip, so they equal `evaluate`'s on the
    single-clip loader); "multiview" holds those of the probabilities averaged over all V views, and
    "views" is V. Plain (N, C, T, H, W) batches count as one view. Views run through the model one at a
    time, so memory stays that of a single-clip batch. Each batch is also handed to `on_batch`, so another
    measurement (`distill.agreement.AgreementMeter.add`) shares this pass's decoding instead of paying for
    its own.
    """
    model.eval()
    single, multiview = ScoreCounts(num_classes), ScoreCounts(num_classes)
    views = 1
    for batch in progress_bar(batches, desc="eval views", unit="batch", leave=False, enabled=progress):
        if on_batch is not None:
            on_batch(batch)
        clips = batch[modality]
        if clips.ndim == 5:
            clips = clips[:, None]
        views = clips.shape[1]
        clips = clips.to(device, non_blocking=True)
        logits = torch.stack([model(clips[:, v]).float().cpu() for v in range(views)], 1)
        single.add(logits[:, 0], batch["label"])
        multiview.add(average_view_probabilities(logits), batch["label"])
    return {**single.report(), "multiview": multiview.report(), "views": views}
