"""The ARC agreement meter: how closely a student's class activation maps follow its teacher's, per test
clip. It belongs to the method (the maps and L_ARC are ARCTIC's) and is handed to evaluation as a hook
(`engine.evaluate.evaluate_views(..., on_batch=meter.add)`), so the generic evaluator knows no method.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from arctic_kd.distill.arctic import activation_region_losses
from arctic_kd.distill.maps import class_maps, warp_to
from arctic_kd.errors import ArcticError
from arctic_kd.progress import progress_bar


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
