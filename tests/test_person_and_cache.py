"""Person crops from skeletons and the in-memory frame cache."""

from __future__ import annotations

import numpy as np
import pytest

from arctic_kd.data.cache import FrameCache
from arctic_kd.data.dataset import PairedClipDataset
from arctic_kd.data.loaders import paired_samples
from arctic_kd.data.ntu import index_ntu
from arctic_kd.data.person import person_boxes, person_track, square_region
from arctic_kd.data.skeleton import Body, Skeleton, read_skeleton, write_skeleton
from arctic_kd.data.transforms import CropBox, within
from arctic_kd.errors import DataError


def body(depth_xy, color_xy) -> Body:
    joints = np.zeros((25, 11))
    joints[:, 3:5], joints[:, 5:7] = depth_xy, color_xy
    return Body(joints=joints, tracking=np.full(25, 2))


def test_person_boxes_span_every_valid_joint_of_every_frame(tmp_path):
    rng = np.random.default_rng(0)
    depth = [rng.uniform([10, 10], [40, 80], (25, 2)) for _ in range(2)]
    colour = [d * 4 + [50, 20] for d in depth]  # the RGB→IR map: x_ir = (x_rgb - 50) / 4, y_ir = (y - 20) / 4
    first, second = body(depth[0], colour[0]), body(depth[1], colour[1])
    second.joints[3, 3:7] = np.nan  # a lost joint
    second.joints[4, 3:7] = 0.0  # an all-zero joint line
    second.joints[5, 5:7] = (1900.0, 1000.0)  # a failed colour mapping
    path = tmp_path / "a.skeleton"
    write_skeleton(path, Skeleton([[first], [second], []]))
    valid = np.concatenate([depth[0], np.delete(depth[1], [3, 4], axis=0)])
    ir_box = (*valid.min(0), *valid.max(0))
    boxes = person_boxes(path)
    assert boxes["ir"] == pytest.approx(ir_box)
    # RGB: the IR box carried through the registration, blind to the failed colour mapping
    assert boxes["rgb"] == pytest.approx(
        [4 * ir_box[0] + 50, 4 * ir_box[1] + 20, 4 * ir_box[2] + 50, 4 * ir_box[3] + 20]
    )


def test_person_boxes_per_stream_when_the_joints_cannot_register(tmp_path):
    line = body(np.linspace([10, 20], [30, 80], 25), np.linspace([100, 50], [200, 300], 25))  # collinear
    path = tmp_path / "a.skeleton"
    write_skeleton(path, Skeleton([[line]]))
    assert person_track(path).registration is None
    assert person_boxes(path) == {"ir": (10, 20, 30, 80), "rgb": (100, 50, 200, 300)}


def test_person_boxes_none_without_bodies_and_error_on_bad_file(tmp_path):
    empty = tmp_path / "empty.skeleton"
    write_skeleton(empty, Skeleton([[], []]))
    assert person_boxes(empty) is None
    bad = tmp_path / "bad.skeleton"
    bad.write_text("3\n1\nnot numbers\n")
    with pytest.raises(DataError, match=r"bad\.skeleton"):
        person_boxes(bad)


def test_square_region_keeps_proportions_and_stays_in_frame():
    region = square_region((100, 20, 140, 120), width=256, height=144, margin=0.1)
    side_px = ((region.x1 - region.x0) * 256, (region.y1 - region.y0) * 144)
    assert side_px[0] == pytest.approx(side_px[1]) == pytest.approx(120)
    assert region.y0 >= 0 and region.y1 <= 1  # moved down to fit, not cut
    assert (region.x0 + region.x1) / 2 * 256 == pytest.approx(120)
    huge = square_region((0, 0, 256, 144), width=256, height=144, margin=0.5)
    assert (huge.x0, huge.y0, huge.x1, huge.y1) == (0, 0, 1, 1)


def test_a_crop_of_a_crop_composes():
    outer = CropBox(0.2, 0.1, 0.6, 0.9)
    inner = CropBox(0.5, 0.0, 1.0, 0.5, flip=True)
    assert within(outer, inner) == CropBox(0.4, 0.1, 0.6, 0.5, flip=True)


def test_person_crop_centres_the_performer(tiny_dataset):
    samples = paired_samples(index_ntu(tiny_dataset).complete(), person_crop=True)
    plain = PairedClipDataset(
        samples[:3], num_frames=4, person_margin=None, rgb_size=(64, 64), ir_size=(64, 64)
    )
    cropped = PairedClipDataset(samples[:3], num_frames=4, rgb_size=(64, 64), ir_size=(64, 64))
    for i in range(3):
        # the warm figure covers more of the IR clip once cropped to it
        warm = [(clips[i]["ir"] > 0.5).float().mean() for clips in (plain, cropped)]
        assert warm[1] > 1.4 * warm[0]


