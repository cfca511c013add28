"""Paired clips: both streams show the same moments and the same crop; bad samples become DataErrors in the
main process (or are skipped and reported), with or without DataLoader workers."""

from __future__ import annotations

from pathlib import Path

import av
import numpy as np
import pytest
import torch

from arctic_kd.data.cliploader import ClipLoader, collate_clips
from arctic_kd.data.dataset import PairedClipDataset
from arctic_kd.data.samples import BadSample, PairedSample
from arctic_kd.data.sampling import frame_indices, segment_times
from arctic_kd.data.transforms import CropBox, apply_crop, centre_crop, sample_crop, to_tensor
from arctic_kd.data.video import write_video
from arctic_kd.errors import DataError

RGB_FRAMES, IR_FRAMES = 60, 57
RGB_SHAPE, IR_SHAPE = (54, 96), (52, 64)  # 16:9 colour and about 512:424 infrared, like Kinect v2
UNNORMALISED = {"rgb": ((0.0, 0.0, 0.0), (1.0, 1.0, 1.0)), "ir": ((0.0,), (1.0,))}
IR_STEP = 1 / IR_FRAMES
BRIGHTNESS_TOLERANCE = 3 / 255  # MPEG-4 on flat frames


def write_time_coded(path: Path, num_frames: int, shape: tuple[int, int]) -> Path:
    """Flat frames whose brightness is the frame's relative time k / n (times 255)."""
    write_video(
        path,
        [np.full((*shape, 3), round(255 * k / num_frames), np.uint8) for k in range(num_frames)],
        quality=2,
    )
    return path


def write_marked(path: Path, num_frames: int, shape: tuple[int, int]) -> Path:
    """Dark frames with a bright square at the same relative place, off-centre, in any resolution."""
    height, width = shape
    frame = np.zeros((height, width, 3), np.uint8)
    frame[int(0.30 * height) : int(0.50 * height), int(0.20 * width) : int(0.35 * width)] = 255
    write_video(path, [frame] * num_frames, quality=2)
    return path


@pytest.fixture(scope="module")
def pair(tmp_path_factory: pytest.TempPathFactory) -> PairedSample:
    root = tmp_path_factory.mktemp("pair")
    rgb = write_time_coded(root / "S001_rgb.avi", RGB_FRAMES, RGB_SHAPE)
    ir = write_time_coded(root / "S001_ir.avi", IR_FRAMES, IR_SHAPE)
    return PairedSample("S001", 4, rgb, ir)


@pytest.fixture(scope="module")
def marked_pair(tmp_path_factory: pytest.TempPathFactory) -> PairedSample:
    root = tmp_path_factory.mktemp("marked")
    rgb = write_marked(root / "M_rgb.avi", 20, RGB_SHAPE)
    ir = write_marked(root / "M_ir.avi", 20, IR_SHAPE)
    return PairedSample("M", 0, rgb, ir)


def clip_times(clip: dict) -> tuple[np.ndarray, np.ndarray]:
    """The relative time each frame of an unnormalised clip shows, per stream."""
    return clip["rgb"].mean(dim=(0, 2, 3)).numpy(), clip["ir"].mean(dim=(0, 2, 3)).numpy()


def dataset(samples: list[PairedSample], **options) -> PairedClipDataset:
    options = {"rgb_size": (16, 16), "ir_size": (16, 16), "normalization": UNNORMALISED, **options}
    return PairedClipDataset(samples, **options)


# Sampling and transforms


def test_test_time_segments_are_their_centres() -> None:
    np.testing.assert_allclose(segment_times(4, None), [0.125, 0.375, 0.625, 0.875])


def test_training_segments_draw_one_time_inside_each_segment() -> None:
    rng = np.random.default_rng(0)
    for _ in range(50):
        times = segment_times(5, rng)
        assert (np.floor(times * 5) == np.arange(5)).all()


def test_frame_indices_map_times_into_the_range() -> None:
    times = np.array([0.0, 0.5, 0.999])
    np.testing.assert_array_equal(frame_indices(times, 10), [0, 5, 9])
    np.testing.assert_array_equal(frame_indices(times, 100, start=20, end=30), [20, 25, 29])
    with pytest.raises(ValueError, match="not inside"):
        frame_indices(times, 10, start=5, end=12)


