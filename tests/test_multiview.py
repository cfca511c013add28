"""Multi-view testing: N clips × M crops per video, softmax probabilities averaged, view 0 = single clip."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
import torch

from arctic_kd.cli import main
from arctic_kd.config import Config, DataConfig, load_config
from arctic_kd.data.dataset import PairedClipDataset
from arctic_kd.data.loaders import make_loaders, make_view_loader, protocol_samples
from arctic_kd.data.samples import PairedSample
from arctic_kd.data.sampling import clip_offsets, segment_times
from arctic_kd.data.transforms import CropBox, centre_crop, view_crops
from arctic_kd.data.video import write_video
from arctic_kd.engine.checkpoint import save_checkpoint
from arctic_kd.engine.evaluate import average_view_probabilities, evaluate, evaluate_views
from arctic_kd.engine.stages import run_train
from arctic_kd.models import video_resnet
from arctic_kd.models.factory import model_spec
from arctic_kd.presets import resolve_config
from tests.test_engine import TINY_RUN

FRAMES, HEIGHT, WIDTH = 40, 48, 96
UNNORMALISED = {"rgb": ((0.0, 0.0, 0.0), (1.0, 1.0, 1.0)), "ir": ((0.0,), (1.0,))}
TOLERANCE = 0.03  # MPEG-4 and resizing on smooth frames


@pytest.fixture(scope="module")
def coded_video(tmp_path_factory) -> PairedSample:
    """Red is the frame's relative time k / n; green rises from left (0) to right (1) across the frame."""
    ramp = np.round(255 * (np.arange(WIDTH) + 0.5) / WIDTH).astype(np.uint8)
    frames = []
    for k in range(FRAMES):
        frame = np.zeros((HEIGHT, WIDTH, 3), np.uint8)
        frame[..., 0] = round(255 * k / FRAMES)
        frame[..., 1] = ramp
        frames.append(frame)
    path = tmp_path_factory.mktemp("coded") / "coded_rgb.avi"
    write_video(path, frames, quality=2)
    return PairedSample("coded", 0, path, None)


def coded_dataset(sample: PairedSample, **views) -> PairedClipDataset:
    return PairedClipDataset(
        [sample], num_frames=4, modalities=("rgb",), rgb_size=(16, 16), normalization=UNNORMALISED, **views
    )


def test_clip_offsets_are_evenly_spaced_with_the_centre_first():
    assert clip_offsets(1) == [0.5]
    assert clip_offsets(2) == [0.5, 0.0]  # mmaction2's twice_sample
    offsets = clip_offsets(4)
    assert offsets[0] == 0.5 and sorted(offsets) == [0.0, 0.25, 0.5, 0.75]
    np.testing.assert_allclose(segment_times(4, None, 0.0), [0.0, 0.25, 0.5, 0.75])
    with pytest.raises(ValueError, match="at least 1"):
        clip_offsets(0)


def test_view_crops_spread_along_the_long_side_with_the_centre_first():
    assert view_crops(0.8, 1, 160, 90) == [centre_crop(0.8)]
    wide = view_crops(0.5, 3, 160, 90)
    assert wide == [centre_crop(0.5), CropBox(0.0, 0.25, 0.5, 0.75), CropBox(0.5, 0.25, 1.0, 0.75)]
    tall = view_crops(0.5, 3, 90, 160)
    assert tall[1:] == [CropBox(0.25, 0.0, 0.75, 0.5), CropBox(0.25, 0.5, 0.75, 1.0)]
    assert len(set(view_crops(0.6, 5, 100, 100))) == 5
    with pytest.raises(ValueError, match="odd"):
        view_crops(0.8, 2, 160, 90)
    with pytest.raises(ValueError, match="coincide"):
        view_crops(1.0, 3, 160, 90)


def test_views_are_every_clip_times_every_crop_distinct_and_deterministic(coded_video):
    dataset = coded_dataset(coded_video, test_clips=2, test_crops=3, test_crop=0.5)
    views = dataset[0]["rgb"]
    assert views.shape == (6, 3, 4, 16, 16)
    assert torch.equal(views, dataset[0]["rgb"])
    assert all(not torch.equal(views[i], views[j]) for i in range(6) for j in range(i))
    # clip-major: views 0-2 show the segment centres, views 3-5 the segment starts
    times = views[:, 0].mean(dim=(2, 3)).numpy()
    np.testing.assert_allclose(times[:3], [[0.125, 0.375, 0.625, 0.875]] * 3, atol=TOLERANCE)
    np.testing.assert_allclose(times[3:], [[0.0, 0.25, 0.5, 0.75]] * 3, atol=TOLERANCE)
    # crops: centre, left, right half of the frame's width
    across = views[:, 1].mean(dim=(1, 2, 3)).numpy()
    np.testing.assert_allclose(across, [0.5, 0.25, 0.75] * 2, atol=TOLERANCE)
    # view 0 is exactly the single-clip test clip
    single = coded_dataset(coded_video, test_crop=0.5)[0]["rgb"]
    assert torch.equal(views[0], single)


