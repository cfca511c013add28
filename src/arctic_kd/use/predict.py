"""Whole-video inference on a user's own files: several clips per video, probabilities averaged.

Each clip is prepared exactly as `PairedClipDataset` prepares a test clip on the whole-frame path: TSN
segment times, the whole frame (centre crop 1.0) squeezed to the model's square input, the modality's mean
and standard deviation, and per-clip standardisation where the checkpoint's config asks for it. With one
clip per video a prediction is therefore the one `arctic eval` makes for that video when eval reads whole
frames (`data.person_crop=false`, `data.cache=false`).

A student trained on person crops (`data.person_crop`, the default for NTU) saw the performer enlarged;
predict has no skeleton to find the performer, so on whole frames the person looks smaller than in
training. That domain shift costs accuracy; train with `--set data.person_crop=false` for a model meant to
run on whole frames.
"""

from __future__ import annotations

import copy
import json
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, fields
from pathlib import Path

import numpy as np
import torch
from torch import Tensor

from arctic_kd.config import Config, apply_overrides, config_from_dict
from arctic_kd.data.sampling import frame_indices
from arctic_kd.data.transforms import MODALITY_STATS, apply_crop, centre_crop, standardise, to_tensor
from arctic_kd.data.video import VideoReader
from arctic_kd.engine.checkpoint import load_checkpoint, model_from_checkpoint
from arctic_kd.errors import ArcticError, DataError

VIDEO_SUFFIXES = (".avi", ".mp4", ".mkv", ".mov", ".webm", ".m4v", ".mpg", ".mpeg", ".wmv")


def clip_times(num_segments: int, num_clips: int) -> np.ndarray:
    """(num_clips, num_segments) relative times: clip k takes offset (k + ½)/K inside every TSN segment.

    One clip is the segment centres, the dataset's deterministic test clip; more clips spread evenly
    through each segment, so together they cover the video uniformly.
    """
    if num_clips < 1:
        raise ArcticError(f"the number of clips must be at least 1, got {num_clips}")
    offsets = (np.arange(num_clips) + 0.5) / num_clips
    return (np.arange(num_segments)[None, :] + offsets[:, None]) / num_segments


@dataclass(frozen=True)
class ClipRecipe:
    """How a checkpoint's network wants its input clips: what `PairedClipDataset` does at test time."""

    modality: str
    num_frames: int
    size: int
    standardised: bool

    @classmethod
    def of(cls, checkpoint: dict) -> ClipRecipe:
        config = checkpoint_config(checkpoint)
        modality = checkpoint["modality"]
        size = config.data.ir_size if modality == "ir" else config.data.rgb_size
        return cls(modality, config.data.num_frames, size, modality in config.data.standardise)

    @classmethod
    def from_json(cls, text: str) -> ClipRecipe:
        """The recipe an exported file carries in its `arctic_kd.input` metadata (mean/std follow from the
        modality)."""
        values = json.loads(text)
        return cls(**{f.name: values[f.name] for f in fields(cls)})

    @property
    def input_shape(self) -> tuple[int, int, int, int]:
        """(C, T, H, W) of one clip."""
        return (1 if self.modality == "ir" else 3, self.num_frames, self.size, self.size)

    def clips(self, reader: VideoReader, num_clips: int) -> Tensor:
        """(num_clips, C, T, H, W) clips of a whole video; every needed frame is decoded once."""
        times = clip_times(self.num_frames, num_clips)
        indices = np.stack([frame_indices(t, reader.num_frames) for t in times])
        frames = reader.read(indices.ravel(), gray=self.modality == "ir")
        frames = apply_crop(frames, centre_crop(1.0), (self.size, self.size))
        mean, std = MODALITY_STATS[self.modality]
        per_clip = frames.reshape(num_clips, self.num_frames, *frames.shape[1:])
        clips = [to_tensor(f, mean, std) for f in per_clip]
        return torch.stack([standardise(c) if self.standardised else c for c in clips])


