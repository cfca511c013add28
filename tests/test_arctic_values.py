"""ARCTIC's arithmetic pinned against numbers derived by hand (DESIGN.md §4), not against the code itself.

Each case is built so that the plausible one-line slips give another number: the attention softmax over
the wrong axis, a sum for a mean, an absolute for a squared distance, one map's region for the union,
`floor` for `ceil`, a Grad-CAM without its ReLU, a flipped correctness mask, τ for τ².
The expected values are computed here with plain Python from the formulas; where a test also computes
what a slip would give, it checks that number differs, so the case cannot pass by accident.
"""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest
import torch

from arctic_kd.config.distill import ArmConfig, DistillConfig, KdConfig
from arctic_kd.distill import ARCTIC
from arctic_kd.distill.arctic import (
    AttentionRelationMatching,
    activation_region_loss,
    activation_region_losses,
    correctness_aware_kd,
)
from arctic_kd.distill.maps import class_maps, grad_cam, similarity_rows, warp_to
from tests.test_arctic import tiny

# helpers on plain lists ------------------------------------------------------------------------------


def unit(vector: list[float]) -> list[float]:
    norm = math.sqrt(sum(v * v for v in vector))
    return [v / norm for v in vector]


def squared_distance(a: list[float], b: list[float]) -> float:
    return sum((x - y) ** 2 for x, y in zip(a, b, strict=True))


def softmax(values: list[float]) -> list[float]:
    top = max(values)
    exps = [math.exp(v - top) for v in values]
    return [e / sum(exps) for e in exps]


def clip(values: list[float]) -> torch.Tensor:
    """One sample's 1-channel features over (T, H, W) = (1, 1, len): shape (1, 1, 1, 1, len)."""
    return torch.tensor(values, dtype=torch.float32).view(1, 1, 1, 1, -1)


# similarity rows ----------------------------------------------------------------------------------------


def test_similarity_rows_normalise_each_row_of_a_gram_matrix_with_unequal_row_norms():
    # x0 = (1, 0), x1 = (1, 1), x2 = (0, 2): G = [[1, 1, 0], [1, 2, 2], [0, 2, 4]], row norms √2, 3, √20
    features = torch.tensor([[1.0, 0.0], [1.0, 1.0], [0.0, 2.0]]).view(3, 2, 1, 1, 1)
    s2, s5 = math.sqrt(2), math.sqrt(5)
    expected = torch.tensor([[1 / s2, 1 / s2, 0.0], [1 / 3, 2 / 3, 2 / 3], [0.0, 1 / s5, 2 / s5]])
    torch.testing.assert_close(similarity_rows(features), expected)
    # normalising columns instead gives the transpose, which differs here
    assert not torch.allclose(expected.t(), expected, atol=0.1)


# ARM --------------------------------------------------------------------------------------------------

# α by construction: with the bilinear map at zero, energy[t, s] = p_t·p_s and α = softmax_s(energy/√d).
# d = 4 (scale 1/2); p_a = e1, p_b = e2 for the teacher, p_a = 2 ln 3·e1, p_b = 2 ln 2·e2 for the student:
# scaled energies [[ln 3, 0], [0, ln 2]] → α[a] = (3/4, 1/4), α[b] = (1/3, 2/3) for every sample.
ALPHA = [[3 / 4, 1 / 4], [1 / 3, 2 / 3]]
WRONG_AXIS = [[3 / 4, 1 / 3], [1 / 4, 2 / 3]]  # softmax over teacher stages instead


def known_attention_arm(value: str, width: int = 1) -> AttentionRelationMatching:
    channels = {"a": width, "b": width}
    arm = AttentionRelationMatching(channels, channels, ArmConfig(value=value, dim=4, stages=("a", "b")))
    with torch.no_grad():
        arm.bilinear.zero_()
        arm.teacher_position.copy_(torch.eye(4)[:2])
        arm.student_position.zero_()
        arm.student_position[0, 0], arm.student_position[1, 1] = 2 * math.log(3), 2 * math.log(2)
    return arm.eval()


def arm_by_hand(distances: list[list[list[float]]], alpha: list[list[float]]) -> float:
    """Σ_t mean_b Σ_s α[t][s]·d[b][t][s]."""
    batch = len(distances)
    return sum(
        sum(alpha[t][s] * distances[b][t][s] for s in range(2)) / batch
        for b in range(batch)
        for t in range(2)
    )


