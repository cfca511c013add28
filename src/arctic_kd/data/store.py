"""The clip store: every sample decoded once, cropped to the performer, shrunk, and kept as JPEG frames.

Decoding 1080p RGB every epoch starves training; `arctic prepare` pays it once. Per sample it decodes both
streams (frame by frame: a 300-frame 1080p video never sits in memory), crops each to the sample's
person region (the registration-consistent boxes of `person.py`, exactly as the raw-video path crops
them), shrinks it to short side `side`, and writes one clip file per stream (`clipfile.py`) plus a
`.done` marker holding the sample's RGB→IR registration in stored pixels. Files are written beside
their target and renamed into place, and the marker comes last, so a run killed at any moment leaves
only finished samples (and stray partial files, removed by the next run), and a rerun skips them.
Training then reads the store through the same `PairedClipDataset`, as whole frames: clips equal the
raw-video ones up to the extra resize and JPEG (see the tests for the tolerance).

Layout of STORE: `store.json` (settings; a rerun with other settings is refused), `samples/KEY.rgb.clip`,
`samples/KEY.ir.clip`, `samples/KEY.done`, and after a run `index.json` (what training reads) and
`report.json` (every bad sample and why).
"""

from __future__ import annotations

import hashlib
import json
import os
import re
from collections.abc import Sequence
from contextlib import ExitStack
from dataclasses import asdict, dataclass, field
from pathlib import Path

import cv2
import numpy as np

from arctic_kd.config import DataConfig
from arctic_kd.data.clipfile import STORED_SUFFIX, write_clip_file
from arctic_kd.data.dataset import _check_durations, _frame_range, _relative_span, person_region
from arctic_kd.data.frames import open_frames
from arctic_kd.data.registration import crop_to_pixels, fov_affine, homogeneous
from arctic_kd.data.samples import MODALITIES, BadSample, PairedSample
from arctic_kd.data.transforms import apply_crop, crop_pixels
from arctic_kd.data.workers import map_in_workers
from arctic_kd.errors import DataError
from arctic_kd.progress import progress_bar

STORE_VERSION = 1
SETTINGS_FILE, INDEX_FILE, REPORT_FILE, SAMPLES_DIR = "store.json", "index.json", "report.json", "samples"
_SAFE_KEY = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,100}")


@dataclass(frozen=True)
class StoreSettings:
    """What a store's clips depend on; a store holds clips made with one set of them."""

    side: int = 128  # short side of the stored crops, pixels (never enlarged)
    quality: int = 90  # JPEG quality of the stored frames
    person_margin: float | None = 0.15  # person crop margin; None: whole frames
    max_duration_mismatch: float = 0.25  # RGB/IR pairs whose durations differ more are bad samples

    def __post_init__(self) -> None:
        if self.side < 8 or not 1 <= self.quality <= 100:
            raise ValueError(
                f"store side must be ≥ 8 and JPEG quality 1–100, got {self.side}, {self.quality}"
            )


def store_margin(config: DataConfig) -> float | None:
    """The person crop margin of the clips that `config` trains on (None: whole frames): what a store made
    for it must hold."""
    return config.person_margin if config.person_crop else None


@dataclass
class PrepareReport:
    """One `prepare` run: how many samples it wrote, found done, and which ones are bad and why."""

    store: Path
    prepared: int = 0
    already_done: int = 0
    bad: list[BadSample] = field(default_factory=list)

    def lines(self) -> list[str]:
        lines = [
            f"{self.store}: {self.prepared + self.already_done} samples stored "
            f"({self.prepared} prepared now, {self.already_done} already done), {len(self.bad)} bad"
        ]
        lines += [f"  bad {b.sample_id}: {b.path}: {b.problem}" for b in self.bad]
        return lines


def sample_key(sample_id: str) -> str:
    """A file name for a sample id: itself when harmless, else a cleaned form with a hash (no clashes)."""
    if _SAFE_KEY.fullmatch(sample_id):
        return sample_id
    digest = hashlib.sha1(sample_id.encode()).hexdigest()[:10]
    return f"{re.sub(r'[^A-Za-z0-9_.-]', '_', sample_id)[:80]}-{digest}"


def prepare_store(
    samples: Sequence[PairedSample],
    store: str | Path,
    settings: StoreSettings = StoreSettings(),
    workers: int = 0,
    decode_threads: int = 1,
    progress: bool = True,
) -> PrepareReport:
    """Store every sample not stored yet (in `workers` processes); then write the index and the report."""
    store = Path(store)
    folder = store / SAMPLES_DIR
    folder.mkdir(parents=True, exist_ok=True)
    _claim(store, settings)
    for partial in [*folder.glob(".*.partial"), *store.glob(".*.partial")]:  # left by a killed run
        partial.unlink()
    unique = list({s.sample_id: s for s in samples}.values())
    todo = [s for s in unique if not (folder / f"{sample_key(s.sample_id)}.done").is_file()]
    report = PrepareReport(store, already_done=len(unique) - len(todo))
    jobs = [(s, folder, settings, decode_threads) for s in todo]
    bar = progress_bar(total=len(todo), desc="prepare", unit="sample", enabled=progress)
    with bar:
        for bad in map_in_workers(_prepare_job, jobs, workers):
            if bad is None:
                report.prepared += 1
            else:
                report.bad.append(bad)
            bar.update(1)
    report.bad.sort(key=lambda b: b.sample_id)
    _write_json(store / INDEX_FILE, _index(folder))
    _write_json(
        store / REPORT_FILE,
        {"samples": len(unique), "bad": [asdict(b) for b in report.bad]},
    )
    return report


