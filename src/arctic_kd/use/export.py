"""Ship a trained network to a deployment runtime: ONNX (checked with onnxruntime) or TorchScript.

Both files take clips of any batch size (N, C, T, H, W) and return logits; the preprocessing a clip needs
(frames, size, mean/std, per-clip standardisation) and the class names travel inside the file as metadata.
Every export is verified: the saved file is loaded back in its runtime and run on clips of a real video,
and its outputs must match PyTorch's within `TOLERANCE`.

ONNX uses torch's TorchScript-based exporter (`dynamo=False`): the torch.export-based one needs the
`onnxscript` package and gains nothing for these plain convolutional networks.
"""

from __future__ import annotations

import importlib
import json
import os
import warnings
from dataclasses import asdict, dataclass
from pathlib import Path

import torch
from torch import Tensor, nn

from arctic_kd.data.transforms import MODALITY_STATS
from arctic_kd.data.video import VideoReader
from arctic_kd.engine.checkpoint import load_checkpoint, model_from_checkpoint
from arctic_kd.errors import ArcticError, os_error
from arctic_kd.use.predict import ClipRecipe, checkpoint_config, video_files

FORMATS = ("onnx", "torchscript")
SUFFIXES = {"onnx": ".onnx", "torchscript": ".torchscript.pt"}
TOLERANCE = 1e-4
OPSET = 17
VERIFY_CLIPS = 2  # a batch of 2 from a model traced with batch 1 also checks the dynamic batch axis


@dataclass(frozen=True)
class ExportResult:
    path: Path
    format: str
    max_abs_diff: float
    verified_on: Path  # the video whose clips both runtimes were given
    clips: int


def export_checkpoint(
    checkpoint_path: str | Path, fmt: str, out: Path | None = None, video: Path | None = None
) -> ExportResult:
    """Export, reload in the target runtime, and compare with PyTorch; raises if they disagree."""
    if fmt not in FORMATS:
        raise ArcticError(f"unknown export format {fmt!r}; choose one of {', '.join(FORMATS)}")
    checkpoint = load_checkpoint(checkpoint_path)
    model = model_from_checkpoint(checkpoint)
    recipe = ClipRecipe.of(checkpoint)
    out = out or Path(checkpoint_path).with_suffix(SUFFIXES[fmt])
    if out.is_dir():
        raise ArcticError(f"{out}: is a folder; --out names the file to write")
    source = video or _dataset_video(checkpoint)
    with VideoReader(source) as reader:
        clips = recipe.clips(reader, VERIFY_CLIPS)
    # written beside `out` and renamed into place once verified: a failed export leaves no file behind
    partial = out.with_name(f".{out.name}.partial")
    try:
        out.parent.mkdir(parents=True, exist_ok=True)
        diff = _write_and_compare(model, recipe, fmt, partial, _metadata(checkpoint, recipe), clips)
        if not diff <= TOLERANCE:
            raise ArcticError(
                f"{out}: {fmt} output differs from PyTorch by up to {diff:.2e} on {source} "
                f"(tolerance {TOLERANCE:.0e}); the export is not trustworthy and was not kept"
            )
        os.replace(partial, out)
    except OSError as error:
        raise os_error(error, out, "cannot write the export") from None
    finally:
        partial.unlink(missing_ok=True)
    return ExportResult(out, fmt, diff, source, VERIFY_CLIPS)


def _write_and_compare(
    model: nn.Module, recipe: ClipRecipe, fmt: str, path: Path, metadata: dict[str, str], clips: Tensor
) -> float:
    """Write the export to `path`, run it in its runtime, and return the largest difference from PyTorch."""
    example = torch.zeros(1, *recipe.input_shape)
    if fmt == "onnx":
        write_onnx(model, example, path, metadata)
    else:
        write_torchscript(model, example, path, metadata)
    with torch.inference_mode():
        expected = model(clips)
    actual = _run_onnx(path, clips) if fmt == "onnx" else _run_torchscript(path, clips)
    return float((actual - expected).abs().max())


def _metadata(checkpoint: dict, recipe: ClipRecipe) -> dict[str, str]:
    """What a deployment needs besides the weights: the input recipe and the class names (JSON strings)."""
    mean, std = MODALITY_STATS[recipe.modality]
    return {
        "arctic_kd.input": json.dumps({**asdict(recipe), "mean": list(mean), "std": list(std)}),
        "arctic_kd.class_names": json.dumps(list(checkpoint["class_names"])),
        "arctic_kd.model": json.dumps(checkpoint["model"]),
    }


def write_onnx(model: nn.Module, example: Tensor, out: Path, metadata: dict[str, str]) -> None:
    """`model` as ONNX with a dynamic batch axis, traced on `example`, with `metadata` as properties."""
    onnx = _require("onnx")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)  # the TorchScript-based exporter's notice
        torch.onnx.export(
            model,
            (example,),
            str(out),
            dynamo=False,
            input_names=["clip"],
            output_names=["logits"],
            dynamic_axes={"clip": {0: "batch"}, "logits": {0: "batch"}},
            opset_version=OPSET,
        )
    proto = onnx.load(str(out))
    for key, value in metadata.items():
        entry = proto.metadata_props.add()
        entry.key, entry.value = key, value
    onnx.checker.check_model(proto)
    onnx.save(proto, str(out))


def write_torchscript(model: nn.Module, example: Tensor, out: Path, metadata: dict[str, str]) -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)  # torch.jit still works; it is only deprecated
        traced = torch.jit.trace(model, example, check_trace=False)  # the verification below checks it
        torch.jit.save(traced, str(out), _extra_files={k: v.encode() for k, v in metadata.items()})


def _run_onnx(path: Path, clips: Tensor) -> Tensor:
    ort = _require("onnxruntime")
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    return torch.from_numpy(session.run(["logits"], {"clip": clips.numpy()})[0])


def _run_torchscript(path: Path, clips: Tensor) -> Tensor:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        module = torch.jit.load(str(path), map_location="cpu")
    with torch.inference_mode():
        return module(clips)


def _dataset_video(checkpoint: dict) -> Path:
    """A real clip to verify on when none is given: the first video of the checkpoint's own dataset."""
    config = checkpoint_config(checkpoint)
    folder = Path(config.data.root) / ("nturgb+d_ir" if checkpoint["modality"] == "ir" else "nturgb+d_rgb")
    if not folder.is_dir():
        raise ArcticError(
            f"verification needs a real video and the checkpoint's dataset ({folder}) is not here: "
            "give one with --video FILE"
        )
    return video_files([folder])[0]


def _require(module: str):
    try:
        return importlib.import_module(module)
    except ImportError:
        raise ArcticError(
            f"ONNX export needs the {module} package: pip install 'arctic-kd[export]'"
        ) from None
