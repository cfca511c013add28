"""RKD: Park et al., "Relational Knowledge Distillation" (CVPR 2019).

The student keeps the teacher's *structure* of a batch of embeddings rather than the embeddings: the
distance-wise loss compares pairwise Euclidean distances (each matrix divided by its mean non-zero
distance), the angle-wise loss the cosines of the angles that every triplet forms; both with the Huber
(smooth-L1) loss. Published weights: distance 25, angle 50 (paper and mdistiller), on the pooled
penultimate embedding — here the global average of `layer4` (`distill.rkd`).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from arctic_kd.config.distill import DistillConfig
from arctic_kd.distill.base import MatchingDistiller, Outputs


def normalised_distances(embedding: Tensor) -> Tensor:
    """Pairwise Euclidean distances (B, B) divided by their mean over distinct pairs."""
    squared = (embedding[None] - embedding[:, None]).pow(2).sum(-1)
    off_diagonal = ~torch.eye(len(embedding), dtype=torch.bool, device=embedding.device)
    distances = squared.clamp_min(1e-12).sqrt() * off_diagonal  # clamp: no infinite gradient at 0
    return distances / distances[off_diagonal].mean().clamp_min(1e-12)


def triplet_angles(embedding: Tensor) -> Tensor:
    """cos ∠(e_i − e_j, e_k − e_j) for every triplet: (B, B, B) indexed [j, i, k]."""
    directions = F.normalize(embedding[None] - embedding[:, None], dim=2)
    return directions @ directions.transpose(1, 2)


def rkd_losses(teacher: Tensor, student: Tensor) -> tuple[Tensor, Tensor]:
    """Distance-wise and angle-wise losses between two (B, D) embeddings, fp32; the teacher is a target."""
    teacher, student = teacher.float().detach(), student.float()
    distance = F.smooth_l1_loss(normalised_distances(student), normalised_distances(teacher))
    angle = F.smooth_l1_loss(triplet_angles(student), triplet_angles(teacher))
    return distance, angle


class RKD(MatchingDistiller):
    def __init__(
        self, student: nn.Module, teacher: nn.Module, config: DistillConfig, label_smoothing: float = 0.0
    ):
        super().__init__(student, teacher, label_smoothing=label_smoothing)
        self.settings = config.rkd

    def distill_losses(self, teacher: Outputs, student: Outputs, labels: Tensor) -> dict[str, Tensor]:
        stage = self.settings.stage
        distance, angle = rkd_losses(
            teacher.features[stage].mean(dim=(2, 3, 4)), student.features[stage].mean(dim=(2, 3, 4))
        )
        return {
            "rkd_distance": self.settings.distance_weight * distance,
            "rkd_angle": self.settings.angle_weight * angle,
        }
