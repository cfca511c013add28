"""Paired RGB+IR clips for training and evaluation.

Both streams of a sample are sampled at the same relative moments (their frame counts may differ by a few
frames) and get one shared crop decision. A sample whose files are unusable comes back as a `BadSample`
instead of an exception, so the error policy (stop with a clear message, or skip and report) runs in the main
process and a user never sees a traceback from inside a DataLoader worker.
"""

from __future__ import annotations

import functools
import itertools
import math
from collections.abc import Iterator, Mapping, Sequence
from contextlib import ExitStack
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset, Sampler

from arctic_kd.data.cache import DecodedVideo, FrameCache
from arctic_kd.data.clipfile import STORED_SUFFIX, StoredVideo
from arctic_kd.data.frames import FrameFolder, open_frames
from arctic_kd.data.person import PixelBox, Registration, square_region
from arctic_kd.data.registration import crop_to_normalised, fov_affine, grid_theta
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
from arctic_kd.data.workers import next_from_workers, worker_context
from arctic_kd.errors import ArcticError, DataError, shortlist

MODALITIES = ("rgb", "ir")


@dataclass(frozen=True)
class PairedSample:
    """What any dataset reader (NTU, PKU-MMD, a CSV manifest) hands to the dataset.

    `start`/`end` trim a clip out of a long video; they count frames of the RGB stream (of the IR stream when
    no RGB file is listed) and carry over to the other stream by relative time.
    """

    sample_id: str
    label: int
    rgb: Path | None
    ir: Path | None
    start: int = 0
    end: int | None = None
    person: Mapping[str, PixelBox] | None = None  # per modality, the performer's box in that stream's pixels
    registration: Registration | None = None  # RGB pixel → IR pixel affine (person.py); None: Kinect FOVs
    registration_source: str = ""  # fitted, setup+camera, camera, nominal (registration.py); "": unrecorded

    def path(self, modality: str) -> Path:
        path = self.rgb if modality == "rgb" else self.ir
        if path is None:
            raise DataError(self.sample_id, f"sample has no {modality.upper()} video")
        return path


@dataclass(frozen=True)
class BadSample:
    """A sample whose data is unusable: returned instead of raised, so the policy runs in the main process."""

    sample_id: str
    path: str
    problem: str

    def error(self) -> DataError:
        return DataError(self.path, self.problem)


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


def collate_clips(items: Sequence[dict | BadSample]) -> dict:
    """Stack the good clips; bad samples travel in batch["bad"] (a batch may hold nothing else)."""
    good = [item for item in items if not isinstance(item, BadSample)]
    batch: dict = {"bad": [item for item in items if isinstance(item, BadSample)]}
    if good:
        for key in (*MODALITIES, "ir_from_rgb"):
            if key in good[0]:
                batch[key] = torch.stack([item[key] for item in good])
        batch["label"] = torch.tensor([item["label"] for item in good], dtype=torch.long)
        batch["sample_id"] = [item["sample_id"] for item in good]
    return batch


@dataclass
class BadSampleReport:
    """The samples a run skipped, each listed once however many epochs met it; and, filled in by
    `loaders.make_loaders`, those its protocol left out (a modality missing) and those read as whole frames
    because their skeleton gives no person box (sample id -> why), so a run can say what it did not use."""

    samples: dict[str, BadSample] = field(default_factory=dict)
    left_out: dict[str, str] = field(default_factory=dict)
    whole_frames: dict[str, str] = field(default_factory=dict)

    def add(self, bad: BadSample) -> None:
        self.samples.setdefault(bad.sample_id, bad)

    def __len__(self) -> int:
        return len(self.samples)

    def summary(self) -> str:
        """Text for the end of a run: how many were skipped, and why each one."""
        if not self.samples:
            return "no bad samples"
        lines = [f"skipped {len(self.samples)} bad sample(s):"]
        lines += [f"  {bad.sample_id}: {bad.path}: {bad.problem}" for bad in self.samples.values()]
        return "\n".join(lines)


