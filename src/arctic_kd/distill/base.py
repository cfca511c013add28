"""The distiller base: a trainable student, an optional frozen teacher, and a dict of named losses.

Shaped after mdistiller: `forward_train(batch)` returns the student's logits and {loss name: scalar};
the trainer sums the losses and never needs to know which method it runs. Plain supervised training
is the same shape (`Vanilla`), so one training loop serves teachers, baselines and distillation.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import ClassVar, ParamSpec, TypeVar

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from arctic_kd.config.distill import DistillConfig

P = ParamSpec("P")
R = TypeVar("R")


def full_precision(function: Callable[P, R]) -> Callable[P, R]:
    """Run `function` with autocast off, so that its `.float()` casts really mean fp32 arithmetic: under
    autocast, matmul, einsum and convolutions run in bf16/fp16 whatever their inputs' dtype."""

    @functools.wraps(function)
    def in_fp32(*args: P.args, **kwargs: P.kwargs) -> R:
        with torch.autocast("cpu", enabled=False), torch.autocast("cuda", enabled=False):
            return function(*args, **kwargs)

    return in_fp32


class Distiller(nn.Module):
    """Base of every method. The teacher is frozen: eval mode (BatchNorm included) and no gradients."""

    def __init__(
        self,
        student: nn.Module,
        teacher: nn.Module | None = None,
        student_modality: str = "ir",
        teacher_modality: str = "rgb",
        label_smoothing: float = 0.0,
    ) -> None:
        super().__init__()
        self.student = student
        self.teacher = teacher
        self.student_modality = student_modality
        self.teacher_modality = teacher_modality
        self.label_smoothing = label_smoothing
        if teacher is not None:
            teacher.eval()
            teacher.requires_grad_(False)

    def train(self, mode: bool = True) -> Distiller:
        super().train(mode)
        if self.teacher is not None:
            self.teacher.eval()
        return self

    def trainable_parameters(self) -> Iterator[nn.Parameter]:
        """The student's and the method's own modules' parameters; never the teacher's."""
        return (p for p in self.parameters() if p.requires_grad)

    def extra_modules(self) -> nn.ModuleDict:
        """Modules the method trains besides the student (saved with it, dropped at deployment)."""
        return nn.ModuleDict({n: m for n, m in self.named_children() if n not in ("student", "teacher")})

    def teacher_forward(self, x: Tensor) -> tuple[Tensor, dict[str, Tensor]]:
        with torch.no_grad():
            return self.teacher.forward_features(x)

    @full_precision
    def cross_entropy(self, logits: Tensor, labels: Tensor) -> Tensor:
        return F.cross_entropy(logits.float(), labels, label_smoothing=self.label_smoothing)

    def set_epoch(self, epoch: int) -> None:
        """Called by the trainer before each epoch (from 1); for methods whose weights follow a schedule."""

    def forward_train(self, batch: dict) -> tuple[Tensor, dict[str, Tensor]]:
        raise NotImplementedError

    def forward(self, x: Tensor) -> Tensor:
        """Inference: the student alone."""
        return self.student(x)


@dataclass
class Outputs:
    """One network's logits and per-stage feature maps for a batch."""

    logits: Tensor
    features: dict[str, Tensor]


class MatchingDistiller(Distiller):
    """The shape of the baselines: weighted CE on the label plus losses comparing student and teacher.

    Subclasses implement `distill_losses`; the teacher runs without gradients, its outputs detached.
    """

    ce_weight: float = 1.0

    def forward_train(self, batch: dict) -> tuple[Tensor, dict[str, Tensor]]:
        labels = batch["label"]
        teacher = Outputs(*self.teacher_forward(batch[self.teacher_modality]))
        student = Outputs(*self.student.forward_features(batch[self.student_modality]))
        losses = {"ce": self.ce_weight * self.cross_entropy(student.logits, labels)}
        losses.update(self.distill_losses(teacher, student, labels))
        return student.logits, losses

    def distill_losses(self, teacher: Outputs, student: Outputs, labels: Tensor) -> dict[str, Tensor]:
        raise NotImplementedError


class SummedOverStages(MatchingDistiller):
    """The methods (AT, SP) that compare each configured stage on its own with one `stage_loss` and add the
    stages up before weighting: `name` is both the loss's key and the method's config section."""

    name: ClassVar[str]

    def __init__(
        self, student: nn.Module, teacher: nn.Module, config: DistillConfig, label_smoothing: float = 0.0
    ):
        super().__init__(student, teacher, label_smoothing=label_smoothing)
        self.settings = getattr(config, self.name)

    @staticmethod
    def stage_loss(teacher: Tensor, student: Tensor) -> Tensor:
        raise NotImplementedError

    def distill_losses(self, teacher: Outputs, student: Outputs, labels: Tensor) -> dict[str, Tensor]:
        losses = [self.stage_loss(teacher.features[s], student.features[s]) for s in self.settings.stages]
        return {self.name: self.settings.weight * torch.stack(losses).sum()}


class Vanilla(Distiller):
    """Cross-entropy on one modality: the RGB teacher, or the IR-only baseline."""

    def forward_train(self, batch: dict) -> tuple[Tensor, dict[str, Tensor]]:
        logits = self.student(batch[self.student_modality])
        return logits, {"ce": self.cross_entropy(logits, batch["label"])}


@full_precision
def kd_divergence(student_logits: Tensor, teacher_probs: Tensor, tau: float) -> Tensor:
    """Per-sample KL(teacher ‖ student) at temperature τ, scaled by τ² (Hinton), in fp32."""
    log_student = F.log_softmax(student_logits.float() / tau, dim=1)
    teacher_probs = teacher_probs.float()
    log_teacher = torch.log(teacher_probs.clamp_min(1e-12))
    return (teacher_probs * (log_teacher - log_student)).sum(dim=1) * tau**2