def test_arm_attention_is_a_softmax_over_student_stages():
    arm = known_attention_arm("attention")
    features = {"a": torch.rand(3, 1, 1, 2, 2), "b": torch.rand(3, 1, 1, 1, 2)}
    alpha = arm.attention(features, features)
    torch.testing.assert_close(alpha, torch.tensor(ALPHA).expand(3, 2, 2))


def two_stage_toy_case() -> tuple[dict, dict, list, list]:
    """Teacher and student features of 2 clips at stages a and b, and their unit(F²) maps by hand: the
    student's stage b is twice as long, so its energies are averaged in pairs onto the teacher's grid,
    (1, 1, 4, 4) → (1, 4) and (1, 9, 0, 1) → (5, ½) (align_corners=True would pick the end points, (1, 1))."""
    teacher = {"a": torch.cat([clip([1, 2]), clip([3, 0])]), "b": torch.cat([clip([2, 1]), clip([1, 1])])}
    student = {
        "a": torch.cat([clip([1, 1]), clip([0, 2])]),
        "b": torch.cat([clip([1, 1, 2, 2]), clip([1, 3, 0, 1])]),
    }
    t_maps = [[unit([1, 4]), unit([4, 1])], [unit([9, 0]), unit([1, 1])]]
    s_maps = [[unit([1, 1]), unit([1, 4])], [unit([0, 4]), unit([5, 0.5])]]
    return teacher, student, t_maps, s_maps


def test_arm_on_attention_maps_of_a_two_stage_toy_case():
    teacher, student, t_maps, s_maps = two_stage_toy_case()
    distances = [
        [[squared_distance(t_maps[b][t], s_maps[b][s]) for s in range(2)] for t in range(2)] for b in range(2)
    ]
    expected = arm_by_hand(distances, ALPHA)

    arm = known_attention_arm("attention")
    torch.testing.assert_close(arm.distances(teacher, student), torch.tensor(distances))
    assert arm(teacher, student).item() == pytest.approx(expected, rel=1e-5)
    # the slips this case tells apart from the formula
    assert abs(arm_by_hand(distances, WRONG_AXIS) - expected) > 0.02
    absolute = [
        [
            [sum(abs(x - y) for x, y in zip(t_maps[b][t], s_maps[b][s], strict=True)) for s in range(2)]
            for t in range(2)
        ]
        for b in range(2)
    ]
    assert abs(arm_by_hand(absolute, ALPHA) - expected) > 0.05


def test_arm_on_batch_relations_of_a_two_stage_toy_case():
    # three samples, 2-d features: v = rows of G = rownorm(Q Qᵀ) over the batch
    teacher = {
        "a": torch.tensor([[1.0, 0.0], [1.0, 1.0], [0.0, 2.0]]).view(3, 2, 1, 1, 1),
        "b": torch.tensor([[1.0, 1.0], [1.0, 0.0], [2.0, 1.0]]).view(3, 2, 1, 1, 1),
    }
    student = {
        "a": torch.tensor([[0.0, 1.0], [1.0, 1.0], [1.0, 0.0]]).view(3, 2, 1, 1, 1),
        "b": torch.tensor([[1.0, 0.0], [0.0, 1.0], [1.0, 1.0]]).view(3, 2, 1, 1, 1),
    }

    def rows(vectors: list[list[float]]) -> list[list[float]]:
        gram = [[sum(x * y for x, y in zip(u, v, strict=True)) for v in vectors] for u in vectors]
        return [unit(row) for row in gram]

    t_rows = [rows([[1, 0], [1, 1], [0, 2]]), rows([[1, 1], [1, 0], [2, 1]])]
    s_rows = [rows([[0, 1], [1, 1], [1, 0]]), rows([[1, 0], [0, 1], [1, 1]])]
    distances = [
        [[squared_distance(t_rows[t][b], s_rows[s][b]) for s in range(2)] for t in range(2)] for b in range(3)
    ]
    expected = arm_by_hand(distances, ALPHA)

    arm = known_attention_arm("relation", width=2)
    torch.testing.assert_close(arm.distances(teacher, student), torch.tensor(distances))
    assert arm(teacher, student).item() == pytest.approx(expected, rel=1e-5)
    assert abs(arm_by_hand(distances, WRONG_AXIS) - expected) > 1e-3


