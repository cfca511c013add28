"""Where the networks look: class activation maps of the RGB teacher over its RGB frames, beside those of
one or more IR students over their IR frames (e.g. an IR-only baseline and an ARCTIC student).

Each network gets its test clip exactly as evaluation prepares it from its own checkpoint's config (person
crop, size, frames, normalisation), so a picture shows what the network saw. The map is the class
activation map of the sample's true class — the map ARCTIC's activation region constraint aligns — taken
at the last stage, resampled to the clip and normalised per clip to [0, 1].
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path

import matplotlib
import numpy as np
import torch
from matplotlib.cm import ScalarMappable
from matplotlib.colors import Normalize
from matplotlib.figure import Figure
from PIL import Image, ImageDraw
from torch import Tensor, nn

from arctic_kd.config import Config, DataConfig
from arctic_kd.data.loaders import split_samples, test_dataset
from arctic_kd.data.samples import BadSample, PairedSample
from arctic_kd.distill.maps import normalise_maps, warp_to
from arctic_kd.engine.checkpoint import load_checkpoint, model_from_checkpoint
from arctic_kd.errors import ArcticError
from arctic_kd.use.predict import checkpoint_config
from arctic_kd.use.viz import save_figure

COLORMAP = "jet"
ALPHA = 0.45  # map opacity over the frame: the figure stays visible under the hottest regions
_ROLE = {"rgb": "RGB teacher", "ce": "IR-only student"}


@dataclass
class LoadedModel:
    name: str  # what the picture calls it, e.g. "ARCTIC student (runs/arctic)"
    model: nn.Module
    modality: str
    config: Config
    class_names: list[str]


def load_model(path: str | Path) -> LoadedModel:
    checkpoint = load_checkpoint(path)
    modality, method = checkpoint["modality"], checkpoint.get("method", "ce")
    role = _ROLE["rgb"] if modality == "rgb" else _ROLE.get(method, f"{method.upper()} student")
    return LoadedModel(
        f"{role} ({Path(path).parent.name})",
        model_from_checkpoint(checkpoint),
        modality,
        checkpoint_config(checkpoint),
        list(checkpoint["class_names"]),
    )


@dataclass
class Panel:
    """One network on one sample."""

    name: str
    frames: np.ndarray  # (T, H, W, 3) in [0, 1], as the network saw them (contrast stretched)
    maps: np.ndarray  # (T, H, W) in [0, 1]
    predicted: str
    probability: float


@dataclass
class SamplePanels:
    sample_id: str
    true_class: str
    panels: list[Panel]


@torch.no_grad()
def activation_maps(model: nn.Module, clip: Tensor, class_index: int) -> tuple[np.ndarray, Tensor]:
    """The class activation map of `class_index` for one (C, T, H, W) clip at the clip's resolution,
    normalised to [0, 1], and the class probabilities."""
    logits, features = model.eval().forward_features(clip[None])
    cam = model.class_activation_map(features["layer4"])[:, class_index]
    maps = normalise_maps(warp_to(cam, tuple(clip.shape[1:])))[0]
    return maps.numpy(), logits.softmax(dim=1)[0]


def display_frames(clip: Tensor) -> np.ndarray:
    """A normalised (C, T, H, W) clip as (T, H, W, 3) pixels in [0, 1], contrast stretched per clip."""
    frames = clip.permute(1, 2, 3, 0).float()
    frames = (frames - frames.min()) / (frames.max() - frames.min()).clamp_min(1e-6)
    return frames.expand(-1, -1, -1, 3).numpy() if frames.shape[-1] == 1 else frames.numpy()


def overlay(frames: np.ndarray, maps: np.ndarray) -> np.ndarray:
    """Frames with the colour-mapped activation blended over them, (..., H, W, 3) in [0, 1]."""
    coloured = matplotlib.colormaps[COLORMAP](maps)[..., :3]
    return np.clip((1 - ALPHA) * frames + ALPHA * coloured, 0.0, 1.0)


def split_test_samples(data: DataConfig, modalities: Sequence[str]) -> dict[str, PairedSample]:
    """The test split of the config's protocol, by sample id, among samples that have `modalities`: read
    through the loaders, as evaluation reads it, so any dataset kind (NTU layout, PKU-MMD, manifest) works."""
    return {sample.sample_id: sample for sample in split_samples(data, modalities, progress=False).test}


def choose_samples(samples: dict[str, PairedSample], count: int) -> list[str]:
    """Up to `count` samples, one per class in class order before any class repeats."""
    chosen: list[str] = []
    remaining = sorted(samples, key=lambda s: (samples[s].label, s))
    while remaining and len(chosen) < count:
        seen: set[int] = set()
        for sample_id in list(remaining):
            label = samples[sample_id].label
            if label not in seen and len(chosen) < count:
                seen.add(label)
                chosen.append(sample_id)
                remaining.remove(sample_id)
    return chosen


def model_clip(model: LoadedModel, sample: PairedSample) -> Tensor:
    """The sample's test clip as evaluation gives it to this model (its own config's data settings)."""
    item = test_dataset(model.config.data, [sample], (model.modality,))[0]
    if isinstance(item, BadSample):
        raise item.error()
    return item[model.modality]


def collect_panels(
    models: Sequence[LoadedModel],
    data_root: str | Path | None = None,
    sample_ids: Sequence[str] = (),
    num_samples: int = 3,
) -> list[SamplePanels]:
    """Maps and predictions of every model on the chosen test samples (of the first model's dataset)."""
    if not models:
        raise ArcticError("give at least one checkpoint to visualise")
    class_names = models[0].class_names
    for model in models[1:]:
        if model.class_names != class_names:
            raise ArcticError(f"{model.name} was trained on other classes than {models[0].name}")
    data = models[0].config.data
    if data_root is not None:
        data = replace(data, root=str(data_root))
    modalities = sorted({m.modality for m in models})
    samples = split_test_samples(data, modalities)
    unknown = [s for s in sample_ids if s not in samples]
    if unknown:
        raise ArcticError(
            f"{unknown[0]} is not a test sample of {data.root} ({data.protocol}); "
            f"e.g. {', '.join(sorted(samples)[:3])}"
        )
    chosen = list(sample_ids) or choose_samples(samples, num_samples)
    # each network reads the samples as its own run did: person crops or whole frames
    as_read = {data.person_crop: samples}
    for crop in {m.config.data.person_crop for m in models} - set(as_read):
        as_read[crop] = split_test_samples(replace(data, person_crop=crop), modalities)
    result = []
    for sample_id in chosen:
        label = samples[sample_id].label
        panels = []
        for model in models:
            clip = model_clip(model, as_read[model.config.data.person_crop][sample_id])
            maps, probs = activation_maps(model.model, clip, label)
            best = int(probs.argmax())
            frames = display_frames(clip)
            panels.append(Panel(model.name, frames, maps, class_names[best], float(probs[best])))
        result.append(SamplePanels(sample_id, class_names[label], panels))
    return result


def plot_activation_grid(
    samples: Sequence[SamplePanels], out_png: str | Path, frames_shown: int = 4, dpi: int = 110
) -> Path:
    """One block per sample: a row per network, `frames_shown` frames evenly spread over the clip."""
    rows = sum(len(s.panels) for s in samples)
    figure = Figure(figsize=(2.1 * frames_shown + 3.2, 2.2 * rows + 0.9 * len(samples)), layout="constrained")
    blocks = np.atleast_1d(figure.subfigures(len(samples), 1))
    for block, sample in zip(blocks, samples, strict=True):
        block.suptitle(f"{sample.sample_id} — true class: {sample.true_class}", fontsize=11, weight="bold")
        grid = block.subplots(len(sample.panels), frames_shown, squeeze=False)
        for row, panel in zip(grid, sample.panels, strict=True):
            shown = np.linspace(0, len(panel.frames) - 1, frames_shown).round().astype(int)
            for axes, t in zip(row, shown, strict=True):
                axes.imshow(overlay(panel.frames[t], panel.maps[t]), interpolation="bilinear")
                axes.set_xticks([])
                axes.set_yticks([])
                axes.set_title(f"frame {t + 1}/{len(panel.frames)}", fontsize=8)
            row[0].set_ylabel(
                f"{panel.name}\npredicts {panel.predicted} ({panel.probability:.0%})", fontsize=9
            )
        block.colorbar(
            ScalarMappable(Normalize(0, 1), COLORMAP), ax=grid, shrink=0.85, label="activation (per clip)"
        )
    figure.suptitle(
        "class activation maps of the true class, over each network's own input clip", fontsize=12
    )
    return save_figure(figure, out_png, dpi)


def write_activation_gif(samples: Sequence[SamplePanels], out_gif: str | Path, cell: int = 160) -> Path:
    """An animation over the clip's frames: a row per sample, a column per network, each cell labelled."""
    label_height = 28
    columns = max(len(s.panels) for s in samples)
    steps = max(len(p.frames) for s in samples for p in s.panels)
    images = []
    for step in range(steps):
        canvas = Image.new("RGB", (columns * cell, len(samples) * (cell + label_height)), "white")
        draw = ImageDraw.Draw(canvas)
        for r, sample in enumerate(samples):
            top = r * (cell + label_height)
            for c, panel in enumerate(sample.panels):
                t = min(step, len(panel.frames) - 1)
                pixels = (overlay(panel.frames[t], panel.maps[t]) * 255).round().astype(np.uint8)
                canvas.paste(Image.fromarray(pixels).resize((cell, cell), Image.BILINEAR), (c * cell, top))
                draw.text((c * cell + 3, top + cell + 2), panel.name.split(" (")[0], fill="black")
                draw.text(
                    (c * cell + 3, top + cell + 14),
                    f"{panel.predicted} {panel.probability:.0%}",
                    fill="black",
                )
        images.append(canvas)
    out_gif = Path(out_gif)
    out_gif.parent.mkdir(parents=True, exist_ok=True)
    images[0].save(out_gif, save_all=True, append_images=images[1:], duration=250, loop=0)
    return out_gif
