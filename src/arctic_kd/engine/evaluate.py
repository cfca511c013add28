"""Evaluation: top-1, top-5, mean class accuracy, per-class accuracy and the confusion matrix; single-clip
and multi-view (clips × crops, softmax probabilities averaged per video); and how closely a student's
activation maps follow its teacher's."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from arctic_kd.distill.arctic import activation_region_losses, class_maps, warp_to
from arctic_kd.engine import distributed
from arctic_kd.engine.distributed import DistContext
from arctic_kd.errors import ArcticError
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
    measurement (`AgreementMeter.add`) shares this pass's decoding instead of paying for its own.
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


@dataclass(frozen=True)
class ClipAgreement:
    """Per test clip: how closely the student's activation maps follow the teacher's, and whether the
    student is right (its top-1 on that clip)."""

    correlation: Tensor  # (N,) Pearson correlation of the two maps
    arc_loss: Tensor  # (N,) L_ARC
    correct: Tensor  # (N,) bool

    def summary(self) -> dict:
        return {
            "map_correlation": float(self.correlation.mean()),
            "arc_loss": float(self.arc_loss.mean()),
            "clips": len(self.correct),
        }


class AgreementMeter:
    """Per-clip teacher–student map agreement, gathered batch by batch (see `clip_agreement`), so that it
    can share another pass over the test clips (`evaluate_views(..., on_batch=meter.add)`)."""

    def __init__(
        self,
        teacher: nn.Module,
        student: nn.Module,
        modalities: tuple[str, str],
        rho: float,
        device: torch.device,
    ) -> None:
        self.teacher, self.student = teacher.eval(), student.eval()
        self.modalities, self.rho, self.device = modalities, rho, device
        self.correlations: list[Tensor] = []
        self.losses: list[Tensor] = []
        self.correct: list[Tensor] = []

    @torch.no_grad()
    def add(self, batch: dict) -> None:
        """Measure the batch's view 0, the single-clip test clip (its own student forward: the maps need
        the last stage's features, which a plain forward does not return)."""
        teacher_modality, student_modality = self.modalities
        labels = batch["label"].to(self.device)
        teacher_maps = _last_stage_maps(
            self.teacher, _view0(batch[teacher_modality], 5).to(self.device), labels
        )[1]
        logits, student_maps = _last_stage_maps(
            self.student, _view0(batch[student_modality], 5).to(self.device), labels
        )
        theta = batch.get("ir_from_rgb")
        theta = None if theta is None else _view0(theta, 3).to(self.device)
        teacher_maps = warp_to(teacher_maps, tuple(student_maps.shape[1:]), theta)
        self.correlations.append(map_correlation(teacher_maps, student_maps).cpu())
        self.losses.append(activation_region_losses(teacher_maps, student_maps, self.rho).cpu())
        self.correct.append((logits.argmax(1) == labels).cpu())

    def result(self) -> ClipAgreement:
        if not self.correct:
            raise ArcticError("no test clips to compare the maps on (every test sample was skipped?)")
        return ClipAgreement(
            *(torch.cat(values) for values in (self.correlations, self.losses, self.correct))
        )


def clip_agreement(
    teacher: nn.Module,
    student: nn.Module,
    batches: Iterable[dict],
    modalities: tuple[str, str],
    rho: float,
    device: torch.device,
    progress: bool = False,
) -> ClipAgreement:
    """How closely the student's class activation maps follow the teacher's on paired test clips.

    The maps are those ARCTIC's activation region constraint aligns (the true class at the last stage, the
    teacher's warped onto the student's crop), so this tells whether the constraint binds, and, per clip,
    whether agreement goes with right answers. Multi-view batches are measured on view 0, the single-clip
    test clip.
    """
    meter = AgreementMeter(teacher, student, modalities, rho, device)
    for batch in progress_bar(batches, desc="agreement", unit="batch", leave=False, enabled=progress):
        meter.add(batch)
    return meter.result()


def map_correlation(first: Tensor, second: Tensor) -> Tensor:
    """Per-sample Pearson correlation of two (B, ...) maps over all their positions; 0 where one is flat."""
    a, b = first.float().flatten(1), second.float().flatten(1)
    return F.cosine_similarity(a - a.mean(1, keepdim=True), b - b.mean(1, keepdim=True), dim=1)


def _last_stage_maps(model: nn.Module, clips: Tensor, labels: Tensor) -> tuple[Tensor, Tensor]:
    """Logits and the true classes' activation maps."""
    logits, features = model.forward_features(clips)
    return logits, class_maps(model, features["layer4"], labels)


def _view0(values: Tensor, single_ndim: int) -> Tensor:
    """View 0 of multi-view values (N, V, ...); single-view values (`single_ndim` dims) as they are."""
    return values[:, 0] if values.ndim == single_ndim + 1 else values