def test_random_crops_respect_scale_and_stay_inside_the_image() -> None:
    rng = np.random.default_rng(0)
    boxes = [sample_crop(rng, scale=(0.3, 0.9)) for _ in range(200)]
    for box in boxes:
        assert 0 <= box.x0 < box.x1 <= 1 and 0 <= box.y0 < box.y1 <= 1
        assert 0.3 - 1e-9 <= (box.x1 - box.x0) * (box.y1 - box.y0) <= 0.9 + 1e-9
    assert 60 < sum(box.flip for box in boxes) < 140
    assert not any(sample_crop(rng, flip=False).flip for _ in range(20))


def test_crop_is_taken_in_relative_coordinates_and_flipped() -> None:
    frames = np.zeros((1, 40, 100, 1), np.uint8)
    frames[0, :, 25:50] = 255  # the second quarter of the width
    box = CropBox(0.25, 0.0, 0.75, 1.0)
    np.testing.assert_array_equal(apply_crop(frames, box, (40, 50))[0, 0, :, 0], [255] * 25 + [0] * 25)
    flipped = CropBox(0.25, 0.0, 0.75, 1.0, flip=True)
    np.testing.assert_array_equal(apply_crop(frames, flipped, (40, 50))[0, 0, :, 0], [0] * 25 + [255] * 25)
    assert apply_crop(frames, centre_crop(0.5), (8, 12)).shape == (1, 8, 12, 1)


def test_to_tensor_puts_channels_first_and_normalises() -> None:
    frames = np.full((4, 5, 6, 3), 255, np.uint8)
    clip = to_tensor(frames, (0.5, 0.5, 0.0), (0.5, 0.25, 1.0))
    assert clip.shape == (3, 4, 5, 6) and clip.dtype == torch.float32
    np.testing.assert_allclose(clip[:, 0, 0, 0].numpy(), [1.0, 2.0, 1.0])


# Paired clips


def test_a_clip_has_the_requested_modalities_and_shapes(pair: PairedSample) -> None:
    clip = PairedClipDataset([pair], num_frames=4, rgb_size=(24, 32), ir_size=(20, 16))[0]
    assert clip["rgb"].shape == (3, 4, 24, 32) and clip["ir"].shape == (1, 4, 20, 16)
    assert (clip["label"], clip["sample_id"]) == (4, "S001")
    ir_only = PairedClipDataset([PairedSample("S001", 4, None, pair.ir)], num_frames=4, modalities=("ir",))[0]
    assert set(ir_only) == {"ir", "label", "sample_id"}


def test_test_mode_shows_both_streams_the_same_moments(pair: PairedSample) -> None:
    rgb, ir = clip_times(dataset([pair], num_frames=8)[0])
    np.testing.assert_allclose(rgb, ir, atol=IR_STEP + BRIGHTNESS_TOLERANCE)
    np.testing.assert_allclose(rgb, (np.arange(8) + 0.5) / 8, atol=1 / RGB_FRAMES + BRIGHTNESS_TOLERANCE)


@pytest.mark.parametrize("torch_seed", range(5))
def test_training_shows_both_streams_the_same_random_moments(pair: PairedSample, torch_seed: int) -> None:
    torch.manual_seed(torch_seed)
    rgb, ir = clip_times(dataset([pair], num_frames=8, train=True)[0])
    np.testing.assert_allclose(rgb, ir, atol=IR_STEP + BRIGHTNESS_TOLERANCE)
    segment_starts = np.arange(8) / 8  # one moment per segment, shown by the frame on screen then
    assert (ir > segment_starts - IR_STEP - BRIGHTNESS_TOLERANCE).all()
    assert (ir < segment_starts + 1 / 8 + BRIGHTNESS_TOLERANCE).all()


def test_a_trimmed_range_carries_over_to_ir_by_relative_time(pair: PairedSample) -> None:
    second_half = PairedSample("S001", 4, pair.rgb, pair.ir, start=30, end=60)
    rgb, ir = clip_times(dataset([second_half], num_frames=4)[0])
    np.testing.assert_allclose(rgb, ir, atol=IR_STEP + BRIGHTNESS_TOLERANCE)
    np.testing.assert_allclose(
        rgb, 0.5 + (np.arange(4) + 0.5) / 8, atol=1 / RGB_FRAMES + BRIGHTNESS_TOLERANCE
    )