def check_batch_split(batch_size: int, world_size: int) -> None:
    """The global batch must split evenly between the processes of a launch."""
    if batch_size % world_size:
        raise ArcticError(
            f"data.batch_size: the global batch of {batch_size} does not split evenly between "
            f"{world_size} processes"
        )


class ClipLoader:
    """A DataLoader over a `PairedClipDataset`: yields only batches with clips, applies the bad-data policy.

    With `skip_bad` False the first bad sample raises its `DataError` here, in the main process; with True
    bad samples are dropped and recorded in `report`. The order of pass e and every clip's augmentation are
    drawn from (`seed`, e) alone: they do not depend on the number of workers or processes, and leave the
    global torch generator untouched. `shard` splits each pass between the processes of a distributed run;
    `state_dict` is the position in the stream of passes, so a resumed run reads exactly the batches it
    would have read.

    Workers come from `workers.worker_context` (never a fork of a process that may have decoded video), start
    once and serve every whole pass; a pass cut short (an error, or a loop left early) stops them, as does
    `close`, and the next pass starts new ones. A worker that sends nothing for `worker_timeout` seconds
    (0: wait forever), or dies, stops the pass with a `DataError` naming the batch it was reading.
    """

    def __init__(
        self,
        dataset: PairedClipDataset,
        batch_size: int,
        shuffle: bool = False,
        num_workers: int = 0,
        skip_bad: bool = False,
        pin_memory: bool = False,
        drop_last: bool = False,
        seed: int = 0,
        worker_timeout: float = 300.0,
    ) -> None:
        self.skip_bad = skip_bad
        self.report = BadSampleReport()
        self.batch_size = batch_size  # global: split evenly between the processes of a distributed run
        self.worker_timeout = worker_timeout
        self._sampler = _PassOrder(len(dataset), batch_size, shuffle, drop_last, seed)
        self._dataset = _SeededItems(dataset)
        self._options = {
            "num_workers": num_workers,
            "collate_fn": collate_clips,
            "pin_memory": pin_memory,
            # only seeds the workers' base seed (each clip is seeded on its own); spares the global generator
            "generator": torch.Generator().manual_seed(seed),
        }
        if num_workers:
            self._options |= {
                "multiprocessing_context": worker_context(),
                "persistent_workers": True,
                "timeout": worker_timeout,
            }
        self._loader = self._build()
        self._position = (0, 0)  # (pass, batches of it already read)

    @property
    def dataset(self) -> PairedClipDataset:
        return self._dataset.dataset

    def shard(self, rank: int, world_size: int, equal_steps: bool) -> ClipLoader:
        """Read only process `rank`'s share of each pass: batch k of every process together make batch k of
        a single process. `equal_steps` (training) pads the share so every process takes as many steps as
        the others; without it (evaluation) each sample is read by exactly one process, none twice."""
        check_batch_split(self.batch_size, world_size)
        self._sampler.rank, self._sampler.world_size = rank, world_size
        self._sampler.equal_steps = equal_steps
        self._loader = self._build()
        return self

    def _build(self) -> DataLoader:
        return DataLoader(
            self._dataset,
            batch_size=self.batch_size // self._sampler.world_size,
            sampler=self._sampler,
            **self._options,
        )

    def state_dict(self) -> dict[str, int]:
        """Where the next pass starts: {"epoch": pass number, "batch": batches of it already read}."""
        return {"epoch": self._position[0], "batch": self._position[1]}

    def load_state_dict(self, state: dict[str, int]) -> None:
        self._position = (int(state["epoch"]), int(state["batch"]))

    def __len__(self) -> int:
        """Batches in a whole pass (of this process's share)."""
        return math.ceil(self._sampler.share_size() / self._loader.batch_size)

    def __iter__(self) -> Iterator[dict]:
        """Continue the current pass from the recorded position (a new pass after a finished one)."""
        epoch, start = self._position
        self._sampler.epoch, self._sampler.start = epoch, start * self._loader.batch_size
        batches = iter(self._loader)
        try:
            for number in itertools.count(start + 1):
                batch = next_from_workers(batches, functools.partial(self._worker_error, number))
                if batch is None:
                    break
                self._position = (epoch, number)
                for bad in batch.pop("bad"):
                    if not self.skip_bad:
                        raise bad.error()
                    self.report.add(bad)
                if "label" in batch:
                    yield batch
        except BaseException:  # an error, or a loop left early: stop the workers now, not at garbage
            del batches  # collection, which can find their queues closed and wait 5 s for each of them
            self.close()
            raise
        self._position = (epoch + 1, 0)

    def close(self) -> None:
        """Stop the workers now rather than at garbage collection; reading again starts new ones."""
        self._loader = self._build()

    def _worker_error(self, number: int, cause: str) -> DataError:
        """What a stuck or dead worker means for batch `number` of the pass, in torch's `cause` words."""
        samples = [
            self.dataset.samples[i] for i in self._sampler.batch_indices(number, self._loader.batch_size)
        ]
        shown = shortlist([s.sample_id for s in samples], 4)
        if "timed out" in cause:
            what = f"sent nothing for {self.worker_timeout:g} s (data.worker_timeout) while reading"
        else:  # it may have died on a later batch of its own: this is the first one that never came
            what = "died (killed, out of memory or crashed in native code) before sending"
        first = samples[0].path(self.dataset.modalities[0]) if samples else "data"
        return DataError(first, f"a loader worker {what} batch {number} (samples {shown})")


