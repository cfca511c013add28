"""`arctic predict`: whole-video multi-clip inference on IR files, consistent with `arctic eval`."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from arctic_kd.cli import main
from arctic_kd.config import config_from_dict
from arctic_kd.data.loaders import make_loaders
from arctic_kd.data.ntu import SampleName
from arctic_kd.data.sampling import segment_times
from arctic_kd.data.video import VideoReader, write_video
from arctic_kd.engine.checkpoint import load_checkpoint, model_from_checkpoint
from arctic_kd.use.predict import Predictor, clip_times
from tests.trained import trained_run


@pytest.fixture(scope="module")
def student(tiny_dataset, tmp_path_factory):
    return trained_run(tmp_path_factory, tiny_dataset, "ir") / "last.pt"


def ir_file(root, sample_id: str):
    return root / "nturgb+d_ir" / f"{sample_id}_ir.avi"


def test_clips_are_spread_evenly_and_one_clip_is_the_test_clip():
    times = clip_times(4, 3)
    assert times.shape == (3, 4)
    np.testing.assert_allclose(np.sort(times.ravel()), (np.arange(12) + 0.5) / 12)
    np.testing.assert_allclose(clip_times(8, 1)[0], segment_times(8, None))


def test_one_clip_predictions_are_the_evaluation_clips_probabilities(student, tiny_dataset):
    checkpoint = load_checkpoint(student)
    config = config_from_dict(checkpoint["config"])
    model = model_from_checkpoint(checkpoint)
    _, _, test, _ = make_loaders(config.data, ("ir",), config.seed, progress=False)
    predictor = Predictor(student, num_clips=1)
    compared = 0
    for batch in test:
        with torch.no_grad():
            expected = model(batch["ir"]).softmax(dim=1)
        for sample_id, probs in zip(batch["sample_id"], expected, strict=True):
            actual, _ = predictor.probabilities(ir_file(tiny_dataset, sample_id))
            torch.testing.assert_close(actual, probs, atol=1e-5, rtol=1e-4)
            compared += 1
    assert compared == 6


def test_predict_agrees_with_eval_on_the_test_split(student, tiny_dataset, capsys):
    whole_frames = ["--set", "data.person_crop=false", "--set", "data.cache=false"]
    assert main(["eval", str(student), "--json", *whole_frames]) == 0
    confusion = np.array(json.loads(capsys.readouterr().out)["confusion"])
    test_files = sorted((tiny_dataset / "nturgb+d_ir").glob("*P003*_ir.avi"))
    assert (
        main(["predict", *map(str, test_files), "--checkpoint", str(student), "--clips", "1", "--json"]) == 0
    )
    names = load_checkpoint(student)["class_names"]
    predicted = np.zeros_like(confusion)
    for line, path in zip(capsys.readouterr().out.splitlines(), test_files, strict=True):
        result = json.loads(line)
        label = SampleName.parse(path.name[:20]).label
        predicted[label, names.index(result["top"][0]["class"])] += 1
    np.testing.assert_array_equal(predicted, confusion)


def test_any_container_resolution_and_length(student, tiny_dataset, tmp_path):
    with VideoReader(ir_file(tiny_dataset, "S001C001P003R001A001")) as reader:
        frames = reader.read(range(reader.num_frames), gray=True)[..., 0]
    tall_colour = [np.repeat(np.kron(f, np.ones((3, 2), np.uint8))[..., None], 3, axis=2) for f in frames]
    write_video(tmp_path / "colour.mp4", tall_colour, codec="mpeg4")
    write_video(tmp_path / "long.avi", list(frames) * 8)
    predictor = Predictor(student, num_clips=4)
    for name, length in (("colour.mp4", len(frames)), ("long.avi", 8 * len(frames))):
        result = predictor.predict(tmp_path / name, topk=5)
        assert result.frames == length and result.clips == 4
        assert [c for c, _ in result.top] and len(result.top) == 2  # only 2 classes: top-5 shows both
        assert sum(p for _, p in result.top) == pytest.approx(1.0, abs=1e-5)
        assert result.top[0][1] >= result.top[1][1]


def test_bad_files_are_reported_and_the_others_predicted(student, tiny_dataset, tmp_path, capsys):
    folder = tmp_path / "mixed"
    folder.mkdir()
    good = [ir_file(tiny_dataset, f"S001C001P003R001A00{a}") for a in (1, 2)]
    for path in good:
        (folder / path.name).write_bytes(path.read_bytes())
    (folder / "corrupt.avi").write_bytes(b"RIFF" + bytes(range(256)) * 8)
    (folder / "empty.mp4").write_bytes(b"")
    (folder / "notes.txt").write_text("not a video, and not picked up from a folder")
    code = main(["predict", str(folder), "--checkpoint", str(student), "--topk", "1"])
    captured = capsys.readouterr()
    assert code == 1
    for path in good:
        assert f"{folder / path.name}  (" in captured.out
    assert captured.out.count("  1. ") == 2
    assert "corrupt.avi: not a readable video" in captured.err
    assert "empty.mp4: file is empty" in captured.err
    assert "notes.txt" not in captured.out + captured.err
    assert "2 of 4 file(s) could not be read" in captured.err
    assert "Traceback" not in captured.out + captured.err


def test_a_folder_without_videos_and_a_bad_topk_are_one_line_errors(student, tmp_path, capsys):
    assert main(["predict", str(tmp_path), "--checkpoint", str(student)]) == 2
    assert "no video files" in capsys.readouterr().err
    assert main(["predict", str(tmp_path), "--checkpoint", str(student), "--topk", "0"]) == 2
    assert "--topk must be at least 1" in capsys.readouterr().err


@pytest.mark.parametrize("command", ["predict", "export", "viz", "report"])
def test_using_commands_are_listed_and_teach_with_examples(command, capsys):
    with pytest.raises(SystemExit):
        main(["--help"])
    assert command in capsys.readouterr().out
    with pytest.raises(SystemExit):
        main([command, "--help"])
    assert f"  arctic {command} " in capsys.readouterr().out


def test_a_student_trained_on_person_crops_gets_a_note(tiny_dataset, tmp_path_factory, capsys):
    cropped = trained_run(tmp_path_factory, tiny_dataset, "rgb") / "last.pt"  # person_crop on (default)
    video = tiny_dataset / "nturgb+d_rgb" / "S001C001P003R001A001_rgb.avi"
    assert main(["predict", str(video), "--checkpoint", str(cropped), "--topk", "1"]) == 0
    assert "trained on person crops" in capsys.readouterr().err
