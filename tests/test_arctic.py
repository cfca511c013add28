"""ARCTIC's three losses against hand-derived cases, and a distiller that never trains its teacher."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

from arctic_kd.config.distill import DistillConfig, KdConfig
from arctic_kd.distill import ARCTIC, build_distiller
from arctic_kd.distill.agreement import clip_agreement, map_correlation
from arctic_kd.distill.arctic import activation_region_loss, correctness_aware_kd
from arctic_kd.distill.maps import attention_map, similarity_rows, warp_to
from arctic_kd.models import video_resnet


def tiny(in_channels: int) -> torch.nn.Module:
    return video_resnet("r3d", 10, num_classes=5, in_channels=in_channels, width=0.125)


def test_similarity_rows_of_orthogonal_features_are_the_identity():
    features = torch.eye(4).view(4, 4, 1, 1, 1) * torch.tensor([1.0, 2.0, 3.0, 4.0]).view(4, 1, 1, 1, 1)
    assert torch.allclose(similarity_rows(features), torch.eye(4))


def test_attention_map_is_unit_norm_and_resamples():
    features = torch.rand(2, 3, 2, 4, 4)
    maps = attention_map(features, size=(1, 2, 2))
    assert maps.shape == (2, 4)
    assert torch.allclose(maps.norm(dim=1), torch.ones(2))


def test_activation_region_loss_is_zero_for_the_same_map_and_safe_for_flat_maps():
    maps = torch.rand(3, 2, 4, 4)
    assert activation_region_loss(maps, maps * 5 + 1, rho=0.3) == pytest.approx(0.0, abs=1e-6)
    flat = torch.zeros(3, 2, 4, 4)
    for rho in (1e-4, 0.3, 1.0):
        assert torch.isfinite(activation_region_loss(flat, maps, rho))


def test_activation_region_loss_at_rho_one_compares_everything():
    teacher, student = torch.rand(2, 1, 3, 3), torch.rand(2, 1, 3, 3)

    def minmax(m):
        flat = m.flatten(1)
        low, high = flat.min(1, keepdim=True).values, flat.max(1, keepdim=True).values
        return (flat - low) / (high - low)

    expected = (minmax(teacher) - minmax(student)).pow(2).mean()
    assert activation_region_loss(teacher, student, rho=1.0) == pytest.approx(expected.item(), rel=1e-5)


def test_activation_region_loss_looks_only_at_the_union_of_top_regions():
    teacher = torch.zeros(1, 1, 1, 10)
    teacher[0, 0, 0, 0] = 1.0  # teacher's top-10 %: position 0
    student = torch.zeros(1, 1, 1, 10)
    student[0, 0, 0, 9] = 1.0  # student's top-10 %: position 9
    student[0, 0, 0, 5] = 0.5  # outside both regions: ignored
    # region {0, 9}: differences 1 and 1 → mean squared difference 1
    assert activation_region_loss(teacher, student, rho=0.1).item() == pytest.approx(1.0)


def test_identity_theta_warps_like_plain_resampling():
    maps = torch.rand(2, 2, 6, 6)
    theta = torch.tensor([[1.0, 0, 0], [0, 1.0, 0]]).repeat(2, 1, 1)
    assert torch.allclose(warp_to(maps, (2, 6, 6), theta), maps, atol=1e-5)


def test_kd_of_identical_logits_is_zero_and_scales_with_tau_squared():
    logits = torch.randn(4, 5)
    labels = logits.argmax(1)
    tau = 4.0
    # fp32 rounding of log(softmax) against log_softmax is ~1e-7 per class, and the loss scales it by τ².
    assert correctness_aware_kd(logits, logits, labels, KdConfig(tau=tau, mode="none")) == pytest.approx(
        0, abs=1e-6 * tau**2
    )
    student = torch.randn(4, 5)
    at_1 = correctness_aware_kd(student, logits, labels, KdConfig(tau=1.0, mode="none"))
    expected = F.kl_div(F.log_softmax(student, 1), F.softmax(logits, 1), reduction="batchmean")
    assert at_1 == pytest.approx(expected.item(), rel=1e-5)


def test_mask_drops_samples_the_teacher_gets_wrong():
    teacher = torch.tensor([[5.0, 0, 0], [0, 5.0, 0]])
    student = torch.zeros(2, 3)
    labels = torch.tensor([0, 2])  # the teacher is right on sample 0 only
    masked = correctness_aware_kd(student, teacher, labels, KdConfig(tau=2.0, mode="mask"))
    plain_first = correctness_aware_kd(student[:1], teacher[:1], labels[:1], KdConfig(tau=2.0, mode="none"))
    assert masked.item() == pytest.approx(
        plain_first.item() / 2
    )  # mean over the batch, sample 1 contributes 0


def test_ahead_distils_only_where_the_teacher_is_right_and_surer_than_the_student():
    teacher = torch.tensor([[3.0, 0, 0], [3.0, 0, 0], [0, 3.0, 0]])
    student = torch.tensor([[1.0, 0, 0], [6.0, 0, 0], [0, 0, 0]])
    labels = torch.tensor([0, 0, 2])  # sample 0: teacher surer; 1: student surer; 2: teacher wrong
    ahead = correctness_aware_kd(student, teacher, labels, KdConfig(tau=2.0, mode="ahead"))
    first = correctness_aware_kd(student[:1], teacher[:1], labels[:1], KdConfig(tau=2.0, mode="none"))
    assert ahead.item() == pytest.approx(first.item() / 3)
    logits = student.clone().requires_grad_(True)
    correctness_aware_kd(logits, teacher, labels, KdConfig(tau=2.0, mode="ahead")).backward()
    assert logits.grad[1:].abs().sum() == 0 and logits.grad[0].abs().sum() > 0


def test_shift_swaps_the_true_and_the_predicted_class():
    teacher = torch.tensor([[0.0, 3.0, 1.0]])  # predicts 1, the label is 2
    labels = torch.tensor([2])
    shifted_teacher = torch.tensor([[0.0, 1.0, 3.0]])
    student = torch.randn(1, 3)
    shifted = correctness_aware_kd(student, teacher, labels, KdConfig(tau=2.0, mode="shift"))
    reference = correctness_aware_kd(student, shifted_teacher, labels, KdConfig(tau=2.0, mode="none"))
    assert shifted.item() == pytest.approx(reference.item(), rel=1e-5)


def batch(size: int = 2) -> dict:
    torch.manual_seed(0)
    return {
        "rgb": torch.randn(size, 3, 4, 32, 32),
        "ir": torch.randn(size, 1, 4, 32, 32),
        "label": torch.arange(size) % 5,
    }


@pytest.mark.parametrize("value", ["relation", "attention"])
@pytest.mark.parametrize("maps", ["cam", "gradcam"])
def test_arctic_losses_are_finite_and_train_student_and_matcher_only(value, maps):
    config = DistillConfig()
    config.arm.value, config.arc.maps = value, maps
    distiller = build_distiller(config, tiny(1), tiny(3))
    distiller.train()
    assert not distiller.teacher.training
    _, losses = distiller.forward_train(batch())
    assert set(losses) == {"ce", "arm", "arc", "kd"}
    total = sum(losses.values())
    assert torch.isfinite(total)
    total.backward()
    assert all(p.grad is None for p in distiller.teacher.parameters())
    assert any(p.grad is not None and p.grad.abs().sum() > 0 for p in distiller.student.parameters())
    assert any(p.grad is not None for p in distiller.arm.parameters())
    teacher_ids = {id(p) for p in distiller.teacher.parameters()}
    assert not teacher_ids & {id(p) for p in distiller.trainable_parameters()}


@pytest.mark.parametrize(("rho", "tau"), [(1e-3, 1.0), (0.3, 4.0), (1.0, 10.0)])
def test_no_nan_or_inf_at_the_edges(rho, tau):
    config = DistillConfig()
    config.arc.rho, config.kd.tau = rho, tau
    _, losses = ARCTIC(tiny(1), tiny(3), config).forward_train(batch(2))
    assert all(math.isfinite(v.item()) for v in losses.values())


@pytest.mark.parametrize("off", ["arm", "arc", "kd"])
def test_each_part_switches_off_at_weight_zero(off):
    config = DistillConfig()
    getattr(config, off).weight = 0.0
    distiller = ARCTIC(tiny(1), tiny(3), config)
    _, losses = distiller.forward_train(batch())
    assert off not in losses and "ce" in losses
    assert (distiller.arm is None) == (off == "arm")


@pytest.mark.parametrize("fixed", [False, True])
def test_a_fixed_classifier_keeps_arc_off_the_students_weights_but_not_its_features(fixed):
    config = DistillConfig()
    config.arm.weight = config.kd.weight = 0.0
    config.arc.fixed_classifier = fixed
    distiller = ARCTIC(tiny(1), tiny(3), config)
    distiller.train()
    _, losses = distiller.forward_train(batch())
    fc, layer4 = distiller.student.fc.weight, distiller.student.layer4[0].conv1[0].weight
    fc_grad, layer4_grad = torch.autograd.grad(losses["arc"], [fc, layer4], allow_unused=True)
    assert (fc_grad is None or not fc_grad.any()) == fixed
    assert layer4_grad is not None and layer4_grad.abs().sum() > 0


def test_map_correlation_is_pearsons_per_sample():
    maps = torch.rand(3, 2, 4, 4)
    assert map_correlation(maps, 3 * maps + 1) == pytest.approx(torch.ones(3), abs=1e-5)
    assert map_correlation(maps, -maps) == pytest.approx(-torch.ones(3), abs=1e-5)
    flat = torch.full_like(maps, 0.5)
    assert map_correlation(maps, flat) == pytest.approx(torch.zeros(3), abs=1e-6)


def test_clip_agreement_is_perfect_for_the_teacher_itself_and_reads_view_zero():
    torch.manual_seed(0)
    teacher, other = tiny(3).eval(), tiny(3).eval()
    clips = torch.randn(4, 2, 3, 4, 32, 32)  # two views; the second must not be read
    labels = torch.tensor([0, 1, 2, 3])
    batch = {"rgb": clips, "ir": clips.clone(), "label": labels}
    batch["ir"][:, 1] = torch.randn(4, 3, 4, 32, 32)
    cpu = torch.device("cpu")
    itself = clip_agreement(teacher, teacher, [batch], ("rgb", "ir"), 0.3, cpu)
    assert itself.correlation == pytest.approx(torch.ones(4), abs=1e-5)
    assert itself.arc_loss == pytest.approx(torch.zeros(4), abs=1e-6)
    assert torch.equal(itself.correct, teacher(clips[:, 0]).argmax(1) == labels)
    apart = clip_agreement(teacher, other, [batch, batch], ("rgb", "ir"), 0.3, cpu)
    summary = apart.summary()
    assert summary["clips"] == 8 and summary["arc_loss"] > 0.01 and summary["map_correlation"] < 0.99
    assert summary["arc_loss"] == pytest.approx(float(apart.arc_loss.mean()))


def test_clip_agreement_measures_the_arc_loss_that_training_minimises():
    torch.manual_seed(1)
    config = DistillConfig()
    config.arm.weight = config.kd.weight = 0.0
    config.arc.weight = 2.0
    distiller = ARCTIC(tiny(1), tiny(3), config).eval()
    clips = batch(4)
    # a registration that shifts and scales: the teacher's maps land elsewhere on the student's crop
    clips["ir_from_rgb"] = torch.tensor([[0.8, 0.0, 0.3], [0.0, 0.7, -0.2]]).repeat(4, 1, 1)
    with torch.no_grad():
        trained = distiller.forward_train(clips)[1]["arc"] / config.arc.weight
    cpu = torch.device("cpu")
    measured = clip_agreement(distiller.teacher, distiller.student, [clips], ("rgb", "ir"), 0.3, cpu)
    assert measured.summary()["arc_loss"] == pytest.approx(float(trained), rel=1e-5)
    # multi-view: view 0 of the clips and of their registrations, whatever the other views hold
    views = {k: torch.stack([v, v.flip(0)], 1) for k, v in clips.items() if k in ("rgb", "ir")}
    other_warp = torch.tensor([[1.0, 0.0, -0.4], [0.0, 1.2, 0.1]]).repeat(4, 1, 1)
    views |= {"ir_from_rgb": torch.stack([clips["ir_from_rgb"], other_warp], 1), "label": clips["label"]}
    from_views = clip_agreement(distiller.teacher, distiller.student, [views], ("rgb", "ir"), 0.3, cpu)
    assert torch.allclose(from_views.arc_loss, measured.arc_loss)
    unwarped = clip_agreement(
        distiller.teacher, distiller.student, [{**clips, "ir_from_rgb": None}], ("rgb", "ir"), 0.3, cpu
    )
    assert not torch.allclose(unwarped.arc_loss, measured.arc_loss), "the warp must be applied"