def test_arm_attention_uses_the_learned_query_bilinear_key_and_positions():
    """α against a NumPy loop over the formula q_tᵀ·B_t·k_s + p_t·p_s, with BatchNorm at identity (eval)."""
    torch.manual_seed(3)
    teacher_channels, student_channels = {"a": 3, "b": 2}, {"a": 2, "b": 4}
    arm = AttentionRelationMatching(teacher_channels, student_channels, ArmConfig(dim=4, stages=("a", "b")))
    with torch.no_grad():
        arm.bilinear.copy_(torch.randn(2, 4, 4))
        arm.teacher_position.copy_(torch.randn(2, 4))
        arm.student_position.copy_(torch.randn(2, 4))
        for embedding in [*arm.query.values(), *arm.key.values()]:
            embedding[1].eps = 0.0  # running mean 0, variance 1: BatchNorm is the identity in eval mode
    arm.eval()
    teacher = {"a": torch.randn(2, 3, 1, 2, 2), "b": torch.randn(2, 2, 1, 1, 2)}
    student = {"a": torch.randn(2, 2, 1, 2, 2), "b": torch.randn(2, 4, 1, 1, 1)}

    def embed(linear: torch.nn.Linear, features: torch.Tensor, b: int) -> np.ndarray:
        pooled = features[b].numpy().reshape(features.shape[1], -1).mean(1)
        return linear.weight.detach().numpy() @ pooled + linear.bias.detach().numpy()

    bilinear = arm.bilinear.detach().numpy()
    p_t, p_s = arm.teacher_position.detach().numpy(), arm.student_position.detach().numpy()
    expected = np.zeros((2, 2, 2))
    for b in range(2):
        for t, t_stage in enumerate("ab"):
            q = embed(arm.query[t_stage][0], teacher[t_stage], b)
            energies = []
            for s, s_stage in enumerate("ab"):
                k = embed(arm.key[s_stage][0], student[s_stage], b)
                energies.append((q @ bilinear[t] @ k + p_t[t] @ p_s[s]) / 2.0)  # √d = 2
            expected[b, t] = softmax(energies)
    torch.testing.assert_close(arm.attention(teacher, student), torch.tensor(expected, dtype=torch.float32))


# ARC --------------------------------------------------------------------------------------------------

# 10 positions, ρ = 0.25: k = ⌈2.5⌉ = 3 positions per map (⌊2.5⌋ = 2 would be another region).
TEACHER_0 = [0.9, 1.0, 0.7, 0.0, 0.2, 0.1, 0.3, 0.4, 0.5, 0.6]  # top-3 {1, 0, 2}
STUDENT_0 = [0.0, 0.1, 0.2, 1.0, 0.9, 0.3, 0.8, 0.4, 0.5, 0.6]  # top-3 {3, 4, 6}
TEACHER_1 = [1.0, 0.9, 0.8, 0.0, 0.1, 0.2, 0.3, 0.4, 0.5, 0.6]  # top-3 {0, 1, 2}
STUDENT_1 = [0.9, 1.0, 0.0, 0.8, 0.1, 0.2, 0.3, 0.4, 0.5, 0.6]  # top-3 {1, 0, 3}


def region_mse(teacher: list[float], student: list[float], region: set[int]) -> float:
    return sum((teacher[i] - student[i]) ** 2 for i in region) / len(region)


