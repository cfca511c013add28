"""RGB→IR registration: accuracy against the renderer's true cameras, robustness, and ARC's crop warp."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from arctic_kd.data.dataset import PairedClipDataset
from arctic_kd.data.ntu import SampleName
from arctic_kd.data.person import person_track
from arctic_kd.data.registration import (
    apply_affine,
    fit_registration,
    fov_affine,
    joint_pairs,
    least_squares_affine,
    robust_affine,
)
from arctic_kd.data.samples import PairedSample
from arctic_kd.data.skeleton import Body, Skeleton, write_skeleton
from arctic_kd.data.synth import SynthConfig
from arctic_kd.data.synth.camera import kinect_pair
from arctic_kd.data.synth.dataset import (
    CAMERA_AZIMUTHS,
    make_performer,
    make_setup,
    make_skeleton,
    take_world_joints,
)
from arctic_kd.data.video import write_video
from arctic_kd.distill.maps import warp_to

NTU = SynthConfig(rgb_size=(1920, 1080), ir_size=(512, 424), performers=4)


def rendered_views():
    """(skeleton, rgb camera, ir camera) of each sensor of a few takes, at NTU's resolutions."""
    for performer, action, camera in [(1, 1, 1), (2, 3, 2), (3, 5, 3), (4, 7, 1)]:
        take = SampleName(NTU.setup_of(performer), 0, performer, 1, action)
        world = take_world_joints(NTU, take, make_performer(NTU, performer))
        setup = make_setup(NTU, take.setup)
        cameras = kinect_pair(
            CAMERA_AZIMUTHS[camera], setup.distance, setup.height, NTU.rgb_size, NTU.ir_size
        )
        yield make_skeleton(world, *cameras, body_id=1), world, cameras


def held_out_error(matrix: np.ndarray, skeleton: Skeleton) -> np.ndarray:
    """IR-pixel error of the map on joints it was not fitted to (the renderer's own projections)."""
    rgb, ir = joint_pairs(skeleton)
    return np.linalg.norm(apply_affine(matrix, rgb) - ir, axis=1)


def halves(skeleton: Skeleton) -> tuple[Skeleton, Skeleton]:
    return Skeleton(skeleton.frames[0::2]), Skeleton(skeleton.frames[1::2])


