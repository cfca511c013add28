"""Clip store vs raw videos at real NTU resolutions: loader clips/s, store size, and what a student consumes.

    python benchmarks/bench_store.py                  # renders 36 samples (RGB 1920×1080, IR 512×424)
    python benchmarks/bench_store.py --root DIR       # an existing dataset instead (kept)

Steps: render a small synthetic dataset at NTU resolutions (like `arctic synth ... --rgb-size 1920x1080
--ir-size 512x424`), `arctic prepare` it (person crops, short side 128, JPEG 90), then time one pass of
the paired RGB+IR training loader (8 TSN frames, random crop and flip, 112², batch 8, 2 worker
processes) reading the raw videos and reading the store; then time training steps of the default IR
student (config defaults: R3D-18, 8×112², batch 8) on this CPU. Prints a Markdown table.
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import platform
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

from arctic_kd.config import Config, DataConfig
from arctic_kd.data.clipfile import StoredVideo
from arctic_kd.data.cliploader import ClipLoader
from arctic_kd.data.dataset import PairedClipDataset
from arctic_kd.data.loaders import protocol_samples, stored_samples
from arctic_kd.data.store import SAMPLES_DIR, StoreSettings, prepare_store
from arctic_kd.data.synth import SynthConfig, generate
from arctic_kd.distill.base import Vanilla
from arctic_kd.engine.setup import build_optimizer
from arctic_kd.models.factory import build_model, model_spec

NTU_SIZES = {"rgb_size": (1920, 1080), "ir_size": (512, 424)}


def loader_rate(samples, args, store: bool) -> tuple[int, float]:
    """Clips per second over one training pass, worker start-up included."""
    dataset = PairedClipDataset(samples, args.frames, train=True, person_margin=None if store else 0.15)
    loader = ClipLoader(dataset, args.batch_size, shuffle=True, num_workers=args.workers)
    clips, start = 0, time.perf_counter()
    for batch in loader:
        clips += len(batch["label"])
    return clips, time.perf_counter() - start


def student_rate(args) -> tuple[int, float]:
    """Training clips per second of the default IR student (forward, backward, SGD step)."""
    config = Config()
    student = config.student
    model = build_model(model_spec(student.arch, student.depth, student.width, student.dropout, 1, 12))
    distiller = Vanilla(model, student_modality="ir")
    optimizer = build_optimizer(distiller.trainable_parameters(), config.optim)
    size = config.data.ir_size
    batch = {
        "ir": torch.randn(args.batch_size, 1, args.frames, size, size),
        "label": torch.zeros(args.batch_size, dtype=torch.long),
    }
    distiller.train()
    start = None
    for step in range(args.student_steps + 1):
        if step == 1:
            start = time.perf_counter()  # the first step allocates
        _, losses = distiller.forward_train(batch)
        optimizer.zero_grad()
        sum(losses.values()).backward()
        optimizer.step()
    return args.student_steps * args.batch_size, time.perf_counter() - start


def format_comparison(store: Path, frames: int) -> tuple[float, float, float, float]:
    """Bytes per stored clip as JPEG frames vs raw uint8 arrays, and ms to read `frames` frames of each."""
    jpeg_bytes = raw_bytes = 0
    jpeg_s = npy_s = 0.0
    files = sorted((store / SAMPLES_DIR).glob("*.clip"))
    with tempfile.TemporaryDirectory() as scratch:
        for path in files:
            jpeg_bytes += path.stat().st_size
            with StoredVideo(path) as video:
                everything = video.read(range(video.num_frames))
                picks = np.linspace(0, video.num_frames - 1, frames).round().astype(int)
                start = time.perf_counter()
                video.read(picks)
                jpeg_s += time.perf_counter() - start
            npy = Path(scratch) / "clip.npy"
            np.save(npy, everything)
            raw_bytes += npy.stat().st_size
            start = time.perf_counter()
            np.ascontiguousarray(np.load(npy, mmap_mode="r")[picks])
            npy_s += time.perf_counter() - start
    samples = len(files) / 2
    return jpeg_bytes / samples, raw_bytes / samples, 1000 * jpeg_s / samples, 1000 * npy_s / samples


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--root", type=Path, help="existing dataset (default: render one into a temp folder)")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--frames", type=int, default=8)
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--student-steps", type=int, default=3)
    parser.add_argument("--repeat", type=int, default=10, help="store pass: the samples this many times over")
    args = parser.parse_args()
    torch.set_num_threads(2)
    print(f"machine: {platform.machine()}, {os.cpu_count()} cores, torch {torch.__version__}")
    print("| measurement | items | seconds | rate |\n| --- | --- | --- | --- |")
    with tempfile.TemporaryDirectory() as scratch:
        root = args.root
        if root is None:
            root = Path(scratch) / "synth"
            synth = SynthConfig(num_classes=4, performers=3, replications=1, **NTU_SIZES)
            start = time.perf_counter()
            generate(root, synth, workers=args.workers, progress=False)
            seconds = time.perf_counter() - start
            count = len(synth.sample_names())
            print(
                f"| synth at NTU sizes, {args.workers} workers | {count} samples | {seconds:.1f} | "
                f"{count / seconds:.2f} samples/s |"
            )
        config = DataConfig(root=str(root), protocol="ntu60-xsub")
        raw = protocol_samples(config, ("rgb", "ir"))
        everything = raw.train + raw.test
        store = Path(scratch) / "store"
        start = time.perf_counter()
        prepare_store(everything, store, StoreSettings(), workers=args.workers, progress=False)
        seconds = time.perf_counter() - start
        print(
            f"| `arctic prepare`, {args.workers} workers | {len(everything)} samples | {seconds:.1f} | "
            f"{len(everything) / seconds:.2f} samples/s |"
        )
        stored = stored_samples(dataclasses.replace(config, store=str(store)), ("rgb", "ir"))
        rates = {}
        passes = {
            "raw videos": (everything, False),
            "store": ((stored.train + stored.test) * args.repeat, True),
        }
        for name, (samples, is_store) in passes.items():
            clips, seconds = loader_rate(samples, args, is_store)
            rates[name] = clips / seconds
            print(
                f"| paired RGB+IR training clips from {name}, {args.workers} workers | {clips} clips | "
                f"{seconds:.1f} | {rates[name]:.1f} clips/s |"
            )
        clips, seconds = student_rate(args)
        print(
            f"| default IR student (R3D-18, 8×112²) training steps | {clips} clips | {seconds:.1f} | "
            f"{clips / seconds:.1f} clips/s |"
        )
        jpeg, npy, jpeg_ms, npy_ms = format_comparison(store, args.frames)
        print(
            f"\nstore / raw loader: {rates['store'] / rates['raw videos']:.1f}×; "
            f"store loader / student: {rates['store'] / (clips / seconds):.1f}×"
        )
        print(
            f"bytes per stored sample (RGB+IR): JPEG frames {jpeg / 1e3:.0f} kB "
            f"(read {args.frames} frames of each stream: {jpeg_ms:.2f} ms), "
            f"uint8 .npy {npy / 1e3:.0f} kB ({npy_ms:.2f} ms)"
        )


if __name__ == "__main__":
    main()
