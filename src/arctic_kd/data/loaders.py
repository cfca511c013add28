"""From a `DataConfig` to the train and test loaders of one protocol: the one door training comes in by."""

from __future__ import annotations

import dataclasses
import sys
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import NamedTuple

import torch

from arctic_kd.config import DataConfig
from arctic_kd.data import manifest, pkummd, protocols
from arctic_kd.data.cache import FrameCache
from arctic_kd.data.cliploader import ClipLoader
from arctic_kd.data.dataset import PairedClipDataset
from arctic_kd.data.duplicates import find_duplicates
from arctic_kd.data.manifest import read_manifest
from arctic_kd.data.ntu import NtuSample, index_ntu
from arctic_kd.data.person import PersonTrack, carried_boxes, person_track
from arctic_kd.data.pkummd import index_pkummd
from arctic_kd.data.protocols import split
from arctic_kd.data.registration import FITTED, fallback_registrations
from arctic_kd.data.samples import PairedSample
from arctic_kd.data.store import ClipStore, store_margin
from arctic_kd.data.validation import carve_validation
from arctic_kd.errors import ConfigError, DataError, shortlist
from arctic_kd.progress import progress_bar

DATASET_PROTOCOLS = {
    "ntu": tuple(protocols.PROTOCOLS),
    "pkummd": tuple(pkummd.PROTOCOLS),
    "manifest": tuple(manifest.PROTOCOLS),
}


NO_BODY = "its skeleton file tracks no body (0 bodies, or no frame with finite joints)"


@dataclass
class SplitSamples:
    train: list[PairedSample]
    test: list[PairedSample]
    class_names: list[str]
    left_out: dict[str, str] = field(default_factory=dict)  # id -> why (a needed modality is missing)
    whole_frames: dict[str, str] = field(default_factory=dict)  # id -> why no person crop (skeleton)
    val: list[PairedSample] = field(default_factory=list)  # carved out of train by `make_loaders` (data.val)


class Loaders(NamedTuple):
    """What a run reads: training clips, validation clips (None when `data.val` is off) and test clips."""

    train: ClipLoader
    val: ClipLoader | None
    test: ClipLoader
    class_names: list[str]


def paired_samples(
    samples: Sequence[NtuSample], person_crop: bool = False, progress: bool = False
) -> list[PairedSample]:
    """Dataset entries for NTU samples; with `person_crop`, person boxes and RGB→IR registration from each
    sample's skeleton file (a sample whose skeleton gives no map borrows one: `fallback_registrations`).

    A sample without a skeleton file, or whose file tracks nobody, is used whole; a malformed skeleton
    file is an error naming it (the user asked for person crops).
    """
    tracks = [
        person_track(s.skeleton) if person_crop and s.skeleton is not None else PersonTrack(None, None)
        for s in progress_bar(samples, desc="person boxes", unit="skeleton", enabled=progress and person_crop)
    ]
    maps = fallback_registrations(
        [(s.name.setup, s.name.camera) for s in samples], [t.registration for t in tracks]
    )
    return [
        PairedSample(
            str(s.name),
            s.name.label,
            s.rgb,
            s.ir,
            person=track.boxes if source == FITTED else carried_boxes(track.boxes, affine),
            registration=None if affine is None else tuple(float(v) for v in affine.ravel()),
            registration_source=source,
            subject=f"P{s.name.performer:03d}",
        )
        for s, track, (affine, source) in zip(samples, tracks, maps, strict=True)
    ]


def protocol_samples(config: DataConfig, modalities: Sequence[str], progress: bool = False) -> SplitSamples:
    """The protocol's train and test samples among those that have every needed modality."""
    if config.protocol not in DATASET_PROTOCOLS[config.dataset]:
        known = ", ".join(DATASET_PROTOCOLS[config.dataset])
        raise DataError(
            "data.protocol", f"{config.protocol!r} is not a {config.dataset} protocol; use {known}"
        )
    if config.dataset == "pkummd":
        index = index_pkummd(config.root, config.pkummd, config.class_names)
        samples = SplitSamples(*index.split(config.protocol, modalities), index.class_names)
        in_split = {name for names in index.splits.get(config.protocol, ()) for name in names}
        samples.left_out = _lacking({k: v for k, v in index.missing(modalities).items() if k in in_split})
        where = config.root
        if progress:
            _tell_about(index)
    elif config.dataset == "manifest":
        listing = read_manifest(_manifest_path(config), config.class_names)
        train, test = listing.split(config.protocol, modalities, config.train_subjects)
        samples, where = SplitSamples(train, test, listing.class_names), config.manifest
        samples.left_out = _lacking(listing.missing(modalities))
    else:
        samples, where = _ntu_samples(config, modalities, progress), config.root
    if progress and config.dataset != "ntu":  # NTU's index is keyed by sample name: no duplicates
        for problem in find_duplicates(samples.train, samples.test):
            print(f"arctic: warning: {where}: {problem}", file=sys.stderr)
    if not samples.train or not samples.test:
        raise DataError(
            where,
            f"protocol {config.protocol} leaves {len(samples.train)} training and {len(samples.test)} "
            f"test samples with {' and '.join(modalities)} videos",
        )
    return samples


