"""The baselines' losses against values derived by hand, and distillers that train only the student side."""

from __future__ import annotations

import math

import pytest
import torch

from arctic_kd.config.distill import DistillConfig
from arctic_kd.distill import METHODS, build_distiller
from arctic_kd.distill.afd import pooled_attention
from arctic_kd.distill.at import attention_transfer
from arctic_kd.distill.base import kd_divergence
from arctic_kd.distill.dkd import decoupled_kd
from arctic_kd.distill.kd import hinton_kd
from arctic_kd.distill.rkd import rkd_losses
from arctic_kd.distill.sp import similarity_preserving
from tests.test_arctic import tiny


def batch(size: int = 4, ir_size: int = 32) -> dict:
    torch.manual_seed(0)
    return {
        "rgb": torch.randn(size, 3, 4, 32, 32),
        "ir": torch.randn(size, 1, 4, ir_size, ir_size),
        "label": torch.arange(size) % 5,
    }


# KD ---------------------------------------------------------------------------------------------------


def test_kd_of_identical_logits_is_zero():
    logits = torch.randn(6, 5) * 3
    tau = 4.0
    # fp32 rounding of log(softmax) against log_softmax is ~1e-7 per class, and the loss scales it by τ².
    assert hinton_kd(logits, logits, tau=tau).item() == pytest.approx(0.0, abs=1e-6 * tau**2)


def test_kd_matches_a_two_class_case_by_hand_with_the_tau_squared_factor():
    # teacher at τ: p = (1/4, 3/4) (logits 0 and τ·ln 3); student uniform q = (1/2, 1/2)
    # KL(p‖q) = 1/4·ln(1/2) + 3/4·ln(3/2); the loss is τ² times that
    by_hand = 0.25 * math.log(0.5) + 0.75 * math.log(1.5)
    for tau in (1.0, 2.0, 4.0):
        teacher = torch.tensor([[0.0, tau * math.log(3.0)]])
        assert hinton_kd(torch.zeros(1, 2), teacher, tau).item() == pytest.approx(tau**2 * by_hand, rel=1e-5)


def test_kd_weights_the_label_term_as_published():
    distiller = build_distiller(DistillConfig(method="kd"), tiny(1), tiny(3))
    data = batch()
    _, losses = distiller.forward_train(data)
    logits = distiller.student(data["ir"])
    plain = torch.nn.functional.cross_entropy(logits, data["label"])
    assert losses["ce"].item() == pytest.approx(0.1 * plain.item(), rel=1e-4)


# AT ---------------------------------------------------------------------------------------------------


def test_attention_transfer_of_a_known_tensor():
    # 2 channels at 2 positions: (1, 1) and (2, 0) → mean_c F² = (1, 2) → map (1, 2)/√5
    teacher = torch.tensor([[1.0, 2.0], [1.0, 0.0]]).view(1, 2, 1, 1, 2)
    # a student whose map is (2, 1)/√5: the squared differences are 1/5 at both positions, mean 1/5
    student = torch.tensor([[2.0, 1.0], [0.0, 1.0]]).view(1, 2, 1, 1, 2)
    assert attention_transfer(teacher, student).item() == pytest.approx(0.2, rel=1e-5)
    # the maps are normalised: scaling a network's features changes nothing
    assert attention_transfer(teacher, 7 * teacher).item() == pytest.approx(0.0, abs=1e-7)


def test_attention_transfer_resamples_a_student_of_another_resolution():
    teacher = torch.ones(2, 3, 1, 2, 2)
    student = torch.ones(2, 5, 1, 4, 4)  # a flat map stays flat at any resolution
    assert attention_transfer(teacher, student).item() == pytest.approx(0.0, abs=1e-7)


# SP ---------------------------------------------------------------------------------------------------


def test_similarity_preserving_of_orthogonal_against_identical_features():
    # teacher: 4 orthogonal samples → G_T = I; student: 4 equal samples → every row of G_S is (1,1,1,1)/2
    # per row ‖e_i − (1,1,1,1)/2‖² = (1 − 1/2)² + 3·(1/2)² = 1, so ‖G_T − G_S‖²_F = 4 and the loss 4/4² = 1/4
    teacher = torch.eye(4).view(4, 4, 1, 1, 1) * 3
    student = torch.ones(4, 2, 1, 2, 2)
    assert similarity_preserving(teacher, student).item() == pytest.approx(0.25, rel=1e-6)
    assert similarity_preserving(teacher, teacher * 2).item() == pytest.approx(0.0, abs=1e-7)


# RKD --------------------------------------------------------------------------------------------------


def on_a_line(positions: list[float], direction: tuple[float, float]) -> torch.Tensor:
    return torch.tensor(positions)[:, None] * torch.tensor(direction)[None]


def test_rkd_of_collinear_points():
    teacher = on_a_line([0.0, 1.0, 2.0], (1.0, 0.0))
    # the same structure, scaled, mirrored and turned: nothing to learn
    distance, angle = rkd_losses(teacher, on_a_line([0.0, -2.0, -4.0], (0.6, 0.8)))
    assert distance.item() == pytest.approx(0.0, abs=1e-6) and angle.item() == pytest.approx(0.0, abs=1e-6)
    # points 0, 1, 3 on a line: still collinear and in the same order, so every angle agrees (cos = ±1);
    # distances / mean distance: teacher (1, 2, 1)/(4/3) = (.75, 1.5, .75), student (1, 3, 2)/2 = (.5, 1.5, 1)
    # → differences .25, 0, .25 on each side of the diagonal; Huber ½·.25² for 4 of the 9 entries
    distance, angle = rkd_losses(teacher, on_a_line([0.0, 1.0, 3.0], (0.0, 1.0)))
    assert angle.item() == pytest.approx(0.0, abs=1e-6)
    assert distance.item() == pytest.approx(4 * 0.5 * 0.25**2 / 9, rel=1e-5)