def test_cached_clips_match_decoded_clips(tiny_dataset):
    samples = paired_samples(index_ntu(tiny_dataset).complete(), person_crop=True)[:4]
    cache = FrameCache(short_side=10_000)  # no shrinking: identical frames
    direct = PairedClipDataset(samples, num_frames=4)
    cached = PairedClipDataset(samples, num_frames=4, frame_cache=cache)
    cache.preload([(s.path(m), m == "ir") for s in samples for m in ("rgb", "ir")], workers=2, progress=False)
    assert len(cache) == 8 and cache.nbytes > 0
    for i in range(len(samples)):
        for modality in ("rgb", "ir"):
            assert np.array_equal(direct[i][modality].numpy(), cached[i][modality].numpy())


def test_cache_shrinks_and_leaves_bad_files_to_the_dataset(tiny_dataset, tmp_path):
    samples = paired_samples(index_ntu(tiny_dataset).complete())
    corrupt = tmp_path / "corrupt_ir.avi"
    corrupt.write_bytes(b"\x00not a video" * 50)
    cache = FrameCache(short_side=32)
    cache.preload([(samples[0].rgb, False), (corrupt, True)], workers=0, progress=False)
    assert len(cache) == 1
    video = cache.open(samples[0].rgb, gray=False)
    assert min(video.frames.shape[1:3]) == 32 and (video.width, video.height) == (256, 144)
    with pytest.raises(DataError, match=r"corrupt_ir\.avi"):
        cache.open(corrupt, gray=True)


def test_colour_jitter_is_one_draw_per_clip_and_off_at_zero():
    from arctic_kd.data.transforms import jitter_colours

    rng = np.random.default_rng(0)
    clip = rng.integers(0, 256, (4, 8, 8, 3), dtype=np.uint8)
    clip[2] = clip[0]  # two identical frames stay identical: no per-frame flicker
    assert np.array_equal(jitter_colours(clip, rng, 0.0), clip)
    jittered = jitter_colours(clip, np.random.default_rng(1), 0.4)
    assert jittered.shape == clip.shape and jittered.dtype == np.uint8
    assert np.array_equal(jittered[2], jittered[0])
    assert not np.array_equal(jittered, clip)


def test_colour_jitter_is_bit_identical_to_its_plain_formula():
    """The in-place jitter (faster) must give the augmentation it replaced: same draws, same bytes."""
    from arctic_kd.data.transforms import jitter_colours

    def plain(frames: np.ndarray, rng: np.random.Generator, strength: float) -> np.ndarray:
        clip = frames.astype(np.float32)
        grey = clip.mean(axis=-1, keepdims=True)
        clip = grey + (clip - grey) * rng.uniform(1 - strength, 1 + strength)
        mean = clip.mean()
        clip = mean + (clip - mean) * rng.uniform(1 - strength, 1 + strength)
        clip *= rng.uniform(1 - strength, 1 + strength)
        return np.clip(clip, 0, 255).astype(np.uint8)

    frames = np.random.default_rng(0).integers(0, 256, (12, 16, 112, 112, 3), dtype=np.uint8)
    for seed, clip in enumerate(frames):
        strength = (0.2, 0.4, 1.0)[seed % 3]
        expected = plain(clip, np.random.default_rng(seed), strength)
        assert np.array_equal(jitter_colours(clip, np.random.default_rng(seed), strength), expected), seed


def test_standardised_clips_have_zero_mean_and_unit_variance_whatever_the_exposure(tiny_dataset):
    samples = paired_samples(index_ntu(tiny_dataset).complete())[:2]
    plain = PairedClipDataset(samples, num_frames=4, rgb_size=(32, 32), ir_size=(32, 32))
    scaled = PairedClipDataset(
        samples, num_frames=4, rgb_size=(32, 32), ir_size=(32, 32), standardised=("rgb",)
    )
    rgb, ir = scaled[0]["rgb"], scaled[0]["ir"]
    assert abs(float(rgb.mean())) < 1e-5 and float(rgb.std()) == pytest.approx(1.0, abs=1e-4)
    assert np.array_equal(ir.numpy(), plain[0]["ir"].numpy())  # only the listed modality


def test_person_boxes_are_read_once_per_file_version(tmp_path, monkeypatch):
    import arctic_kd.data.person as person

    path = tmp_path / "a.skeleton"
    write_skeleton(path, Skeleton([[body(np.full((25, 2), 5.0), np.full((25, 2), 50.0))]]))
    reads = []
    monkeypatch.setattr(person, "read_skeleton", lambda p: reads.append(p) or read_skeleton(p))
    first = person_boxes(path)
    assert person_boxes(path) == first and len(reads) == 1
    write_skeleton(path, Skeleton([[body(np.full((25, 2), 7.0), np.full((25, 2), 70.0))], []]))
    assert person_boxes(path)["rgb"] == (70.0, 70.0, 70.0, 70.0) and len(reads) == 2
