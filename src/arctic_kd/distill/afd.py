"""AFD: Ji, Heo & Park, "Show, Attend and Distill: Knowledge Distillation via Attention-based Feature
Matching" (AAAI 2021).

Every teacher stage is matched against every student stage; a learned attention decides, per sample, how
much each pair counts. Query q_t = BN(Linear(GAP(F_t))) from the teacher, key from the student's pooled
features through Linear+BN+ReLU and a bilinear Linear+BN giving one key per (student, teacher) pair, plus
learnable stage-position embeddings: α[b,t,:] = softmax_s((⟨k_{s,t}, q_t⟩ + p_t·p_s)/√d). The matched
values are L2-normalised spatial attention maps mean_c F², the student's average-pooled to the teacher
stage's resolution; L = β·Σ_t mean_b Σ_s α[b,t,s]·mean((v_s − v_t)²). Published defaults: β = 200,
d = 128 (`distill.afd`).

Simplifications, to keep it compact: the candidates are the four stage outputs rather than every residual
block's output, and maps are spatio-temporal (T, H, W) instead of (H, W), pooled with adaptive average
pooling to the teacher's (T, H, W) as the original pools (H, W).
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from arctic_kd.config.distill import AfdConfig, DistillConfig
from arctic_kd.distill.base import MatchingDistiller, Outputs


def pooled_attention(features: Tensor, size: tuple[int, ...]) -> Tensor:
    """mean_c F², adaptive-average-pooled to `size`, flattened and L2-normalised: (B, positions), fp32."""
    energy = F.adaptive_avg_pool3d(features.float().pow(2).mean(dim=1, keepdim=True), size)
    return F.normalize(energy.flatten(1), dim=1)


class FeatureAttention(nn.Module):
    """The learned teacher-stage × student-stage attention and the attention-weighted matching loss."""

    def __init__(self, teacher_channels: dict[str, int], student_channels: dict[str, int], config: AfdConfig):
        super().__init__()
        self.stages = tuple(config.stages)
        dim, count = config.dim, len(self.stages)
        self.query = nn.ModuleDict(
            {s: nn.Sequential(nn.Linear(teacher_channels[s], dim), nn.BatchNorm1d(dim)) for s in self.stages}
        )
        self.key = nn.ModuleDict(
            {
                s: nn.Sequential(nn.Linear(student_channels[s], dim), nn.BatchNorm1d(dim), nn.ReLU())
                for s in self.stages
            }
        )
        self.bilinear = nn.Sequential(nn.Linear(dim, dim * count), nn.BatchNorm1d(dim * count))
        self.teacher_position = nn.Parameter(nn.init.xavier_normal_(torch.empty(count, dim)))
        self.student_position = nn.Parameter(nn.init.xavier_normal_(torch.empty(count, dim)))
        self.scale = 1.0 / math.sqrt(dim)

    def attention(self, teacher: dict[str, Tensor], student: dict[str, Tensor]) -> Tensor:
        """α (B, teacher stages, student stages), a softmax over student stages."""
        count = len(self.stages)
        query = torch.stack([self.query[s](teacher[s].mean(dim=(2, 3, 4))) for s in self.stages], dim=1)
        key = torch.stack([self.key[s](student[s].mean(dim=(2, 3, 4))) for s in self.stages], dim=1)
        batch = key.shape[0]
        pair_keys = self.bilinear(key.flatten(0, 1)).view(batch, count, count, -1)  # (B, s, t, d)
        logits = torch.einsum("bstd,btd->bts", pair_keys.float(), query.float())
        logits = logits + self.teacher_position.float() @ self.student_position.float().t()
        return torch.softmax(logits * self.scale, dim=-1)

    def forward(self, teacher: dict[str, Tensor], student: dict[str, Tensor]) -> Tensor:
        alpha = self.attention(teacher, student)
        total = alpha.new_zeros(())
        for index, stage in enumerate(self.stages):
            size = tuple(teacher[stage].shape[2:])
            target = pooled_attention(teacher[stage], size)
            candidates = torch.stack([pooled_attention(student[s], size) for s in self.stages], dim=1)
            differences = (candidates - target[:, None]).pow(2).mean(dim=2)  # (B, student stages)
            total = total + (alpha[:, index] * differences).sum(dim=1).mean()
        return total


class AFD(MatchingDistiller):
    def __init__(
        self, student: nn.Module, teacher: nn.Module, config: DistillConfig, label_smoothing: float = 0.0
    ):
        super().__init__(student, teacher, label_smoothing=label_smoothing)
        self.settings = config.afd
        self.attention = FeatureAttention(teacher.stage_channels, student.stage_channels, config.afd)

    def distill_losses(self, teacher: Outputs, student: Outputs, labels: Tensor) -> dict[str, Tensor]:
        return {"afd": self.settings.weight * self.attention(teacher.features, student.features)}