def test_arc_compares_the_union_of_both_top_regions_with_k_rounded_up():
    # sample 0, union {0, 1, 2, 3, 4, 6}: differences .9 .9 .5 −1 −.7 −.5 → 3.61 / 6
    # sample 1, union {0, 1, 2, 3}: differences .1 −.1 .8 −.8 → 1.3 / 4
    union_0, union_1 = 3.61 / 6, 1.3 / 4
    assert region_mse(TEACHER_0, STUDENT_0, {0, 1, 2, 3, 4, 6}) == pytest.approx(union_0)
    assert region_mse(TEACHER_1, STUDENT_1, {0, 1, 2, 3}) == pytest.approx(union_1)
    # maps on other scales and offsets: the per-sample min-max normalisation brings them back to [0, 1]
    teacher = torch.tensor([TEACHER_0, TEACHER_1]).view(2, 1, 2, 5) * torch.tensor([3.0, 0.5]).view(
        2, 1, 1, 1
    )
    student = torch.tensor([STUDENT_0, STUDENT_1]).view(2, 1, 2, 5) - 2.0
    per_sample = activation_region_losses(teacher, student, rho=0.25)
    torch.testing.assert_close(per_sample, torch.tensor([union_0, union_1]))
    assert activation_region_loss(teacher, student, rho=0.25).item() == pytest.approx((union_0 + union_1) / 2)
    # what the slips would give on sample 0, all apart from the union's 0.6017
    slips = {
        "teacher's region only": region_mse(TEACHER_0, STUDENT_0, {0, 1, 2}),  # 0.6233
        "student's region only": region_mse(TEACHER_0, STUDENT_0, {3, 4, 6}),  # 0.58
        "k rounded down": region_mse(TEACHER_0, STUDENT_0, {0, 1, 3, 4}),  # 0.7775
        "every position": region_mse(TEACHER_0, STUDENT_0, set(range(10))),  # 0.365
    }
    assert all(abs(value - union_0) > 0.02 for value in slips.values()), slips


def test_arc_keeps_at_least_one_position_and_at_most_all():
    teacher = torch.tensor([TEACHER_0]).view(1, 1, 1, 10)
    student = torch.tensor([STUDENT_0]).view(1, 1, 1, 10)
    # ρ·N = 0.01 → k = 1: teacher's top {1}, student's top {3}
    assert activation_region_loss(teacher, student, rho=1e-3).item() == pytest.approx((0.81 + 1.0) / 2)
    # ρ > 1 cannot ask for more positions than there are
    assert activation_region_loss(teacher, student, rho=1.5).item() == pytest.approx(3.65 / 10)


# Grad-CAM ---------------------------------------------------------------------------------------------


def test_grad_cam_of_a_linear_model_is_the_relu_of_the_class_weighted_features():
    """logits = W_a·GAP(F_a) + W_b·GAP(F_b): the gradient of class k at every position of stage x is
    W_x[k]/positions, so Grad-CAM is relu(Σ_c W_x[k, c]·F_x[c]) up to a scale, which min-max removes.
    Stage a (1×2×3) is resampled to stage b's 1×1×3 (the mean of its two rows) before normalising; the
    result is the mean of both stages' normalised maps."""
    w_a = torch.tensor([[1.0, -1.0], [0.0, 1.0], [2.0, 1.0]])
    w_b = torch.tensor([[1.0, 0.0], [1.0, 1.0], [-1.0, 1.0]])
    f_a = torch.tensor(
        [
            [[[5, -5, 2], [-3, 3, 2]], [[1, 1, 1], [1, 1, 1]]],  # sample 0: class 0 → ch0 − ch1
            [[[1, 0, -1], [0, 1, 0]], [[0, 1, 0], [-2, 0, 4]]],  # sample 1: class 2 → 2·ch0 + ch1
        ],
        dtype=torch.float32,
    ).view(2, 2, 1, 2, 3)
    f_b = torch.tensor([[[-1, 2, 0], [5, 0, 1]], [[1, 0, 2], [3, 1, 0]]], dtype=torch.float32).view(
        2, 2, 1, 1, 3
    )
    f_a.requires_grad_(True)
    f_b.requires_grad_(True)
    logits = f_a.mean((2, 3, 4)) @ w_a.t() + f_b.mean((2, 3, 4)) @ w_b.t()
    classes = torch.tensor([0, 2])
    maps = grad_cam(logits, {"a": f_a, "b": f_b}, ("a", "b"), classes)
    # sample 0, a: [[4, −6, 1], [−4, 2, 1]] → relu → row mean [2, 1, 1] → [1, 0, 0]
    #           b: [−1, 2, 0] → relu → [0, 1, 0]
    # sample 1, a: [[2, 1, −2], [−2, 2, 4]] → relu → row mean [1, 1.5, 2] → [0, .5, 1]
    #           b: ch1 − ch0 = [2, 1, −2] → relu → [1, .5, 0]
    expected = torch.tensor([[0.5, 0.5, 0.0], [0.5, 0.5, 0.5]]).view(2, 1, 1, 3)
    torch.testing.assert_close(maps, expected)
    # without the ReLU, sample 0 would be mean([2/3, 0, 1], [0, 1, 1/3]); the other class another map
    other = grad_cam(logits, {"a": f_a, "b": f_b}, ("a", "b"), torch.tensor([1, 1]))
    assert not torch.allclose(other, expected, atol=0.1)


