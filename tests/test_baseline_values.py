"""The baselines' weights, AFD's attention-weighted matching, RKD's angles and FitNets' resampling against
numbers derived by hand (the per-method loss formulas are pinned in test_baselines.py)."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from arctic_kd.config.distill import AfdConfig, DistillConfig
from arctic_kd.distill import METHODS
from arctic_kd.distill.afd import FeatureAttention
from arctic_kd.distill.at import attention_transfer
from arctic_kd.distill.dkd import decoupled_kd
from arctic_kd.distill.kd import hinton_kd
from arctic_kd.distill.rkd import rkd_losses
from arctic_kd.distill.sp import similarity_preserving
from tests.test_arctic import tiny
from tests.test_arctic_values import (
    ALPHA,
    WRONG_AXIS,
    arm_by_hand,
    softmax,
    squared_distance,
    two_stage_toy_case,
)


def clips(ir_size: int = 32) -> dict:
    generator = torch.Generator().manual_seed(7)
    return {
        "rgb": torch.randn(4, 3, 4, 32, 32, generator=generator),
        "ir": torch.randn(4, 1, 4, ir_size, ir_size, generator=generator),
        "label": torch.tensor([0, 1, 2, 3]),
    }


def losses_of(method: str, config: DistillConfig, student, teacher, batch: dict) -> dict[str, float]:
    torch.manual_seed(1)  # the method's own modules start alike
    distiller = METHODS[method](student, teacher, config).eval()  # eval: BatchNorm from running statistics
    with torch.no_grad():
        return {k: float(v) for k, v in distiller.forward_train(batch)[1].items()}


# (method, the config section and field of a weight, the loss it scales)
WEIGHTS = [
    ("kd", "hinton", "weight", "kd"),
    ("fitnets", "fitnets", "weight", "hint"),
    ("at", "at", "weight", "at"),
    ("sp", "sp", "weight", "sp"),
    ("rkd", "rkd", "distance_weight", "rkd_distance"),
    ("rkd", "rkd", "angle_weight", "rkd_angle"),
    ("afd", "afd", "weight", "afd"),
    ("dkd", "dkd", "alpha", "tckd"),
    ("dkd", "dkd", "beta", "nckd"),
]


def unweighted(method: str, loss: str, distiller, config: DistillConfig, batch: dict) -> float:
    """The loss term at weight 1, from the loss functions (pinned by hand in test_baselines.py)."""
    with torch.no_grad():
        t_logits, t = distiller.teacher.forward_features(batch["rgb"])
        s_logits, s = distiller.student.forward_features(batch["ir"])
        if method == "kd":
            return hinton_kd(s_logits, t_logits, config.hinton.tau).item()
        if method == "fitnets":
            stage = config.fitnets.stage
            return F.mse_loss(distiller.regressor(s[stage]), t[stage]).item()
        if method in ("at", "sp"):
            function, stages = {
                "at": (attention_transfer, config.at.stages),
                "sp": (similarity_preserving, config.sp.stages),
            }[method]
            return sum(function(t[x], s[x]).item() for x in stages)
        if method == "rkd":
            pooled = [f[config.rkd.stage].mean(dim=(2, 3, 4)) for f in (t, s)]
            return rkd_losses(*pooled)[0 if loss == "rkd_distance" else 1].item()
        if method == "afd":
            return distiller.attention(t, s).item()
        tckd, nckd = decoupled_kd(s_logits, t_logits, batch["label"], config.dkd.tau)
        return (tckd if loss == "tckd" else nckd).mean().item()


@pytest.mark.parametrize(("method", "section", "field", "loss"), WEIGHTS)
def test_each_baseline_weight_multiplies_its_loss_only(method, section, field, loss):
    torch.manual_seed(0)
    student, teacher, batch = tiny(1), tiny(3), clips()
    values = []
    for weight in (1.0, 3.0):
        config = DistillConfig(method=method)
        setattr(getattr(config, section), field, weight)
        values.append(losses_of(method, config, student, teacher, batch))
    config = DistillConfig(method=method)
    setattr(getattr(config, section), field, 1.0)
    torch.manual_seed(1)
    distiller = METHODS[method](student, teacher, config).eval()
    assert values[0][loss] > 1e-6
    assert values[0][loss] == pytest.approx(unweighted(method, loss, distiller, config, batch), rel=1e-5)
    assert values[1][loss] == pytest.approx(3 * values[0][loss], rel=1e-5)
    for other in set(values[0]) - {loss}:
        assert values[1][other] == pytest.approx(values[0][other], rel=1e-6), other


@pytest.mark.parametrize("method", sorted(set(METHODS) - {"arctic"}))
def test_the_label_term_is_plain_cross_entropy_but_for_kd(method):
    """Built directly, without label smoothing given: CE weight 1 (KD's published 0.1), no smoothing."""
    torch.manual_seed(0)
    student, teacher, batch = tiny(1), tiny(3), clips()
    losses = losses_of(method, DistillConfig(method=method), student, teacher, batch)
    with torch.no_grad():
        plain = F.cross_entropy(student.eval()(batch["ir"]), batch["label"]).item()
    assert losses["ce"] == pytest.approx((0.1 if method == "kd" else 1.0) * plain, rel=1e-5)


# AFD --------------------------------------------------------------------------------------------------


def known_attention_afd() -> FeatureAttention:
    """AFD with its pair keys at zero, so that α comes from the stage positions alone: ALPHA (see
    test_arctic_values.py; d = 4, scale 1/2)."""
    channels = {"a": 1, "b": 1}
    afd = FeatureAttention(channels, channels, AfdConfig(dim=4, stages=("a", "b")))
    with torch.no_grad():
        afd.bilinear[0].weight.zero_()
        afd.bilinear[0].bias.zero_()
        afd.teacher_position.copy_(torch.eye(4)[:2])
        afd.student_position.zero_()
        afd.student_position[0, 0], afd.student_position[1, 1] = 2 * math.log(3), 2 * math.log(2)
    return afd.eval()


def test_afd_on_a_two_stage_toy_case():
    """The ARM toy case of test_arctic_values.py; AFD's distance is the mean over positions (2) of the
    squared differences of the maps, and the student's longer stage is average-pooled in pairs."""
    teacher, student, t_maps, s_maps = two_stage_toy_case()
    distances = [
        [[squared_distance(t_maps[b][t], s_maps[b][s]) / 2 for s in range(2)] for t in range(2)]
        for b in range(2)
    ]
    afd = known_attention_afd()
    torch.testing.assert_close(afd.attention(teacher, student), torch.tensor(ALPHA).expand(2, 2, 2))
    expected = arm_by_hand(distances, ALPHA)
    assert afd(teacher, student).item() == pytest.approx(expected, rel=1e-5)
    assert abs(arm_by_hand(distances, WRONG_AXIS) - expected) > 0.01


def test_afd_attention_uses_query_pair_keys_and_positions():
    """α against a NumPy loop over Ji et al.'s formula, BatchNorm at identity (eval, running 0 / 1, eps 0):
    q_t = W_q·GAP(F_t) + b, k_s = relu(W_k·GAP(F_s) + b), k_{s,t} = (W_p·k_s + b)[t·d : (t+1)·d],
    α[t, :] = softmax_s((⟨k_{s,t}, q_t⟩ + p_t·p_s)/√d)."""
    torch.manual_seed(4)
    teacher_channels, student_channels = {"a": 3, "b": 2}, {"a": 2, "b": 4}
    afd = FeatureAttention(teacher_channels, student_channels, AfdConfig(dim=4, stages=("a", "b")))
    for module in afd.modules():
        if isinstance(module, torch.nn.BatchNorm1d):
            module.eps = 0.0
    afd.eval()
    teacher = {"a": torch.randn(2, 3, 1, 2, 2), "b": torch.randn(2, 2, 1, 1, 2)}
    student = {"a": torch.randn(2, 2, 1, 2, 2), "b": torch.randn(2, 4, 1, 1, 1)}

    def linear(layer: torch.nn.Linear, x: np.ndarray) -> np.ndarray:
        return layer.weight.detach().numpy() @ x + layer.bias.detach().numpy()

    def pooled(features: torch.Tensor, b: int) -> np.ndarray:
        return features[b].numpy().reshape(features.shape[1], -1).mean(1)

    p_t, p_s = afd.teacher_position.detach().numpy(), afd.student_position.detach().numpy()
    expected = np.zeros((2, 2, 2))
    for b in range(2):
        for t, t_stage in enumerate("ab"):
            q = linear(afd.query[t_stage][0], pooled(teacher[t_stage], b))
            logits = []
            for s, s_stage in enumerate("ab"):
                k = np.maximum(linear(afd.key[s_stage][0], pooled(student[s_stage], b)), 0)
                pair = linear(afd.bilinear[0], k)[4 * t : 4 * (t + 1)]
                logits.append((pair @ q + p_t[t] @ p_s[s]) / 2.0)
            expected[b, t] = softmax(logits)
    torch.testing.assert_close(afd.attention(teacher, student), torch.tensor(expected, dtype=torch.float32))


# RKD --------------------------------------------------------------------------------------------------


def angles_by_hand(points: list[tuple[float, float]]) -> list[float]:
    """cos ∠(e_i − e_j, e_k − e_j) for every (j, i, k); 0 where a direction is the zero vector."""

    def direction(a, b):
        d = (a[0] - b[0], a[1] - b[1])
        norm = math.hypot(*d)
        return (d[0] / norm, d[1] / norm) if norm > 0 else (0.0, 0.0)

    n = len(points)
    values = []
    for j in range(n):
        for i in range(n):
            for k in range(n):
                u, v = direction(points[i], points[j]), direction(points[k], points[j])
                values.append(u[0] * v[0] + u[1] * v[1])
    return values


def huber(x: float) -> float:
    return 0.5 * x * x if abs(x) < 1 else abs(x) - 0.5


def test_rkd_angle_loss_of_a_right_triangle_against_a_line():
    teacher = [(0.0, 0.0), (1.0, 0.0), (0.0, 1.0)]  # angles 90°, 45°, 45°
    student = [(0.0, 0.0), (1.0, 0.0), (3.0, 0.0)]  # collinear: every cosine ±1 or 0
    expected = (
        sum(huber(s - t) for s, t in zip(angles_by_hand(student), angles_by_hand(teacher), strict=True)) / 27
    )
    _, angle = rkd_losses(torch.tensor(teacher), torch.tensor(student))
    assert expected > 0.05 and angle.item() == pytest.approx(expected, rel=1e-5)


def test_rkd_compares_the_pooled_embeddings_of_its_stage():
    torch.manual_seed(0)
    student, teacher, batch = tiny(1), tiny(3), clips()
    losses = losses_of("rkd", DistillConfig(method="rkd"), student, teacher, batch)
    with torch.no_grad():
        embeddings = [
            model.forward_features(batch[m])[1]["layer4"].mean(dim=(2, 3, 4))
            for model, m in ((teacher.eval(), "rgb"), (student.eval(), "ir"))
        ]
    distance, angle = rkd_losses(*embeddings)
    config = DistillConfig().rkd
    assert losses["rkd_distance"] == pytest.approx(config.distance_weight * distance.item(), rel=1e-5)
    assert losses["rkd_angle"] == pytest.approx(config.angle_weight * angle.item(), rel=1e-5)


# FitNets ----------------------------------------------------------------------------------------------


@pytest.mark.parametrize("ir_size", [16, 48])
def test_fitnets_resamples_the_regressed_map_of_a_student_of_another_size(ir_size):
    torch.manual_seed(0)
    student, teacher, batch = tiny(1), tiny(3), clips(ir_size)
    config = DistillConfig(method="fitnets")
    torch.manual_seed(1)
    distiller = METHODS["fitnets"](student, teacher, config).eval()
    with torch.no_grad():
        hint = teacher.eval().forward_features(batch["rgb"])[1]["layer2"]
        guided = distiller.regressor(student.eval().forward_features(batch["ir"])[1]["layer2"])
        assert guided.shape[2:] != hint.shape[2:]
        guided = F.interpolate(guided, size=hint.shape[2:], mode="trilinear", align_corners=False)
        expected = config.fitnets.weight * F.mse_loss(guided, hint).item()
        assert distiller.forward_train(batch)[1]["hint"].item() == pytest.approx(expected, rel=1e-5)
