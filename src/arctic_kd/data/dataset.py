"""Paired RGB+IR clips for training and evaluation.

Both streams of a sample are sampled at the same relative moments (their frame counts may differ by a few
frames) and get one shared crop decision. A sample whose files are unusable comes back as a `BadSample`
instead of an exception, so the error policy (stop with a clear message, or skip and report) runs in the main
process and a user never sees a traceback from inside a DataLoader worker.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from contextlib import ExitStack
from pathlib import Path

import numpy as np
import torch
from torch.utils.data import Dataset

from arctic_kd.data.cache import DecodedVideo, FrameCache
from arctic_kd.data.clipfile import STORED_SUFFIX, StoredVideo
from arctic_kd.data.frames import FrameFolder, open_frames
from arctic_kd.data.person import square_region
from arctic_kd.data.registration import crop_to_normalised, fov_affine, grid_theta
from arctic_kd.data.samples import MODALITIES, BadSample, PairedSample
from arctic_kd.data.sampling import clip_offsets, frame_indices, segment_times
from arctic_kd.data.transforms import (
    MODALITY_STATS,
    CropBox,
    apply_crop,
    crop_pixels,
    jitter_colours,
    sample_crop,
    standardise,
    to_tensor,
    view_crops,
    within,
)
from arctic_kd.data.video import VideoReader
from arctic_kd.errors import DataError


class PairedClipDataset(Dataset):
    """Clips of `num_frames` TSN segments from paired videos: {"rgb": (3,T,H,W), "ir": (1,T,H,W), "label",
    "sample_id"} with only the requested modalities, or a `BadSample`. With both modalities, also
    "ir_from_rgb": the (2, 3) float map from the IR clip's normalised image coordinates to the RGB clip's
    (`registration.grid_theta`), with which ARC resamples teacher maps onto the student's crop.

    Training randomness is drawn from torch's generator (mixed with `seed`) because DataLoader seeds that one
    in each worker: clips are reproducible for a fixed torch seed, and workers don't repeat each other.

    Multi-view testing: with `test_clips` × `test_crops` > 1 (test mode only) each modality comes as
    (V, C, T, H, W), V = clips × crops, clip-major; clips sample the TSN segments at evenly spaced offsets
    (`sampling.clip_offsets`), crops lie along the region's longer side (`transforms.view_crops`), and view 0
    is always the single-clip test clip (segment centres, centre crop).
    """

    def __init__(
        self,
        samples: Sequence[PairedSample],
        num_frames: int = 8,
        train: bool = False,
        modalities: Sequence[str] = MODALITIES,
        rgb_size: tuple[int, int] = (112, 112),
        ir_size: tuple[int, int] = (112, 112),
        crop_scale: tuple[float, float] = (0.6, 1.0),
        test_crop: float = 1.0,
        test_clips: int = 1,
        test_crops: int = 1,
        max_duration_mismatch: float = 0.25,
        seed: int = 0,
        decode_threads: int = 1,
        normalization: Mapping[str, tuple[Sequence[float], Sequence[float]]] = MODALITY_STATS,
        frame_cache: FrameCache | None = None,
        person_margin: float | None = 0.15,
        colour_jitter: float = 0.0,
        standardised: Sequence[str] = (),
    ) -> None:
        if (
            not modalities
            or len(set(modalities)) != len(modalities)
            or not set(modalities) <= set(MODALITIES)
        ):
            raise ValueError(f"modalities must be distinct names from {MODALITIES}, got {tuple(modalities)}")
        self.samples = list(samples)
        self.num_frames = num_frames
        self.train = train
        self.modalities = tuple(modalities)
        self.sizes = {"rgb": rgb_size, "ir": ir_size}
        self.crop_scale = crop_scale
        self.test_crop = test_crop
        if train and test_clips * test_crops != 1:
            raise ValueError("multi-view clips (test_clips, test_crops) are for testing, not training")
        self.clip_offsets = clip_offsets(test_clips)
        self.test_crops = test_crops
        view_crops(test_crop, test_crops, 1, 1)  # reject a bad crop count now, not in a worker
        self.max_duration_mismatch = max_duration_mismatch
        self.seed = seed
        self.decode_threads = decode_threads
        self.normalization = normalization
        self.frame_cache = frame_cache
        self.person_margin = person_margin  # None: whole frames even where person boxes are known
        self.colour_jitter = colour_jitter  # training RGB clips only (see transforms.jitter_colours)
        self.standardised = tuple(standardised)  # modalities normalised per clip (see transforms.standardise)

    def __len__(self) -> int:
        return len(self.samples)

    def __getitem__(self, index: int) -> dict | BadSample:
        sample = self.samples[index]
        try:
            return self._load(sample)
        except DataError as error:
            return BadSample(sample.sample_id, error.path, error.problem)

    def _load(self, sample: PairedSample) -> dict:
        rng = self._rng()
        if rng is None:
            times = [segment_times(self.num_frames, None, offset) for offset in self.clip_offsets]
            train_box = None
        else:
            times = [segment_times(self.num_frames, rng)]
            train_box = sample_crop(rng, self.crop_scale)
        clip: dict = {}
        crops: dict[str, list[np.ndarray]] = {}  # per modality and view, for the RGB→IR warp
        with ExitStack() as stack:
            readers = {m: stack.enter_context(self._open(sample.path(m), m == "ir")) for m in self.modalities}
            if len(readers) == 2:
                _check_durations(readers["rgb"], readers["ir"], self.max_duration_mismatch)
            span = _relative_span(sample, readers, stack)
            for modality, reader in readers.items():
                start, end = _frame_range(span, reader.num_frames)
                indices = [frame_indices(t, reader.num_frames, start, end) for t in times]
                frames = reader.read(np.concatenate(indices), gray=modality == "ir")
                region = person_region(sample, modality, reader.width, reader.height, self.person_margin)
                boxes = [train_box] if train_box is not None else self._test_boxes(region, reader)
                views, crops[modality] = [], []
                for clip_frames in np.split(frames, len(times)):
                    for box in boxes:
                        placed = within(region, box)
                        views.append(self._view(clip_frames, modality, placed, rng))
                        pixels = crop_pixels(placed, reader.width, reader.height)
                        crops[modality].append(crop_to_normalised(pixels, placed.flip))
                clip[modality] = _one_or_stacked(views)
            if len(readers) == 2:
                warps = zip(crops["rgb"], crops["ir"], strict=True)
                clip["ir_from_rgb"] = _one_or_stacked(
                    [_ir_from_rgb(sample, readers, {"rgb": rgb, "ir": ir}) for rgb, ir in warps]
                )
        return {**clip, "label": sample.label, "sample_id": sample.sample_id}

    def _view(self, frames: np.ndarray, modality: str, box: CropBox, rng) -> torch.Tensor:
        cropped = apply_crop(frames, box, self.sizes[modality])
        if modality == "rgb" and rng is not None:
            cropped = jitter_colours(cropped, rng, self.colour_jitter)
        tensor = to_tensor(cropped, *self.normalization[modality])
        return standardise(tensor) if modality in self.standardised else tensor

    def _test_boxes(self, region: CropBox, reader) -> list[CropBox]:
        width = (region.x1 - region.x0) * reader.width
        height = (region.y1 - region.y0) * reader.height
        return view_crops(self.test_crop, self.test_crops, width, height)

    def _open(self, path: Path, gray: bool) -> VideoReader | FrameFolder | DecodedVideo | StoredVideo:
        if Path(path).suffix == STORED_SUFFIX:
            return StoredVideo(path)
        if self.frame_cache is not None:
            return self.frame_cache.open(path, gray)
        return open_frames(path, self.decode_threads)

    def _rng(self) -> np.random.Generator | None:
        """None at test time (deterministic clips); in training, drawn from torch's per-worker generator."""
        if not self.train:
            return None
        return np.random.default_rng([self.seed, int(torch.randint(2**62, ()).item())])


