"""Paired RGB+IR clips for training and evaluation.

Both streams of a sample are sampled at the same relative moments (their frame counts may differ by a few
frames) and get one shared crop decision. A sample whose files are unusable comes back as a `BadSample`
instead of an exception, so the error policy (stop with a clear message, or skip and report) runs in the main
process and a user never sees a traceback from inside a DataLoader worker.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterator, Mapping, Sequence
from contextlib import ExitStack
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset

from arctic_kd.data.cache import DecodedVideo, FrameCache
from arctic_kd.data.frames import FrameFolder, open_frames
from arctic_kd.data.person import PixelBox, square_region
from arctic_kd.data.sampling import frame_indices, segment_times
from arctic_kd.data.transforms import (
    MODALITY_STATS,
    CropBox,
    apply_crop,
    centre_crop,
    jitter_colours,
    sample_crop,
    standardise,
    to_tensor,
    within,
)
from arctic_kd.data.video import VideoReader
from arctic_kd.errors import DataError

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
    "sample_id"} with only the requested modalities, or a `BadSample`.

    Training randomness is drawn from torch's generator (mixed with `seed`) because DataLoader seeds that one
    in each worker: clips are reproducible for a fixed torch seed, and workers don't repeat each other.
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
        times = segment_times(self.num_frames, rng)
        box = sample_crop(rng, self.crop_scale) if rng is not None else centre_crop(self.test_crop)
        clip: dict = {}
        with ExitStack() as stack:
            readers = {m: stack.enter_context(self._open(sample.path(m), m == "ir")) for m in self.modalities}
            if len(readers) == 2:
                _check_durations(readers["rgb"], readers["ir"], self.max_duration_mismatch)
            span = _relative_span(sample, readers, stack)
            for modality, reader in readers.items():
                start, end = _frame_range(span, reader.num_frames)
                indices = frame_indices(times, reader.num_frames, start, end)
                frames = reader.read(indices, gray=modality == "ir")
                cropped = apply_crop(
                    frames, self._region(sample, modality, reader, box), self.sizes[modality]
                )
                if modality == "rgb" and rng is not None:
                    cropped = jitter_colours(cropped, rng, self.colour_jitter)
                clip[modality] = to_tensor(cropped, *self.normalization[modality])
                if modality in self.standardised:
                    clip[modality] = standardise(clip[modality])
        return {**clip, "label": sample.label, "sample_id": sample.sample_id}

    def _region(self, sample: PairedSample, modality: str, reader, box: CropBox) -> CropBox:
        """The crop decision, taken inside the performer's square when the sample has person boxes."""
        if sample.person is None or self.person_margin is None:
            return box
        person = square_region(sample.person[modality], reader.width, reader.height, self.person_margin)
        return within(person, box)

    def _open(self, path: Path, gray: bool) -> VideoReader | FrameFolder | DecodedVideo:
        if self.frame_cache is not None:
            return self.frame_cache.open(path, gray)
        return open_frames(path, self.decode_threads)

    def _rng(self) -> np.random.Generator | None:
        """None at test time (deterministic clips); in training, drawn from torch's per-worker generator."""
        if not self.train:
            return None
        return np.random.default_rng([self.seed, int(torch.randint(2**62, ()).item())])


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
        for modality in MODALITIES:
            if modality in good[0]:
                batch[modality] = torch.stack([item[modality] for item in good])
        batch["label"] = torch.tensor([item["label"] for item in good], dtype=torch.long)
        batch["sample_id"] = [item["sample_id"] for item in good]
    return batch


@dataclass
class BadSampleReport:
    """The samples a run skipped, each listed once however many epochs met it."""

    samples: dict[str, BadSample] = field(default_factory=dict)

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


class ClipLoader:
    """A DataLoader over a `PairedClipDataset`: yields only batches with clips, applies the bad-data policy.

    With `skip_bad` False the first bad sample raises its `DataError` here, in the main process; with True
    bad samples are dropped and recorded in `report`. Shuffling and augmentation follow `seed` alone,
    whatever the number of workers, and leave the global torch generator untouched. Workers are stopped at
    the end of each pass by default: persistent ones are only stopped when the loader is garbage-collected,
    which stalls about 5 s per worker if the loader sits in a reference cycle (torch 2.x).
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
        persistent_workers: bool = False,
    ) -> None:
        self.skip_bad = skip_bad
        self.report = BadSampleReport()
        self._generator = torch.Generator().manual_seed(seed)
        self._loader = DataLoader(
            dataset,
            batch_size=batch_size,
            shuffle=shuffle,
            num_workers=num_workers,
            collate_fn=collate_clips,
            pin_memory=pin_memory,
            drop_last=drop_last,
            generator=self._generator,
            persistent_workers=persistent_workers,
        )

    def __len__(self) -> int:
        return len(self._loader)

    def __iter__(self) -> Iterator[dict]:
        batches = self._fetch_all()
        try:
            for batch in batches:
                for bad in batch.pop("bad"):
                    if not self.skip_bad:
                        raise bad.error()
                    self.report.add(bad)
                if "label" in batch:
                    yield batch
        finally:
            batches.close()  # stops workers now; a shutdown left to garbage collection can stall for seconds

    def _fetch_all(self) -> Iterator[dict]:
        """Batches in order; without workers, each is made under its own torch seed drawn from `seed`.

        (Workers get theirs from the DataLoader's generator; forking the RNG keeps the training loop's own
        random state independent of data loading.)
        """
        batches = iter(self._loader)
        if self._loader.num_workers > 0:
            yield from batches
            return
        base_seed = int(torch.randint(2**62, (), generator=self._generator).item())
        for number in itertools.count():
            with torch.random.fork_rng(devices=[]):
                torch.manual_seed(base_seed + number)
                batch = next(batches, None)
            if batch is None:
                return
            yield batch