def test_rkd_gradients_are_finite_for_repeated_samples():
    student = torch.tensor([[1.0, 2.0], [1.0, 2.0], [0.0, 1.0]], requires_grad=True)
    distance, angle = rkd_losses(torch.randn(3, 4), student)
    (distance + angle).backward()
    assert torch.isfinite(student.grad).all()


# DKD --------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("tau", [1.0, 4.0])
def test_dkd_decomposes_classical_kd(tau):
    # Zhao et al., eq. (7): KD = TCKD + (1 − p_t^T)·NCKD at equal temperature (both sides carry τ²)
    torch.manual_seed(1)
    student, teacher = torch.randn(8, 6) * 2, torch.randn(8, 6) * 2
    labels = torch.randint(0, 6, (8,))
    tckd, nckd = decoupled_kd(student, teacher, labels, tau)
    teacher_probs = (teacher / tau).softmax(1)
    p_target = teacher_probs.gather(1, labels[:, None])[:, 0]
    kd = kd_divergence(student, teacher_probs, tau)
    assert torch.allclose(tckd + (1 - p_target) * nckd, kd, rtol=1e-4, atol=1e-6)
    # with α = β = 1 DKD never weights NCKD less than KD does
    assert (tckd + nckd >= kd - 1e-6).all()


def test_dkd_with_two_classes_is_classical_kd():
    # one non-target class: NCKD is a KL between two one-point distributions, 0; so TCKD = KD
    student, teacher = torch.randn(5, 2), torch.randn(5, 2)
    labels = torch.randint(0, 2, (5,))
    tckd, nckd = decoupled_kd(student, teacher, labels, 2.0)
    assert torch.allclose(nckd, torch.zeros(5), atol=1e-6)
    assert torch.allclose(tckd, kd_divergence(student, (teacher / 2).softmax(1), 2.0), atol=1e-5)


def test_dkd_ramps_its_weight_up_over_the_warmup_epochs():
    config = DistillConfig(method="dkd")
    config.dkd.warmup_epochs = 20
    distiller = build_distiller(config, tiny(1), tiny(3)).eval()  # eval: identical student outputs
    data = batch()
    ramped = []
    for epoch in (5, 20, 40):
        distiller.set_epoch(epoch)
        _, losses = distiller.forward_train(data)
        ramped.append(losses["tckd"] + losses["nckd"])
    assert ramped[0].item() == pytest.approx(0.25 * ramped[1].item(), rel=1e-5)
    assert ramped[2].item() == pytest.approx(ramped[1].item(), rel=1e-5)


# AFD --------------------------------------------------------------------------------------------------


def test_afd_pools_attention_maps_to_the_teacher_resolution():
    features = torch.tensor([[1.0, 1.0], [3.0, 3.0]]).view(1, 1, 1, 2, 2)  # F² rows: (1, 1) and (9, 9)
    assert torch.allclose(pooled_attention(features, (1, 1, 1)), torch.ones(1, 1))
    assert torch.allclose(pooled_attention(features, (1, 2, 1)), torch.tensor([[1.0, 9.0]]) / math.sqrt(82))


def test_afd_attention_is_a_distribution_over_student_stages():
    distiller = build_distiller(DistillConfig(method="afd"), tiny(1), tiny(3))
    data = batch()
    _, teacher = distiller.teacher.forward_features(data["rgb"])
    _, student = distiller.student.forward_features(data["ir"])
    alpha = distiller.attention.attention(teacher, student)
    assert alpha.shape == (4, 4, 4)
    assert torch.allclose(alpha.sum(-1), torch.ones(4, 4), atol=1e-6)


# Every method -----------------------------------------------------------------------------------------

BASELINES = sorted(set(METHODS) - {"arctic"})


@pytest.mark.parametrize("method", BASELINES)
def test_gradients_reach_the_student_and_the_method_modules_only(method):
    distiller = build_distiller(DistillConfig(method=method), tiny(1), tiny(3))
    distiller.train()
    distiller.set_epoch(1)
    _, losses = distiller.forward_train(batch())
    assert "ce" in losses and len(losses) >= 2
    total = sum(losses.values())
    assert torch.isfinite(total)
    total.backward()
    assert all(p.grad is None for p in distiller.teacher.parameters())
    assert not distiller.teacher.training
    assert any(p.grad is not None and p.grad.abs().sum() > 0 for p in distiller.student.parameters())
    for name, module in distiller.extra_modules().items():
        assert all(p.grad is not None for p in module.parameters()), name
    teacher_ids = {id(p) for p in distiller.teacher.parameters()}
    assert not teacher_ids & {id(p) for p in distiller.trainable_parameters()}


@pytest.mark.parametrize("method", ["fitnets", "at", "afd", "sp", "rkd"])
def test_feature_methods_accept_student_clips_of_another_size(method):
    distiller = build_distiller(DistillConfig(method=method), tiny(1), tiny(3))
    _, losses = distiller.forward_train(batch(ir_size=48))
    assert all(torch.isfinite(v) for v in losses.values())


def test_an_unknown_method_names_the_known_ones():
    from arctic_kd.errors import ConfigError

    with pytest.raises(ConfigError, match="known: afd, arctic, at, dkd, fitnets, kd, rkd, sp"):
        build_distiller(DistillConfig(method="crd"), tiny(1), tiny(3))