# correctness-aware KD ---------------------------------------------------------------------------------

TAU = 2.0
KD_TEACHER = [[4.0, 0.0, 2.0], [2.0, 1.5, -3.0], [0.0, 3.0, 1.0]]
KD_STUDENT = [[1.0, 0.0, 0.0], [2.0, 0.7, 0.7], [2.0, 0.0, 1.0]]
KD_LABELS = [
    0,
    0,
    2,
]  # 0: teacher right and surer; 1: right but the student is surer; 2: the teacher is wrong


def kl_by_hand(teacher_probs: list[float], student_logits: list[float], tau: float) -> float:
    """τ²·Σ p·ln(p/q), q = softmax(student/τ)."""
    q = softmax([v / tau for v in student_logits])
    return tau**2 * sum(p * math.log(p / qi) for p, qi in zip(teacher_probs, q, strict=True))


def per_sample_kd(shift: bool = False) -> list[float]:
    values = []
    for teacher, student, label in zip(KD_TEACHER, KD_STUDENT, KD_LABELS, strict=True):
        p = softmax([v / TAU for v in teacher])
        predicted = teacher.index(max(teacher))
        if shift and predicted != label:
            p[label], p[predicted] = p[predicted], p[label]
        values.append(kl_by_hand(p, student, TAU))
    return values


def test_the_kd_case_has_the_intended_correctness_and_confidence():
    label_prob = [softmax(row)[label] for row, label in zip(KD_TEACHER, KD_LABELS, strict=True)]
    student_prob = [softmax(row)[label] for row, label in zip(KD_STUDENT, KD_LABELS, strict=True)]
    assert label_prob[0] > student_prob[0] and label_prob[1] < student_prob[1]
    at_tau = [softmax([v / TAU for v in row])[0] for row in (KD_TEACHER[1], KD_STUDENT[1])]
    assert at_tau[0] > at_tau[1]  # so `ahead` must compare at τ = 1, as documented
    assert [row.index(max(row)) for row in KD_TEACHER] == [0, 0, 1]


@pytest.mark.parametrize("mode", ["none", "mask", "shift", "ahead"])
def test_correctness_aware_kd_of_each_mode_against_kl_by_hand(mode):
    plain, shifted = per_sample_kd(), per_sample_kd(shift=True)
    expected = {
        "none": sum(plain) / 3,
        "mask": (plain[0] + plain[1]) / 3,  # the wrong sample counts as 0, the mean stays over all 3
        "shift": (shifted[0] + shifted[1] + shifted[2]) / 3,
        "ahead": plain[0] / 3,
    }
    values = sorted(expected.values())
    assert all(b - a > 0.05 for a, b in itertools.pairwise(values)), expected  # four numbers
    result = correctness_aware_kd(
        torch.tensor(KD_STUDENT),
        torch.tensor(KD_TEACHER),
        torch.tensor(KD_LABELS),
        KdConfig(tau=TAU, mode=mode),
    )
    assert result.item() == pytest.approx(expected[mode], rel=1e-5)


def test_kd_scales_with_tau_squared_at_tau_three():
    # teacher p = (1/4, 3/4) at τ = 3 (logits 0 and 3·ln 3), student uniform: τ²·(¼·ln ½ + ¾·ln 3/2)
    tau = 3.0
    teacher = torch.tensor([[0.0, tau * math.log(3.0)]])
    by_hand = tau**2 * (0.25 * math.log(0.5) + 0.75 * math.log(1.5))
    result = correctness_aware_kd(
        torch.zeros(1, 2), teacher, torch.tensor([1]), KdConfig(tau=tau, mode="mask")
    )
    assert result.item() == pytest.approx(by_hand, rel=1e-5)