def _tell_about(index: pkummd.PkuIndex) -> None:
    """Say which PKU-MMD layout was found and how many label rows were left out (never silently)."""
    lines = list(index.notes)
    if index.row_problems():
        lines.append(f"{index.row_summary()}; `arctic check` lists them")
    for line in lines:
        print(f"arctic: note: {line}", file=sys.stderr)


def _manifest_path(config: DataConfig) -> str:
    if not config.manifest:
        raise DataError("data.manifest", "dataset manifest needs the CSV file: --set data.manifest=FILE.csv")
    return config.manifest


def _ntu_samples(config: DataConfig, modalities: Sequence[str], progress: bool) -> SplitSamples:
    index = index_ntu(config.root)
    by_name = {s.name: s for s in index.complete(tuple(modalities))}
    train, test = split(by_name, config.protocol, config.drop_missing_skeletons)

    def entries(names):
        return paired_samples([by_name[n] for n in names], config.person_crop, progress)

    missing = index.missing(tuple(modalities))
    gaps = [s.name for s in index.samples if str(s.name) in missing]
    covered = {str(n) for names in split(gaps, config.protocol, config.drop_missing_skeletons) for n in names}
    samples = SplitSamples(entries(train), entries(test), index.class_names)
    samples.left_out = _lacking({name: missing[name] for name in covered})
    if config.person_crop:
        skeletonless = {str(n) for n, s in by_name.items() if s.skeleton is None}
        samples.whole_frames = {
            s.sample_id: "no skeleton file" if s.sample_id in skeletonless else NO_BODY
            for s in samples.train + samples.test
            if s.person is None
        }
    return samples


def _lacking(missing: dict[str, list[str]]) -> dict[str, str]:
    """Sample (or recording) id -> why it is left out, from a `missing` listing."""
    return {
        name: f"no {' or '.join(m.upper() for m in lacking)} video"
        for name, lacking in sorted(missing.items())
    }


def stored_samples(config: DataConfig, modalities: Sequence[str], progress: bool = False) -> SplitSamples:
    """The protocol's samples as stored in `config.store`: the dataset index still gives the split and the
    class names (file names only, no video or skeleton is read), the store gives the clips."""
    store = ClipStore(config.store)
    store.check_margin(store_margin(config))
    raw = protocol_samples(dataclasses.replace(config, person_crop=False), modalities, progress)
    return SplitSamples(
        [store.sample(s) for s in raw.train],
        [store.sample(s) for s in raw.test],
        raw.class_names,
        raw.left_out,
    )


def make_loaders(
    config: DataConfig,
    modalities: Sequence[str],
    seed: int,
    frame_cache: FrameCache | None = None,
    progress: bool = True,
) -> Loaders:
    """Shuffled, augmented training clips and deterministic validation and test clips of the protocol; the
    validation clips come out of the training split (`data.val`: `data.validation`), never the test split.

    With `config.store` clips come from a store made by `arctic prepare` (`data.cache` is then unused).
    With `config.cache` every video is decoded once, in `config.workers` processes, into `frame_cache`
    (pass the same cache to several stages to decode only once); clips are then cut in the main process.
    """
    samples = split_samples(config, modalities, progress)
    if config.val.enabled:
        samples.train, samples.val = carve_validation(samples.train, config)
    frame_cache, workers = _prepare_cache(
        config, samples.train + samples.val + samples.test, modalities, frame_cache, progress
    )
    common = _clip_options(config, modalities, frame_cache)
    train_set = PairedClipDataset(
        samples.train,
        train=True,
        crop_scale=config.crop_scale,
        colour_jitter=config.colour_jitter,
        seed=seed,
        **common,
    )
    test_set = test_dataset(config, samples.test, modalities, frame_cache)
    loader = _loader_options(config, workers)
    drop_last = len(train_set) >= config.batch_size  # a batch of one would break BatchNorm
    train = ClipLoader(train_set, config.batch_size, shuffle=True, drop_last=drop_last, seed=seed, **loader)
    test = ClipLoader(test_set, config.batch_size, **loader)
    val = None
    if samples.val:
        val_set = test_dataset(config, samples.val, modalities, frame_cache)
        val = ClipLoader(val_set, config.batch_size, **loader)
    train.report.left_out, train.report.whole_frames = samples.left_out, samples.whole_frames
    if progress:
        _tell_unused(samples)
    return Loaders(train, val, test, samples.class_names)


