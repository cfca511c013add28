"""ARCTIC: attention-based relation matching + activation region constraint + correctness-aware KD.

Our reading of Quan et al. (CVIU 2023), built from published blocks (DESIGN.md §4):
- ARM matches normalised spatio-temporal attention maps (default) or *relations* (rows of the batch
  similarity matrix) between every teacher stage and every student stage, weighted by a learned
  per-sample attention over student stages (after "Show, Attend and Distill", Ji et al. 2021); maps or
  relations, not raw features, so that the appearance gap between RGB and IR does not dominate. The
  maps are the default because they measured best (BENCHMARKS.md, ARCTIC's ablations): per clip, they
  tell the IR student where the RGB teacher's energy lies, and do not depend on the batch size.
- ARC keeps the student's most salient spatio-temporal regions where the teacher's are: class
  activation maps compared on the union of both maps' top-ρ positions.
- KD distils only where the teacher is right (`mask`), or with the wrong top-1 swapped out (`shift`);
  `ahead` distils only where the teacher is right and surer of the label than the student.
Weights λ_arm = 2, λ_arc = 1, λ_kd = 0.25, chosen on a second synthetic render (BENCHMARKS.md, ARCTIC's
weights): KD keeps the student's attention maps away from the teacher's, so at λ_kd = 1 it costs ARM its
gain; a lower λ_kd and a stronger ARM keep both.
Everything numerically delicate (Gram matrices, softmax, KL, activation maps) runs in fp32, with autocast
switched off (`full_precision`): under AMP only the networks' forward passes run in bf16/fp16.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor, nn

from arctic_kd.config.distill import ArmConfig, DistillConfig, KdConfig
from arctic_kd.distill.base import Distiller, full_precision, kd_divergence
from arctic_kd.distill.maps import (
    attention_map,
    channel_energy,
    class_maps,
    grad_cam,
    normalise_maps,
    normalised_energies,
    resample_energy,
    similarity_rows,
    warp_to,
)


class AttentionRelationMatching(nn.Module):
    """L_ARM = Σ_t mean_b Σ_s α[b,t,s]·‖v_t[b] − v_s[b]‖²; α is a learned attention over student stages."""

    def __init__(self, teacher_channels: dict[str, int], student_channels: dict[str, int], config: ArmConfig):
        super().__init__()
        self.stages = tuple(config.stages)
        self.value = config.value
        dim = config.dim
        self.query = nn.ModuleDict({s: _embedding(teacher_channels[s], dim) for s in self.stages})
        self.key = nn.ModuleDict({s: _embedding(student_channels[s], dim) for s in self.stages})
        self.bilinear = nn.Parameter(torch.eye(dim).repeat(len(self.stages), 1, 1))
        self.teacher_position = nn.Parameter(torch.randn(len(self.stages), dim) * 0.02)
        self.student_position = nn.Parameter(torch.randn(len(self.stages), dim) * 0.02)
        self.scale = 1.0 / math.sqrt(dim)

    def attention(self, teacher: dict[str, Tensor], student: dict[str, Tensor]) -> Tensor:
        """α (B, teacher stages, student stages): per sample, which student stage answers each one."""
        query = torch.stack([self.query[s](_pool(teacher[s])) for s in self.stages], dim=1)
        key = torch.stack([self.key[s](_pool(student[s])) for s in self.stages], dim=1)
        energy = torch.einsum("btd,tde,bse->bts", query.float(), self.bilinear.float(), key.float())
        energy = energy + self.teacher_position.float() @ self.student_position.float().t()
        return torch.softmax(energy * self.scale, dim=-1)

    def distances(self, teacher: dict[str, Tensor], student: dict[str, Tensor]) -> Tensor:
        """d(v_t[b], v_s[b]) for every teacher stage t and student stage s: (B, T stages, S stages)."""
        if self.value == "relation":
            t_rows = torch.stack([similarity_rows(teacher[s]) for s in self.stages], dim=1)  # (B, nt, B)
            s_rows = torch.stack([similarity_rows(student[s]) for s in self.stages], dim=1)
            return (t_rows[:, :, None] - s_rows[:, None]).pow(2).sum(-1)
        energies = [channel_energy(student[s]) for s in self.stages]  # once, not once per teacher stage
        columns = []
        for t in self.stages:
            size = tuple(teacher[t].shape[2:])
            resampled = torch.cat([resample_energy(e, size) for e in energies], dim=1)  # (B, S, T, H, W)
            s_maps = normalised_energies(resampled)  # together: on CPU the step's cost is its op count
            columns.append((attention_map(teacher[t])[:, None] - s_maps).pow(2).sum(-1))
        return torch.stack(columns, dim=1)

    @full_precision
    def forward(self, teacher: dict[str, Tensor], student: dict[str, Tensor]) -> Tensor:
        alpha = self.attention(teacher, student)
        return (alpha * self.distances(teacher, student)).sum(-1).mean(0).sum()


def _embedding(channels: int, dim: int) -> nn.Sequential:
    return nn.Sequential(nn.Linear(channels, dim), nn.BatchNorm1d(dim))


def _pool(features: Tensor) -> Tensor:
    return features.float().mean(dim=(2, 3, 4))


def activation_region_loss(teacher_maps: Tensor, student_maps: Tensor, rho: float) -> Tensor:
    """L_ARC: the batch mean of `activation_region_losses`."""
    return activation_region_losses(teacher_maps, student_maps, rho).mean()


@full_precision
def activation_region_losses(teacher_maps: Tensor, student_maps: Tensor, rho: float) -> Tensor:
    """Per sample (B,), the mean squared difference of normalised maps on the union of both maps' top-ρ
    positions."""
    teacher, student = normalise_maps(teacher_maps).flatten(1), normalise_maps(student_maps).flatten(1)
    positions = teacher.shape[1]
    k = min(positions, max(1, math.ceil(rho * positions)))
    region = torch.zeros_like(teacher, dtype=torch.bool)
    region.scatter_(1, teacher.topk(k, dim=1).indices, True)
    region.scatter_(1, student.detach().topk(k, dim=1).indices, True)
    squared = (teacher - student).pow(2) * region
    return squared.sum(1) / region.sum(1)


@full_precision
def correctness_aware_kd(
    student_logits: Tensor, teacher_logits: Tensor, labels: Tensor, config: KdConfig
) -> Tensor:
    """Hinton KD where the teacher is right; its wrong answers are masked out or shifted to the label.

    `ahead` also skips the samples whose label the student already holds surer than the teacher (at
    τ = 1): an IR student can overtake a cross-modal teacher, and distilling there only pulls it back
    towards the teacher's RGB-specific doubts.
    """
    teacher_probs = torch.softmax(teacher_logits.float() / config.tau, dim=1)
    predicted = teacher_logits.argmax(dim=1)
    wrong = predicted != labels
    if config.mode == "shift":
        teacher_probs = _swap_classes(teacher_probs, labels, predicted, wrong)
    per_sample = kd_divergence(student_logits, teacher_probs, config.tau)
    if config.mode in ("mask", "ahead"):
        per_sample = per_sample * (~wrong)
    if config.mode == "ahead":
        per_sample = per_sample * _teacher_surer(teacher_logits, student_logits.detach(), labels)
    return per_sample.mean()


def _teacher_surer(teacher_logits: Tensor, student_logits: Tensor, labels: Tensor) -> Tensor:
    """Per sample, whether the teacher gives the label a higher probability than the student."""
    return _label_probability(teacher_logits, labels) > _label_probability(student_logits, labels)


def _label_probability(logits: Tensor, labels: Tensor) -> Tensor:
    return torch.softmax(logits.float(), dim=1).gather(1, labels[:, None])[:, 0]


def _swap_classes(probs: Tensor, labels: Tensor, predicted: Tensor, rows: Tensor) -> Tensor:
    """Exchange the probabilities of the true and the predicted class on the given rows."""
    probs = probs.clone()
    index = torch.arange(len(probs), device=probs.device)[rows]
    at_label, at_pred = probs[index, labels[rows]], probs[index, predicted[rows]]
    probs[index, labels[rows]], probs[index, predicted[rows]] = at_pred, at_label
    return probs


class ARCTIC(Distiller):
    """L = CE + λ_arm·L_ARM + λ_arc·L_ARC + λ_kd·L_KD; any of the three parts is off at weight 0."""

    def __init__(
        self, student: nn.Module, teacher: nn.Module, config: DistillConfig, label_smoothing: float = 0.0
    ):
        super().__init__(student, teacher, label_smoothing=label_smoothing)
        self.config = config
        self.arm = (
            AttentionRelationMatching(teacher.stage_channels, student.stage_channels, config.arm)
            if config.arm.weight > 0
            else None
        )

    def forward_train(self, batch: dict) -> tuple[Tensor, dict[str, Tensor]]:
        labels = batch["label"]
        use_gradcam = self.config.arc.weight > 0 and self.config.arc.maps == "gradcam"
        t_logits, t_features, t_maps = self._teacher(batch[self.teacher_modality], labels, use_gradcam)
        s_logits, s_features = self.student.forward_features(batch[self.student_modality])
        losses = {"ce": self.cross_entropy(s_logits, labels)}
        if self.arm is not None:
            losses["arm"] = self.config.arm.weight * self.arm(t_features, s_features)
        if self.config.arc.weight > 0:
            classes = t_logits.argmax(1) if use_gradcam else labels
            s_maps = self._student_maps(s_logits, s_features, classes, use_gradcam)
            t_maps = warp_to(t_maps, tuple(s_maps.shape[1:]), batch.get("ir_from_rgb"))
            losses["arc"] = self.config.arc.weight * activation_region_loss(
                t_maps, s_maps, self.config.arc.rho
            )
        if self.config.kd.weight > 0:
            losses["kd"] = self.config.kd.weight * correctness_aware_kd(
                s_logits, t_logits, labels, self.config.kd
            )
        return s_logits, losses

    def _teacher(
        self, x: Tensor, labels: Tensor, use_gradcam: bool
    ) -> tuple[Tensor, dict[str, Tensor], Tensor]:
        """Teacher logits, features and activation maps; with Grad-CAM the frozen teacher needs a backward."""
        if not use_gradcam:
            logits, features = self.teacher_forward(x)
            return logits, features, class_maps(self.teacher, features["layer4"], labels)
        with torch.enable_grad():
            logits, features = self.teacher.forward_features(x.detach().requires_grad_(True))
            maps = grad_cam(logits, features, self.config.arc.gradcam_stages, logits.argmax(1))
        return logits.detach(), {k: v.detach() for k, v in features.items()}, maps.detach()

    def _student_maps(self, logits: Tensor, features: dict[str, Tensor], classes: Tensor, use_gradcam: bool):
        if use_gradcam:
            return grad_cam(logits, features, self.config.arc.gradcam_stages, classes)
        return class_maps(self.student, features["layer4"], classes, self.config.arc.fixed_classifier)