# the distiller's wiring -------------------------------------------------------------------------------


def clips(size: int = 3) -> dict:
    generator = torch.Generator().manual_seed(5)
    return {
        "rgb": torch.randn(size, 3, 4, 32, 32, generator=generator),
        "ir": torch.randn(size, 1, 4, 32, 32, generator=generator),
        "label": torch.tensor([0, 1, 2])[:size],
    }


@pytest.mark.parametrize("part", ["arm", "arc", "kd"])
def test_each_weight_multiplies_its_loss(part):
    torch.manual_seed(0)
    student, teacher = tiny(1), tiny(3)
    batch = clips()
    losses = []
    for weight in (1.0, 3.0):
        config = DistillConfig()
        config.kd.mode = "none"  # a random teacher is mostly wrong: keep every sample in KD
        getattr(config, part).weight = weight
        torch.manual_seed(1)  # the ARM module's initialisation
        distiller = ARCTIC(student, teacher, config).eval()  # eval: BatchNorm from running statistics
        with torch.no_grad():
            losses.append(distiller.forward_train(batch)[1])
    assert losses[0][part].item() > 0
    assert losses[1][part].item() == pytest.approx(3 * losses[0][part].item(), rel=1e-5)
    # at weight 1 the term is the loss function itself (a weight dividing the loss also scales by 3)
    with torch.no_grad():
        t_logits, t_features = teacher.eval().forward_features(batch["rgb"])
        s_logits, s_features = distiller.student.forward_features(batch["ir"])
        if part == "arm":
            unweighted = distiller.arm(t_features, s_features)
        elif part == "kd":
            unweighted = correctness_aware_kd(s_logits, t_logits, batch["label"], config.kd)
        else:
            s_maps = class_maps(distiller.student, s_features["layer4"], batch["label"])
            t_maps = class_maps(teacher, t_features["layer4"], batch["label"])
            unweighted = activation_region_loss(
                warp_to(t_maps, tuple(s_maps.shape[1:])), s_maps, config.arc.rho
            )
    assert losses[0][part].item() == pytest.approx(unweighted.item(), rel=1e-5)
    assert losses[1]["ce"].item() == pytest.approx(losses[0]["ce"].item(), rel=1e-6)


def test_grad_cam_arc_maps_both_networks_for_the_teachers_predicted_class():
    torch.manual_seed(0)
    config = DistillConfig()
    config.arm.weight = config.kd.weight = 0.0
    config.arc.maps = "gradcam"
    distiller = ARCTIC(tiny(1), tiny(3), config).eval()
    batch = clips()
    with torch.no_grad():
        predicted = distiller.teacher(batch["rgb"]).argmax(1)
    batch["label"] = (predicted + 1) % 5  # the teacher is wrong everywhere
    arc = distiller.forward_train(batch)[1]["arc"]

    stages = config.arc.gradcam_stages

    def maps(model: torch.nn.Module, x: torch.Tensor, classes: torch.Tensor) -> torch.Tensor:
        logits, features = model.forward_features(x)
        return grad_cam(logits, features, stages, classes).detach()

    with torch.enable_grad():
        t_maps = maps(distiller.teacher, batch["rgb"].requires_grad_(True), predicted)
        s_pred, s_label = (maps(distiller.student, batch["ir"], c) for c in (predicted, batch["label"]))
    t_maps = warp_to(t_maps, tuple(s_pred.shape[1:]))
    expected = activation_region_loss(t_maps, s_pred, config.arc.rho)
    assert arc.item() == pytest.approx(expected.item(), rel=1e-5)
    assert abs(activation_region_loss(t_maps, s_label, config.arc.rho).item() - expected.item()) > 1e-3


def test_warp_without_registration_averages_when_it_halves_a_map():
    # trilinear, align_corners=False: halving samples between each pair of cells, i.e. their mean
    maps = torch.tensor([[1.0, 3.0, 2.0, 6.0], [0.0, 4.0, 8.0, 8.0]]).view(2, 1, 1, 4)
    torch.testing.assert_close(
        warp_to(maps, (1, 1, 2)), torch.tensor([[2.0, 4.0], [2.0, 8.0]]).view(2, 1, 1, 2)
    )