def _tell_unused(samples: SplitSamples) -> None:
    """Say which samples the run cannot use as intended (never silently): it is also in metrics.jsonl and
    in the summary at the end of the run."""
    for what, listing in (
        ("left out: a video they need is missing", samples.left_out),
        ("read as whole frames, not person crops: no usable skeleton", samples.whole_frames),
    ):
        if listing:
            shown = shortlist([f"{k} ({v})" for k, v in listing.items()], 3, "; ")
            print(f"arctic: note: {len(listing)} sample(s) {what}: {shown}", file=sys.stderr)


def make_view_loader(
    config: DataConfig,
    modalities: Sequence[str],
    frame_cache: FrameCache | None = None,
    progress: bool = True,
) -> tuple[ClipLoader, list[str]]:
    """The test split with `config.test_clips` × `config.test_crops` views of every sample, view 0 being the
    single-clip test clip of `make_loaders` (see `engine.evaluate.evaluate_views`)."""
    samples = split_samples(config, modalities, progress)
    frame_cache, workers = _prepare_cache(config, samples.test, modalities, frame_cache, progress)
    try:
        test_set = PairedClipDataset(
            samples.test,
            train=False,
            test_clips=config.test_clips,
            test_crops=config.test_crops,
            **_clip_options(config, modalities, frame_cache),
        )
    except ValueError as error:
        raise ConfigError(f"data: {error}") from None
    return ClipLoader(test_set, config.batch_size, **_loader_options(config, workers)), samples.class_names


def test_dataset(
    config: DataConfig,
    samples: Sequence[PairedSample],
    modalities: Sequence[str],
    frame_cache: FrameCache | None = None,
) -> PairedClipDataset:
    """The deterministic single-clip test clips of `samples` as `make_loaders` cuts them, so whatever shows
    a network a clip outside training (`use.viz.activations`) shows it what its evaluation saw."""
    return PairedClipDataset(samples, train=False, **_clip_options(config, modalities, frame_cache))


def frame_cache_for(config: DataConfig) -> FrameCache | None:
    """The in-memory cache `config` asks for, to share between the loaders (and stages) of one run."""
    return FrameCache(config.cache_side) if config.cache and not config.store else None


def split_samples(config: DataConfig, modalities: Sequence[str], progress: bool) -> SplitSamples:
    """The protocol's samples as training and evaluation read them, whatever the dataset kind: from the
    clip store when `config.store` is set, else from the dataset (NTU layout, PKU-MMD or a manifest)."""
    if config.store:
        return stored_samples(config, modalities, progress)
    return protocol_samples(config, modalities, progress)


def _prepare_cache(
    config: DataConfig,
    samples: Sequence[PairedSample],
    modalities: Sequence[str],
    frame_cache: FrameCache | None,
    progress: bool,
) -> tuple[FrameCache | None, int]:
    """With `config.cache` (and no store), decode the samples' videos into the cache up front; the
    DataLoader workers to use after that (none: clips are cut from memory in the main process)."""
    if not config.cache or config.store:
        return None, config.workers
    frame_cache = frame_cache or FrameCache(config.cache_side)
    videos = [(s.path(m), m == "ir") for s in samples for m in modalities]
    frame_cache.preload(videos, config.workers, progress, config.worker_timeout)
    return frame_cache, 0


def _loader_options(config: DataConfig, workers: int) -> dict:
    """ClipLoader options shared by training and test loaders."""
    return {
        "num_workers": workers,
        "skip_bad": config.skip_bad,
        "pin_memory": torch.cuda.is_available(),
        "worker_timeout": config.worker_timeout,
    }


def _clip_options(config: DataConfig, modalities: Sequence[str], frame_cache: FrameCache | None) -> dict:
    """Dataset options shared by training and test clips."""
    return {
        "num_frames": config.num_frames,
        "modalities": tuple(modalities),
        "rgb_size": (config.rgb_size,) * 2,
        "ir_size": (config.ir_size,) * 2,
        "test_crop": config.test_crop,
        "frame_cache": frame_cache,
        "decode_threads": config.decode_threads,
        "person_margin": config.person_margin,
        "standardised": config.standardise,
    }