def _claim(store: Path, settings: StoreSettings) -> None:
    """Write the settings, or check that an existing store was made with the same ones."""
    wanted = {"version": STORE_VERSION, **asdict(settings)}
    path = store / SETTINGS_FILE
    if path.is_file():
        found = json.loads(path.read_text())
        if found != wanted:
            differ = ", ".join(f"{k} {found.get(k)} → {v}" for k, v in wanted.items() if found.get(k) != v)
            raise DataError(
                store, f"holds a clip store prepared with other settings ({differ}); use another folder"
            )
        return
    _write_json(path, wanted)


def _prepare_job(job: tuple) -> BadSample | None:
    sample = job[0]
    cv2.setNumThreads(1)  # one process per core already
    try:
        prepare_sample(*job)
    except DataError as error:
        return BadSample(sample.sample_id, error.path, error.problem)
    return None


def prepare_sample(
    sample: PairedSample, folder: Path, settings: StoreSettings, decode_threads: int = 1
) -> None:
    """Decode, crop, shrink and store both streams of one sample, then mark it done."""
    key = sample_key(sample.sample_id)
    frames, to_stored, sizes = {}, {}, {}
    with ExitStack() as stack:
        readers = {m: stack.enter_context(open_frames(sample.path(m), decode_threads)) for m in MODALITIES}
        _check_durations(readers["rgb"], readers["ir"], settings.max_duration_mismatch)
        span = _relative_span(sample, readers, stack)
        for modality, reader in readers.items():
            sizes[modality] = (reader.width, reader.height)
            region = person_region(sample, modality, reader.width, reader.height, settings.person_margin)
            pixels = crop_pixels(region, reader.width, reader.height)
            width, height = stored_size(pixels, settings.side)
            start, stop = _frame_range(span, reader.num_frames)
            shrunk = (
                apply_crop(frame[None], region, (height, width))[0]
                for frame in reader.frames(start, stop, gray=modality == "ir")
            )
            path = folder / f"{key}.{modality}{STORED_SUFFIX}"
            frames[modality] = write_clip_file(path, shrunk, reader.fps, settings.quality)
            to_stored[modality] = crop_to_pixels(pixels, (width, height))
    affine = np.reshape(sample.registration, (2, 3)) if sample.registration else fov_affine(*sizes.values())
    stored = (to_stored["ir"] @ homogeneous(affine) @ np.linalg.inv(to_stored["rgb"]))[:2]
    marker = {
        "sample_id": sample.sample_id,
        "label": sample.label,
        "frames": frames,
        "registration": [round(float(v), 9) for v in stored.ravel()],
    }
    _write_json(folder / f"{key}.done", marker)


def stored_size(region: Sequence[int], side: int) -> tuple[int, int]:
    """(width, height) of a crop [x0, x1) × [y0, y1) shrunk to short side `side`; never enlarged."""
    x0, y0, x1, y1 = region
    width, height = x1 - x0, y1 - y0
    scale = side / min(width, height)
    if scale >= 1:
        return width, height
    return max(1, round(width * scale)), max(1, round(height * scale))


def _index(folder: Path) -> dict:
    entries = (json.loads(p.read_text()) for p in sorted(folder.glob("*.done")))
    return {e["sample_id"]: e for e in sorted(entries, key=lambda e: e["sample_id"])}


def _write_json(path: Path, data) -> None:
    partial = path.with_name(f".{path.name}.partial")
    partial.write_text(json.dumps(data, indent=1, sort_keys=True) + "\n")
    os.replace(partial, path)


class ClipStore:
    """A finished store, as training reads it: the stored twin of each raw sample."""

    def __init__(self, store: str | Path) -> None:
        self.path = Path(store)
        try:
            self.settings = json.loads((self.path / SETTINGS_FILE).read_text())
            self._index = json.loads((self.path / INDEX_FILE).read_text())
        except FileNotFoundError:
            raise DataError(
                self.path, "not a finished clip store (run `arctic prepare ROOT --out STORE` to the end)"
            ) from None

    def check_margin(self, margin: float | None) -> None:
        """Stored clips are already person-cropped: refuse a config that asks for other crops."""
        if self.settings["person_margin"] != margin:
            stored = self.settings["person_margin"]
            raise DataError(
                self.path,
                f"clips were prepared with person margin {stored} but the config asks for {margin} "
                "(data.person_crop / data.person_margin); prepare another store or change the config",
            )

    def sample(self, raw: PairedSample) -> PairedSample:
        """The stored version of `raw` (whole stored frames, registration in stored pixels). A sample the
        store lacks still gets paths, which report it as missing when read (the bad-sample policy applies)."""
        key = sample_key(raw.sample_id)
        folder = self.path / SAMPLES_DIR
        entry = self._index.get(raw.sample_id)
        return PairedSample(
            raw.sample_id,
            raw.label,
            folder / f"{key}.rgb{STORED_SUFFIX}",
            folder / f"{key}.ir{STORED_SUFFIX}",
            registration=None if entry is None else tuple(entry["registration"]),
            subject=raw.subject,
        )
