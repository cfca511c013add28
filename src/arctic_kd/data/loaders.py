"""From a `DataConfig` to the train and test loaders of one protocol: the one door training comes in by."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from arctic_kd.config import DataConfig
from arctic_kd.data import manifest, pkummd, protocols
from arctic_kd.data.cache import FrameCache
from arctic_kd.data.dataset import ClipLoader, PairedClipDataset, PairedSample
from arctic_kd.data.manifest import read_manifest
from arctic_kd.data.ntu import NtuSample, index_ntu
from arctic_kd.data.person import person_boxes
from arctic_kd.data.pkummd import index_pkummd
from arctic_kd.data.protocols import split
from arctic_kd.errors import DataError
from arctic_kd.progress import progress_bar

DATASET_PROTOCOLS = {
    "ntu": tuple(protocols.PROTOCOLS),
    "pkummd": tuple(pkummd.PROTOCOLS),
    "manifest": tuple(manifest.PROTOCOLS),
}


@dataclass
class SplitSamples:
    train: list[PairedSample]
    test: list[PairedSample]
    class_names: list[str]


def paired_samples(
    samples: Sequence[NtuSample], person_crop: bool = False, progress: bool = False
) -> list[PairedSample]:
    """Dataset entries for NTU samples; with `person_crop`, person boxes from each sample's skeleton file.

    A sample without a skeleton file, or whose file tracks nobody, is used whole; a malformed skeleton
    file is an error naming it (the user asked for person crops).
    """
    entries = []
    for s in progress_bar(samples, desc="person boxes", unit="skeleton", enabled=progress and person_crop):
        person = person_boxes(s.skeleton) if person_crop and s.skeleton is not None else None
        entries.append(PairedSample(str(s.name), s.name.label, s.rgb, s.ir, person=person))
    return entries


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
        where = config.root
    elif config.dataset == "manifest":
        listing = read_manifest(_manifest_path(config), config.class_names)
        train, test = listing.split(config.protocol, modalities, config.train_subjects)
        samples, where = SplitSamples(train, test, listing.class_names), config.manifest
    else:
        samples, where = _ntu_samples(config, modalities, progress), config.root
    if not samples.train or not samples.test:
        raise DataError(
            where,
            f"protocol {config.protocol} leaves {len(samples.train)} training and {len(samples.test)} "
            f"test samples with {' and '.join(modalities)} videos",
        )
    return samples


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

    return SplitSamples(entries(train), entries(test), index.class_names)


def make_loaders(
    config: DataConfig,
    modalities: Sequence[str],
    seed: int,
    frame_cache: FrameCache | None = None,
    progress: bool = True,
) -> tuple[ClipLoader, ClipLoader, list[str]]:
    """Shuffled, augmented training clips and deterministic test clips of the configured protocol.

    With `config.cache` every video is decoded once, in `config.workers` processes, into `frame_cache`
    (pass the same cache to several stages to decode only once); clips are then cut in the main process.
    """
    samples = protocol_samples(config, modalities, progress)
    workers = config.workers
    if config.cache:
        frame_cache = frame_cache or FrameCache(config.cache_side)
        videos = [(s.path(m), m == "ir") for s in samples.train + samples.test for m in modalities]
        frame_cache.preload(videos, workers, progress)
        workers = 0
    common = {
        "num_frames": config.num_frames,
        "modalities": tuple(modalities),
        "rgb_size": (config.rgb_size,) * 2,
        "ir_size": (config.ir_size,) * 2,
        "frame_cache": frame_cache if config.cache else None,
        "person_margin": config.person_margin,
        "standardised": config.standardise,
    }
    train_set = PairedClipDataset(
        samples.train,
        train=True,
        crop_scale=config.crop_scale,
        colour_jitter=config.colour_jitter,
        seed=seed,
        **common,
    )
    test_set = PairedClipDataset(samples.test, train=False, **common)
    loader = {"num_workers": workers, "skip_bad": config.skip_bad}
    drop_last = len(train_set) >= config.batch_size  # a batch of one would break BatchNorm
    train = ClipLoader(train_set, config.batch_size, shuffle=True, drop_last=drop_last, seed=seed, **loader)
    test = ClipLoader(test_set, config.batch_size, **loader)
    return train, test, samples.class_names