def person_region(
    sample: PairedSample, modality: str, width: int, height: int, margin: float | None
) -> CropBox:
    """The performer's square in a width × height frame of `modality`; the whole frame without person boxes
    or with `margin` None."""
    if sample.person is None or margin is None:
        return CropBox(0.0, 0.0, 1.0, 1.0)
    return square_region(sample.person[modality], width, height, margin)


def _ir_from_rgb(sample: PairedSample, readers: Mapping, crops: Mapping[str, np.ndarray]) -> torch.Tensor:
    """ARC's warp for this clip: the sample's registration (or the nominal Kinect one) between the crops."""
    if sample.registration is not None:
        affine = np.reshape(sample.registration, (2, 3))
    else:
        affine = fov_affine(*((readers[m].width, readers[m].height) for m in MODALITIES))
    return torch.from_numpy(grid_theta(affine, crops["rgb"], crops["ir"])).float()


def _one_or_stacked(views: list[torch.Tensor]) -> torch.Tensor:
    """A single view as it is; several stacked on a new first (view) dimension."""
    return views[0] if len(views) == 1 else torch.stack(views)


def _check_durations(rgb: VideoReader, ir: VideoReader, tolerance: float) -> None:
    """Catch mismatched pairs (wrong file, cut recording) that relative-time sampling would silently hide."""
    if abs(rgb.duration - ir.duration) / max(rgb.duration, ir.duration) > tolerance:
        raise DataError(
            rgb.path,
            f"RGB is {rgb.duration:.2f} s ({rgb.num_frames} frames) but IR is {ir.duration:.2f} s "
            f"({ir.num_frames} frames) in {ir.path}",
        )


def _relative_span(
    sample: PairedSample, readers: Mapping[str, VideoReader], stack: ExitStack
) -> tuple[float, float]:
    """The sample's frame range as fractions of the recording, measured on the stream its frames count."""
    if sample.start == 0 and sample.end is None:
        return 0.0, 1.0
    if "rgb" in readers:
        reference = readers["rgb"]
    elif sample.rgb is not None:
        reference = stack.enter_context(open_frames(sample.rgb))
    else:
        reference = readers["ir"]
    total = reference.num_frames
    end = total if sample.end is None else min(sample.end, total)
    if not 0 <= sample.start < end:
        raise DataError(
            reference.path, f"frame range [{sample.start}, {sample.end}) is outside its {total} frames"
        )
    return sample.start / total, end / total


def _frame_range(span: tuple[float, float], num_frames: int) -> tuple[int, int]:
    """A relative span in frames of one stream, at least one frame long."""
    start = min(round(span[0] * num_frames), num_frames - 1)
    return start, max(start + 1, min(round(span[1] * num_frames), num_frames))