def test_an_ir_only_clip_still_trims_by_the_rgb_frame_count(pair: PairedSample) -> None:
    second_half = PairedSample("S001", 4, pair.rgb, pair.ir, start=30, end=60)
    clip = dataset([second_half], num_frames=4, modalities=("ir",))[0]
    ir = clip["ir"].mean(dim=(0, 2, 3)).numpy()
    np.testing.assert_allclose(ir, 0.5 + (np.arange(4) + 0.5) / 8, atol=IR_STEP + BRIGHTNESS_TOLERANCE)


def test_a_range_outside_the_video_is_a_bad_sample(pair: PairedSample) -> None:
    beyond = PairedSample("S001", 4, pair.rgb, pair.ir, start=70, end=80)
    assert dataset([beyond])[0] == BadSample(
        "S001", str(pair.rgb), "frame range [70, 80) is outside its 60 frames"
    )


def test_test_mode_is_deterministic_and_training_follows_the_torch_seed(pair: PairedSample) -> None:
    test_set = dataset([pair])
    torch.testing.assert_close(test_set[0]["rgb"], test_set[0]["rgb"])
    train_set = dataset([pair], train=True)
    torch.manual_seed(3)
    first = train_set[0]["ir"]
    torch.manual_seed(3)
    torch.testing.assert_close(train_set[0]["ir"], first)
    assert not torch.equal(train_set[0]["ir"], first)


def marker_centre(stream: torch.Tensor) -> np.ndarray:
    """Relative (x, y) of the bright marker in the first frame of a (C, T, H, W) clip."""
    image = stream[:, 0].mean(dim=0).numpy()
    ys, xs = np.nonzero(image > 0.5)
    return np.array([(xs.mean() + 0.5) / image.shape[1], (ys.mean() + 0.5) / image.shape[0]])


def test_one_crop_and_flip_decision_applies_to_both_streams(marked_pair: PairedSample) -> None:
    train_set = dataset(
        [marked_pair], num_frames=2, train=True, rgb_size=(32, 32), ir_size=(32, 32), crop_scale=(0.4, 1.0)
    )
    centres = []
    for torch_seed in range(12):
        torch.manual_seed(torch_seed)
        clip = train_set[0]
        rgb, ir = marker_centre(clip["rgb"]), marker_centre(clip["ir"])
        np.testing.assert_allclose(rgb, ir, atol=0.06)
        centres.append(rgb[0])
    assert len(set(np.round(centres, 2))) > 6  # the crops differ from clip to clip
    assert min(centres) < 0.5 < max(centres)  # and some are mirrored (the marker sits left of centre)


# Bad samples


def truncate(source: Path, target: Path) -> None:
    """Cut a file after its 20th frame: it still opens, and its header still lists every frame."""
    with av.open(str(source)) as container:
        offsets = [packet.pos for packet in container.demux(container.streams.video[0]) if packet.size > 0]
    target.write_bytes(source.read_bytes()[: offsets[20]])


BAD_CASES = {
    "missing": (lambda root, good: None, "file not found"),
    "empty": (lambda root, good: (root / "bad_ir.avi").write_bytes(b""), "file is empty"),
    "random-bytes": (
        lambda root, good: (root / "bad_ir.avi").write_bytes(np.random.default_rng(2).bytes(5000)),
        "not a readable video",
    ),
    "truncated": (
        lambda root, good: truncate(good.ir, root / "bad_ir.avi"),
        "frames its header lists decode",
    ),
    "short-ir": (lambda root, good: write_time_coded(root / "bad_ir.avi", 15, IR_SHAPE), "but IR is 0.50 s"),
}


def bad_sample(root: Path, good: PairedSample, case: str) -> tuple[PairedSample, str]:
    """A sample whose IR file is broken as `case` says, and the problem it must report."""
    make, problem = BAD_CASES[case]
    make(root, good)
    return PairedSample(f"BAD-{case}", 1, good.rgb, root / "bad_ir.avi"), problem


