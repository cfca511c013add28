"""`arctic export`: ONNX and TorchScript files that match PyTorch, with a dynamic batch axis."""

from __future__ import annotations

import json
import re

import onnx
import onnxruntime
import pytest
import torch

from arctic_kd.cli import main
from arctic_kd.engine.checkpoint import load_checkpoint, model_from_checkpoint
from arctic_kd.use import export
from arctic_kd.use.predict import ClipRecipe
from tests.trained import trained_run


@pytest.fixture(scope="module")
def student(tiny_dataset, tmp_path_factory):
    return trained_run(tmp_path_factory, tiny_dataset, "ir") / "last.pt"


def reported_difference(text: str) -> float:
    return float(re.search(r"PyTorch\| = (\S+)", text).group(1))


def pytorch_logits(checkpoint_path, clips: torch.Tensor) -> torch.Tensor:
    with torch.no_grad():
        return model_from_checkpoint(load_checkpoint(checkpoint_path))(clips)


def test_onnx_matches_pytorch_for_any_batch_size(student, tmp_path, capsys):
    out = tmp_path / "student.onnx"
    assert main(["export", str(student), "--format", "onnx", "--out", str(out)]) == 0
    assert reported_difference(capsys.readouterr().out) <= 1e-4
    clips = torch.randn(3, *ClipRecipe.of(load_checkpoint(student)).input_shape)
    session = onnxruntime.InferenceSession(str(out), providers=["CPUExecutionProvider"])
    logits = torch.from_numpy(session.run(["logits"], {"clip": clips.numpy()})[0])
    assert logits.shape == (3, 2)
    assert (logits - pytorch_logits(student, clips)).abs().max() <= 1e-4
    metadata = {p.key: p.value for p in onnx.load(str(out)).metadata_props}
    assert json.loads(metadata["arctic_kd.class_names"]) == ["cheer up", "kicking"]
    assert ClipRecipe.from_json(metadata["arctic_kd.input"]) == ClipRecipe.of(load_checkpoint(student))


@pytest.mark.filterwarnings("ignore::DeprecationWarning")  # torch.jit works, but is deprecated
def test_torchscript_matches_pytorch_and_carries_its_recipe(student, tmp_path, capsys):
    assert main(["export", str(student), "--format", "torchscript"]) == 0
    out = student.with_suffix(".torchscript.pt")
    assert reported_difference(capsys.readouterr().out) <= 1e-4
    extra = {"arctic_kd.input": ""}
    module = torch.jit.load(str(out), _extra_files=extra)
    clips = torch.randn(2, *ClipRecipe.of(load_checkpoint(student)).input_shape)
    with torch.no_grad():
        assert (module(clips) - pytorch_logits(student, clips)).abs().max() <= 1e-4
    assert json.loads(extra["arctic_kd.input"]) == {
        "modality": "ir",
        "num_frames": 4,
        "size": 32,
        "standardised": False,
        "mean": [0.5],
        "std": [0.25],
    }


def test_a_mismatch_beyond_the_tolerance_fails_the_export(student, tmp_path, monkeypatch, capsys):
    real = export._run_onnx
    monkeypatch.setattr(export, "_run_onnx", lambda path, clips: real(path, clips) + 1e-3)
    assert main(["export", str(student), "--format", "onnx", "--out", str(tmp_path / "m.onnx")]) == 2
    assert "differs from PyTorch by up to 1.00e-03" in capsys.readouterr().err


def test_without_the_dataset_a_video_must_be_given(student, tiny_dataset, tmp_path, capsys):
    checkpoint = load_checkpoint(student)
    checkpoint["config"]["data"]["root"] = str(tmp_path / "gone")
    moved = tmp_path / "moved.pt"
    torch.save(checkpoint, moved)
    assert main(["export", str(moved), "--format", "onnx"]) == 2
    assert "give one with --video FILE" in capsys.readouterr().err
    video = tiny_dataset / "nturgb+d_ir" / "S001C001P003R001A001_ir.avi"
    assert main(["export", str(moved), "--format", "onnx", "--video", str(video)]) == 0
    assert f"verified on 2 clips of {video}" in capsys.readouterr().out