def test_paired_views_come_with_one_rgb_to_ir_warp_each(tiny_dataset):
    sample = protocol_samples(tiny_data(tiny_dataset), ("rgb", "ir")).test[0]
    options = {"num_frames": 4, "rgb_size": (16, 16), "ir_size": (16, 16), "test_crop": 0.8}
    single = PairedClipDataset([sample], **options)[0]
    views = PairedClipDataset([sample], test_clips=2, test_crops=3, **options)[0]
    assert views["rgb"].shape == (6, 3, 4, 16, 16) and views["ir"].shape == (6, 1, 4, 16, 16)
    assert views["ir_from_rgb"].shape == (6, 2, 3)
    for key in ("rgb", "ir", "ir_from_rgb"):
        assert torch.equal(views[key][0], single[key])
    assert not torch.equal(views["ir_from_rgb"][1], views["ir_from_rgb"][0])  # another crop, another warp


def test_views_are_for_testing_only(coded_video):
    with pytest.raises(ValueError, match="not training"):
        coded_dataset(coded_video, test_clips=3, train=True)


def test_probabilities_not_logits_are_averaged_per_video():
    # one confident view for class 0, two moderate ones for class 1
    logits = torch.tensor([[[10.0, 0.0], [0.0, 4.0], [0.0, 4.0]]])
    low = 1 / (1 + math.exp(4))
    expected = [(1 / (1 + math.exp(-10)) + 2 * low) / 3, (1 / (1 + math.exp(10)) + 2 * (1 - low)) / 3]
    averaged = average_view_probabilities(logits)
    torch.testing.assert_close(averaged, torch.tensor([expected]))
    assert averaged.argmax(1).item() == 1 and logits.mean(1).argmax(1).item() == 0


def tiny_data(root, **views) -> DataConfig:
    return DataConfig(root=str(root), num_frames=4, rgb_size=32, ir_size=32, batch_size=4, workers=0, **views)


def tiny_ir_model() -> torch.nn.Module:
    torch.manual_seed(0)
    return video_resnet("r3d", 10, num_classes=2, in_channels=1, width=0.125).eval()


def test_one_view_gives_the_single_clip_metrics(tiny_dataset):
    model, config = tiny_ir_model(), tiny_data(tiny_dataset)
    _, _, test, _ = make_loaders(config, ("ir",), seed=0, progress=False)
    single = evaluate(model, test, "ir", 2, torch.device("cpu"))
    views, _ = make_view_loader(config, ("ir",), progress=False)
    both = evaluate_views(model, views, "ir", 2, torch.device("cpu"))
    assert both["views"] == 1
    for key in ("top1", "top5", "confusion", "samples"):
        assert both[key] == single[key] and both["multiview"][key] == single[key]


def test_multiview_counts_each_video_once_and_averages_its_views(tiny_dataset):
    model = tiny_ir_model()
    config = tiny_data(tiny_dataset, test_clips=2, test_crops=3, test_crop=0.8)
    views, _ = make_view_loader(config, ("ir",), progress=False)
    metrics = evaluate_views(model, views, "ir", 2, torch.device("cpu"))
    assert metrics["views"] == 6 and metrics["multiview"]["samples"] == metrics["samples"] == 6
    _, _, test, _ = make_loaders(config, ("ir",), seed=0, progress=False)
    assert metrics["confusion"] == evaluate(model, test, "ir", 2, torch.device("cpu"))["confusion"]
    confusion = torch.zeros(2, 2, dtype=torch.long)
    with torch.no_grad():
        for batch in views:
            for clips, label in zip(batch["ir"], batch["label"], strict=True):
                predicted = model(clips).softmax(-1).mean(0).argmax()  # a video's 6 views as one batch
                confusion[label, predicted] += 1
    assert metrics["multiview"]["confusion"] == confusion.tolist()


def test_eval_reports_single_clip_and_multiview(tiny_dataset, tmp_path, capsys):
    model = tiny_ir_model()
    config = Config(data=tiny_data(tiny_dataset))
    spec = model_spec("r3d", 10, 0.125, 0.0, 1, 2)
    payload = {"model": spec, "modality": "ir", "class_names": ["cheer up", "kicking"]}
    payload |= {"config": config.to_dict(), "state_dict": model.state_dict()}
    checkpoint = save_checkpoint(tmp_path / "ir.pt", payload)
    assert main(["eval", str(checkpoint), "--json", "--set", "data.test_clips=2"]) == 0
    metrics = json.loads(capsys.readouterr().out)
    _, _, test, _ = make_loaders(config.data, ("ir",), seed=0, progress=False)
    assert metrics["top1"] == evaluate(model, test, "ir", 2, torch.device("cpu"))["top1"]
    assert metrics["views"] == 2 and metrics["multiview"]["samples"] == 6
    assert main(["eval", str(checkpoint), "--set", "data.test_crops=3"]) == 2
    assert (
        "arctic eval: error: data: 3 test crops of the whole region would coincide" in capsys.readouterr().err
    )


def test_training_measures_multiview_once_after_the_last_epoch(tiny_dataset, tmp_path):
    config = load_config(resolve_config("demo"), [f"data.root={tiny_dataset}", *TINY_RUN[1::2]])
    config.optim.epochs, config.data.cache, config.data.test_clips = 1, False, 3
    result = run_train(config, "ir", tmp_path, progress=False)
    assert result["multiview"]["views"] == 3 and result["multiview"]["samples"] == 6
    assert json.loads((tmp_path / "multiview.json").read_text())["top1"] == result["multiview"]["top1"]
    log = (tmp_path / "metrics.jsonl").read_text().splitlines()
    assert len(log) == 1 and json.loads(log[0])["test_top1"] == result["final"]["top1"]