@pytest.mark.parametrize("workers", [0, 2])
@pytest.mark.parametrize("case", BAD_CASES)
def test_a_bad_sample_stops_the_loader_with_a_data_error_naming_the_file(
    tmp_path: Path, pair: PairedSample, case: str, workers: int
) -> None:
    bad, problem = bad_sample(tmp_path, pair, case)
    loader = ClipLoader(dataset([pair, bad, pair], num_frames=4), batch_size=2, num_workers=workers)
    with pytest.raises(DataError) as caught:
        list(loader)
    named = str(bad.rgb) if case == "short-ir" else str(bad.ir)
    assert str(caught.value).startswith(f"{named}: ") and problem in str(caught.value)
    assert str(bad.ir) in str(caught.value) and "Traceback" not in str(caught.value)


@pytest.mark.parametrize("workers", [0, 2])
def test_skipping_bad_samples_keeps_the_good_ones_and_reports_each_bad_one(
    tmp_path: Path, pair: PairedSample, workers: int
) -> None:
    samples, problems = [pair], {}
    for case in BAD_CASES:
        (tmp_path / case).mkdir()
        bad, problems[bad.sample_id] = bad_sample(tmp_path / case, pair, case)
        samples += [bad, PairedSample(f"GOOD-{case}", 2, pair.rgb, pair.ir)]
    loader = ClipLoader(dataset(samples, num_frames=2), batch_size=3, num_workers=workers, skip_bad=True)
    batches = list(loader)
    assert [s for b in batches for s in b["sample_id"]] == ["S001"] + [f"GOOD-{case}" for case in BAD_CASES]
    assert all("bad" not in b and b["rgb"].shape[0] == len(b["label"]) for b in batches)
    assert len(loader.report) == len(BAD_CASES)
    summary = loader.report.summary()
    assert summary.startswith(f"skipped {len(BAD_CASES)} bad sample(s):")
    for sample_id, problem in problems.items():
        line = next(line for line in summary.splitlines() if sample_id in line)
        assert problem in line and "bad_ir.avi" in line
    list(loader)  # a second epoch meets the same bad samples: still listed once each
    assert len(loader.report) == len(BAD_CASES)


def test_a_batch_of_only_bad_samples_yields_nothing(tmp_path: Path, pair: PairedSample) -> None:
    bad = PairedSample("GONE", 0, tmp_path / "gone_rgb.avi", pair.ir)
    assert collate_clips([BadSample("GONE", "x.avi", "file not found")]) == {
        "bad": [BadSample("GONE", "x.avi", "file not found")]
    }
    loader = ClipLoader(dataset([bad, bad, pair]), batch_size=2, skip_bad=True)
    assert [b["sample_id"] for b in loader] == [["S001"]]
    assert "gone_rgb.avi: file not found" in loader.report.summary()


def test_a_programming_error_is_not_mistaken_for_bad_data(pair: PairedSample) -> None:
    broken = PairedSample("S001", 4, 12345, pair.ir)  # type: ignore[arg-type]
    with pytest.raises(TypeError):
        list(ClipLoader(dataset([broken]), batch_size=1, skip_bad=True))


@pytest.mark.parametrize("workers", [0, 2])
def test_the_loader_is_reproducible_from_its_seed_alone(pair: PairedSample, workers: int) -> None:
    train_set = dataset([pair] * 4, num_frames=4, train=True)

    def epoch(seed: int, global_seed: int) -> list[torch.Tensor]:
        torch.manual_seed(global_seed)  # must not matter
        loader = ClipLoader(train_set, batch_size=2, shuffle=True, num_workers=workers, seed=seed)
        return [batch["ir"] for batch in loader]

    first = epoch(seed=0, global_seed=1)
    for a, b in zip(first, epoch(seed=0, global_seed=2), strict=True):
        torch.testing.assert_close(a, b)
    assert not all(torch.equal(a, b) for a, b in zip(first, epoch(seed=1, global_seed=1), strict=True))


def test_loading_without_workers_leaves_the_global_generator_alone(pair: PairedSample) -> None:
    loader = ClipLoader(dataset([pair] * 3, num_frames=2, train=True), batch_size=2, shuffle=True)
    torch.manual_seed(0)
    expected = torch.rand(3)
    torch.manual_seed(0)
    list(loader)
    torch.testing.assert_close(torch.rand(3), expected)
