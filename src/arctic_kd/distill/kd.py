"""KD: Hinton, Vinyals & Dean, "Distilling the Knowledge in a Neural Network" (NIPS DL workshop 2015).

The student matches the teacher's softened class probabilities, KL(p_T^τ ‖ p_S^τ)·τ² (the τ² keeps the
soft-target gradients on the scale of the hard-target ones). Published defaults as in mdistiller's CIFAR
recipe, which follows the paper's advice to weight the hard-label term much lower: τ = 4, KD weight 0.9,
CE weight 0.1 (`distill.hinton`).
"""

from __future__ import annotations

from torch import Tensor, nn

from arctic_kd.config.distill import DistillConfig
from arctic_kd.distill.base import MatchingDistiller, Outputs, kd_divergence


def hinton_kd(student_logits: Tensor, teacher_logits: Tensor, tau: float) -> Tensor:
    """Batch mean of KL(teacher ‖ student) at temperature τ, times τ²."""
    teacher_probs = (teacher_logits.float() / tau).softmax(dim=1)
    return kd_divergence(student_logits, teacher_probs, tau).mean()


class KD(MatchingDistiller):
    def __init__(
        self, student: nn.Module, teacher: nn.Module, config: DistillConfig, label_smoothing: float = 0.0
    ):
        super().__init__(student, teacher, label_smoothing=label_smoothing)
        self.settings = config.hinton
        self.ce_weight = config.hinton.ce_weight

    def distill_losses(self, teacher: Outputs, student: Outputs, labels: Tensor) -> dict[str, Tensor]:
        return {"kd": self.settings.weight * hinton_kd(student.logits, teacher.logits, self.settings.tau)}