def test_skeleton_registration_matches_the_true_cameras_on_held_out_joints():
    for skeleton, world, (rgb_cam, ir_cam) in rendered_views():
        fit, held_out = halves(skeleton)
        matrix = fit_registration(fit).affine
        assert np.median(held_out_error(matrix, held_out)) <= 1.5
        # and between the joints: points around the body, 15 cm off the skeleton
        rng = np.random.default_rng(0)
        points = world.reshape(-1, 3)[rng.integers(0, world.size // 3, 300)] + rng.normal(0, 0.15, (300, 3))
        error = np.linalg.norm(apply_affine(matrix, rgb_cam.project(points)) - ir_cam.project(points), axis=1)
        assert np.median(error) <= 1.5


def test_registration_survives_a_fifth_of_the_pairs_being_wrong():
    rng = np.random.default_rng(1)
    for skeleton, _, _ in rendered_views():
        fit, held_out = halves(skeleton)
        for bodies in fit.frames:
            joints = bodies[0].joints
            wrong = rng.random(len(joints)) < 0.2
            joints[wrong, 5:7] = rng.uniform((0, 0), NTU.rgb_size, (wrong.sum(), 2))
        rgb, ir = joint_pairs(fit)
        assert np.median(held_out_error(fit_registration(fit).affine, held_out)) <= 3.0
        assert np.median(held_out_error(least_squares_affine(rgb, ir), held_out)) > 3.0  # what RANSAC buys


def test_no_registration_from_too_few_or_collinear_pairs():
    rgb = np.linspace([0, 0], [100, 50], 30)
    assert robust_affine(rgb, rgb / 3) is None
    assert robust_affine(rgb[[0, 5, 9]] + [[0, 0], [0, 40], [20, 0]], rgb[:3]) is None


def test_field_of_view_fallback_is_the_nominal_kinect_map():
    """Without joints: scale from the fields of view, centres on centres; the 5 cm baseline is ignored,
    which costs about f_ir·b/z ≈ 6 IR pixels at 3 m on a 512-pixel frame."""
    matrix = fov_affine(NTU.rgb_size, NTU.ir_size)
    assert apply_affine(matrix, [[960, 540]])[0] == pytest.approx([256, 212])
    for skeleton, _, _ in rendered_views():
        assert np.median(held_out_error(matrix, skeleton)) < 12.0


# The warp ARC gets: a point of the RGB crop lands on the same point of the IR crop.

RGB_SIZE, IR_SIZE = (256, 144), (128, 106)
IR_FROM_RGB = np.array([[0.4, 0.0, 20.0], [0.0, 0.5, 10.0]])  # far from identity in normalised coordinates
SPOT_RGB, SPOT_RADIUS = np.array([100.0, 62.0]), 9.0


def spot_frame(size: tuple[int, int], to_rgb: np.ndarray) -> np.ndarray:
    """A bright disc around SPOT_RGB (in RGB pixels) drawn through `to_rgb`: pixel → RGB pixel."""
    ys, xs = np.mgrid[0 : size[1], 0 : size[0]]
    rgb_xy = apply_affine(to_rgb, np.stack([xs.ravel(), ys.ravel()], 1))
    inside = np.linalg.norm(rgb_xy - SPOT_RGB, axis=1) < SPOT_RADIUS
    return np.repeat((inside.reshape(size[1], size[0]) * 255).astype(np.uint8)[..., None], 3, -1)


@pytest.fixture(scope="module")
def spot_sample(tmp_path_factory) -> PairedSample:
    root = tmp_path_factory.mktemp("spot")
    identity = np.array([[1.0, 0, 0], [0, 1.0, 0]])
    inverse = np.linalg.inv(np.vstack([IR_FROM_RGB, [0, 0, 1]]))[:2]
    write_video(root / "rgb.avi", [spot_frame(RGB_SIZE, identity)] * 12, quality=2)
    write_video(root / "ir.avi", [spot_frame(IR_SIZE, inverse)] * 12, quality=2)
    rng = np.random.default_rng(0)
    colour = SPOT_RGB + rng.uniform(-40, 40, (25, 2))
    joints = np.zeros((25, 11))
    joints[:, 5:7], joints[:, 3:5] = colour, apply_affine(IR_FROM_RGB, colour)
    write_skeleton(root / "s.skeleton", Skeleton([[Body(joints=joints, tracking=np.full(25, 2))]] * 3))
    track = person_track(root / "s.skeleton")
    return PairedSample(
        "spot", 0, root / "rgb.avi", root / "ir.avi", person=track.boxes, registration=track.registration
    )


def centroid(image: torch.Tensor) -> np.ndarray:
    weights = (image > 0.5).float()
    ys, xs = torch.meshgrid(torch.arange(image.shape[0]), torch.arange(image.shape[1]), indexing="ij")
    return np.array(
        [float((xs * weights).sum() / weights.sum()), float((ys * weights).sum() / weights.sum())]
    )


@pytest.mark.parametrize("person_margin", [None, 0.3])
def test_the_rgb_crop_warped_by_ir_from_rgb_lands_on_the_ir_crop(spot_sample, person_margin):
    assert np.reshape(spot_sample.registration, (2, 3)) == pytest.approx(IR_FROM_RGB, abs=1e-4)
    plain = {"rgb": ((0.0,) * 3, (1.0,) * 3), "ir": ((0.0,), (1.0,))}
    data = PairedClipDataset(
        [spot_sample],
        num_frames=2,
        train=True,
        rgb_size=(64, 64),
        ir_size=(48, 48),
        crop_scale=(0.5, 1.0),
        normalization=plain,
        person_margin=person_margin,
    )
    torch.manual_seed(0)
    checked = 0
    for _ in range(12):
        clip = data[0]
        if (clip["ir"] > 0.5).sum() < 20 or (clip["rgb"] > 0.5).sum() < 20:
            continue  # this random crop missed the spot
        teacher = clip["rgb"].mean(0)[None]  # (1, T, 64, 64), a "map" in RGB-crop coordinates
        warped = warp_to(teacher, (2, 48, 48), clip["ir_from_rgb"][None])[0, 0]
        assert np.abs(centroid(warped) - centroid(clip["ir"][0, 0])).max() < 1.0
        checked += 1
    assert checked >= 6
    if person_margin is None:  # whole frames: plain resizing would put the spot elsewhere
        resized = warp_to(teacher, (2, 48, 48))[0, 0]
        assert np.abs(centroid(resized) - centroid(clip["ir"][0, 0])).max() > 3.0


def test_arctic_warps_teacher_maps_by_the_batch_registration():
    from arctic_kd.config.distill import DistillConfig
    from arctic_kd.distill import ARCTIC
    from tests.test_arctic import batch, tiny

    config = DistillConfig()
    config.arm.weight = config.kd.weight = 0.0
    distiller = ARCTIC(tiny(1), tiny(3), config).eval()
    plain = batch(4)
    identity = {**plain, "ir_from_rgb": torch.tensor([[1.0, 0, 0], [0, 1.0, 0]]).repeat(4, 1, 1)}
    shifted = {**plain, "ir_from_rgb": torch.tensor([[0.5, 0, 0.5], [0, 0.5, -0.5]]).repeat(4, 1, 1)}
    arc = {
        name: distiller.forward_train(b)[1]["arc"].item()
        for name, b in [("plain", plain), ("identity", identity), ("shifted", shifted)]
    }
    assert arc["identity"] == pytest.approx(arc["plain"], abs=1e-5)
    assert arc["shifted"] != pytest.approx(arc["plain"], abs=1e-3)