class _PassOrder(Sampler):
    """(dataset index, clip seed) pairs of one process's share of pass `epoch`, from position `start` on.

    Each clip's seed belongs to its place in the pass, not to the process that reads it, so augmentation is
    the same with any number of processes and workers.
    """

    def __init__(self, size: int, batch_size: int, shuffle: bool, drop_last: bool, seed: int) -> None:
        self.size, self.batch_size, self.seed = size, batch_size, seed
        self.shuffle, self.drop_last = shuffle, drop_last
        self.rank, self.world_size, self.equal_steps = 0, 1, False
        self.epoch, self.start = 0, 0

    def _pass(self) -> list[tuple[int, int]]:
        rng = np.random.default_rng([self.seed, self.epoch])
        order = rng.permutation(self.size) if self.shuffle else np.arange(self.size)
        seeds = rng.integers(2**62, size=self.size)
        items = [(int(i), int(s)) for i, s in zip(order, seeds, strict=True)]
        if self.drop_last:
            return items[: len(items) // self.batch_size * self.batch_size]
        if self.equal_steps and items:  # repeat the first clips, as DistributedSampler does
            return list(itertools.islice(itertools.cycle(items), self.share_size() * self.world_size))
        return items

    def share_size(self) -> int:
        whole = self.size // self.batch_size * self.batch_size if self.drop_last else self.size
        if self.equal_steps or self.drop_last:
            return math.ceil(whole / self.world_size)
        return len(range(self.rank, whole, self.world_size))

    def __len__(self) -> int:
        return max(0, self.share_size() - self.start)

    def __iter__(self) -> Iterator[tuple[int, int]]:
        return iter(self._share()[self.start :])

    def batch_indices(self, number: int, batch_size: int) -> list[int]:
        """Dataset indices of batch `number` (counted from 1) of this process's share of the pass."""
        return [index for index, _ in self._share()[(number - 1) * batch_size : number * batch_size]]

    def _share(self) -> list[tuple[int, int]]:
        return self._pass()[self.rank :: self.world_size]


class _SeededItems(Dataset):
    """The dataset read with (index, seed) keys: each clip is made under its own torch seed, in a forked
    generator, so the global random state of the process (or worker) is never touched."""

    def __init__(self, dataset: PairedClipDataset) -> None:
        self.dataset = dataset

    def __len__(self) -> int:
        return len(self.dataset)

    def __getitem__(self, item: tuple[int, int]) -> dict | BadSample:
        index, seed = item
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            return self.dataset[index]
