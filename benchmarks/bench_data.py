"""Data-path speed: synthetic samples rendered per second, and paired clips per second through a DataLoader.

    python benchmarks/bench_data.py                       # renders the default dataset into a temp folder
    python benchmarks/bench_data.py --root data/synth     # times the loader on an existing dataset only

Each loader is read `--passes` times: the first pass includes starting its workers, later ones reuse them.

Prints a Markdown table to paste into BENCHMARKS.md.
"""

from __future__ import annotations

import argparse
import os
import platform
import tempfile
import time
from pathlib import Path

import torch

from arctic_kd.data.cliploader import ClipLoader
from arctic_kd.data.dataset import PairedClipDataset
from arctic_kd.data.loaders import paired_samples
from arctic_kd.data.ntu import index_ntu
from arctic_kd.data.protocols import split
from arctic_kd.data.synth import SynthConfig, generate


def time_synth(root: Path, workers: int) -> tuple[int, float]:
    config = SynthConfig()
    start = time.perf_counter()
    generate(root, config, workers=workers, progress=False)
    return len(config.sample_names()), time.perf_counter() - start


def time_loader(root: Path, workers: int, args: argparse.Namespace) -> tuple[int, list[float]]:
    """Clips per pass and seconds of each of `args.passes` passes over the cross-subject training split in
    training mode (random segments and crops); the first pass includes starting the workers."""
    index = index_ntu(root)
    by_name = {s.name: s for s in index.complete()}
    train, _ = split(by_name, "ntu60-xsub")
    samples = paired_samples([by_name[n] for n in train][: args.limit])
    dataset = PairedClipDataset(
        samples, args.frames, train=True, rgb_size=(args.size,) * 2, ir_size=(args.size,) * 2
    )
    loader = ClipLoader(dataset, args.batch_size, shuffle=True, num_workers=workers)
    clips, seconds = 0, []
    for _ in range(args.passes):
        start = time.perf_counter()
        clips = sum(len(batch["label"]) for batch in loader)
        seconds.append(time.perf_counter() - start)
    return clips, seconds


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--root", type=Path, help="existing dataset: skip the synth timing")
    parser.add_argument("--synth-workers", type=int, default=2)
    parser.add_argument("--frames", type=int, default=8)
    parser.add_argument("--size", type=int, default=112)
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--limit", type=int, default=None, help="at most this many training samples")
    parser.add_argument("--passes", type=int, default=3, help="loader passes (the first starts the workers)")
    parser.add_argument("--workers", type=int, nargs="+", default=[0, 2], help="loader workers to time")
    args = parser.parse_args()
    torch.set_num_threads(1)
    cpu = platform.processor() or platform.machine()
    print(f"machine: {cpu}, {os.cpu_count()} cores, torch {torch.__version__}")
    print("| measurement | items | seconds | rate |\n| --- | --- | --- | --- |")
    with tempfile.TemporaryDirectory() as scratch:
        root = args.root
        if root is None:
            root = Path(scratch) / "synth"
            samples, seconds = time_synth(root, args.synth_workers)
            print(
                f"| synth, default size, {args.synth_workers} workers | {samples} samples | {seconds:.1f} | "
                f"{samples / seconds:.1f} samples/s |"
            )
        for workers in args.workers:
            clips, seconds = time_loader(root, workers, args)
            clip = f"{args.frames}×{args.size}², train mode, batch {args.batch_size}"
            what = f"paired clips {clip}, {workers} workers"
            later = seconds[1:]
            rows = [("pass 1", seconds[0])] + (
                [(f"passes 2–{len(seconds)}, mean", sum(later) / len(later))] if later else []
            )
            for passes, took in rows:
                print(f"| {what}, {passes} | {clips} clips | {took:.1f} | {clips / took:.1f} clips/s |")


if __name__ == "__main__":
    main()