def checkpoint_config(checkpoint: dict, overrides: list[str] | tuple[str, ...] = ()) -> Config:
    """The config a checkpoint was trained with, `overrides` (`key.sub=value`) applied: what re-testing or
    deploying it needs, e.g. `arctic eval ckpt` alone re-tests it on its own split."""
    return config_from_dict(apply_overrides(copy.deepcopy(checkpoint["config"]), overrides))


@dataclass(frozen=True)
class Prediction:
    path: Path
    top: list[tuple[str, float]]  # (class name, probability), most likely first
    clips: int
    frames: int  # frames in the video

    def as_dict(self) -> dict:
        return {
            "path": str(self.path),
            "top": [{"class": name, "probability": round(p, 6)} for name, p in self.top],
            "clips": self.clips,
            "frames": self.frames,
        }


@dataclass(frozen=True)
class Failure:
    path: Path
    problem: str

    def as_dict(self) -> dict:
        return {"path": str(self.path), "error": self.problem}


class Predictor:
    """A checkpoint's network with its clip recipe: video file → averaged class probabilities."""

    def __init__(self, checkpoint_path: str | Path, num_clips: int = 3, device: str | torch.device = "cpu"):
        if num_clips < 1:
            raise ArcticError(f"--clips must be at least 1, got {num_clips}")
        checkpoint = load_checkpoint(checkpoint_path)
        self.recipe = ClipRecipe.of(checkpoint)
        self.trained_on_person_crops = checkpoint_config(checkpoint).data.person_crop
        self.class_names: list[str] = list(checkpoint["class_names"])
        self.device = torch.device(device)
        self.model = model_from_checkpoint(checkpoint).to(self.device)
        self.num_clips = num_clips

    @torch.inference_mode()
    def probabilities(self, path: Path) -> tuple[Tensor, int]:
        """Class probabilities of a video (mean over its clips) and its frame count."""
        with VideoReader(path) as reader:
            clips = self.recipe.clips(reader, self.num_clips)
            frames = reader.num_frames
        logits = self.model(clips.to(self.device)).float()
        return logits.softmax(dim=1).mean(dim=0).cpu(), frames

    def predict(self, path: Path, topk: int = 5) -> Prediction | Failure:
        """A prediction, or the reason this file could not be read (never an exception for bad files)."""
        try:
            probs, frames = self.probabilities(path)
        except DataError as error:
            return Failure(path, error.problem)
        values, indices = probs.topk(min(topk, len(probs)))
        top = [(self.class_names[i], float(v)) for v, i in zip(values, indices.tolist(), strict=True)]
        return Prediction(path, top, self.num_clips, frames)

    def predict_all(self, paths: Iterable[Path], topk: int = 5) -> Iterator[Prediction | Failure]:
        for path in paths:
            yield self.predict(path, topk)


def video_files(inputs: Sequence[str | Path]) -> list[Path]:
    """Files as given, and the video files (by suffix) anywhere under each folder, sorted."""
    files: list[Path] = []
    for item in map(Path, inputs):
        if item.is_dir():
            found = sorted(p for p in item.rglob("*") if p.suffix.lower() in VIDEO_SUFFIXES and p.is_file())
            if not found:
                raise ArcticError(f"{item}: no video files ({', '.join(VIDEO_SUFFIXES)}) in this folder")
            files += found
        else:
            files.append(item)  # a missing or unreadable file is reported per file, with the others
    return files


def format_table(results: Sequence[Prediction | Failure]) -> str:
    """One block per video: its top-k classes with probabilities; failures say why."""
    lines = []
    for result in results:
        if isinstance(result, Failure):
            lines.append(f"{result.path}: FAILED: {result.problem}")
            continue
        lines.append(f"{result.path}  ({result.frames} frames, {result.clips} clips)")
        width = max(len(name) for name, _ in result.top)
        lines += [f"  {rank}. {name:<{width}}  {p:6.1%}" for rank, (name, p) in enumerate(result.top, 1)]
    return "\n".join(lines)
