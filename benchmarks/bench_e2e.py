"""End to end: `arctic train`'s own loop on a clip store prepared at NTU sizes, against its loader alone and
its network alone, in one run. Does the input side keep up, and how many loader cores does one device need?

    python benchmarks/bench_e2e.py --work /tmp/e2e --set data.workers=2 \\
        --set teacher.depth=10 --set teacher.width=0.25 --set data.num_frames=8 --set data.batch_size=8
    python benchmarks/bench_e2e.py --work /tmp/e2e --device cuda --set data.workers=16 \\
        --set teacher.arch=r2plus1d --set data.num_frames=16 --set data.batch_size=32   # the NTU config

Steps: render a small synthetic dataset at NTU resolutions (RGB 1920×1080, IR 512×424; kept in WORK and
reused), `arctic prepare` it into a clip store (person crops, short side 128), then
1. the loop: `arctic train --modality rgb` on the store (config `--config`, default the `ntu` preset, with
   `--set` overrides) for `--epochs` epochs, tested after the last only; its rate is the training clips of
   every epoch but the first (worker start-up, warm-up, compilation), each timed from its first batch's
   arrival to its last step (through the loop's progress bar, as `tests/crash.py` hooks it), so the test
   pass and checkpoint writes between epochs, small at NTU's epoch sizes, do not count;
2. the loader alone: passes of the same training loader with `data.workers` workers and with 1, and its
   clips per CPU-second in the main process (what one core gives, however busy the machine);
3. the network alone: training steps of the same RGB teacher on random clips of the same shape, in the
   run's precision, memory format and `train.compile` (`bench_throughput.time_training_steps`).
Prints a Markdown table with the loop's share of the network-alone rate and the CPU cores the loader would
need to keep up with the network alone.
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import torch
from bench_input import loader_rate, step_rate
from bench_store import NTU_SIZES

from arctic_kd.cli import main as arctic
from arctic_kd.config import load_config
from arctic_kd.data.loaders import make_loaders, protocol_samples
from arctic_kd.data.store import StoreSettings, prepare_store
from arctic_kd.data.synth import SynthConfig, generate
from arctic_kd.engine import train
from arctic_kd.presets import resolve_config


def prepared_store(work: Path, classes: int, workers: int) -> tuple[Path, Path]:
    """The NTU-size dataset and its store in `work`, rendered and prepared unless already there: `classes`
    × 3 performers × 3 cameras, 6 training samples per class (performers 1, 2) and 3 test samples."""
    root, store = work / "synth", work / "store"
    if not (root / "nturgb+d_rgb").is_dir():
        synth = SynthConfig(num_classes=classes, performers=3, setups=1, replications=1, **NTU_SIZES)
        start = time.perf_counter()
        generate(root, synth, workers=workers, progress=False)
        seconds = time.perf_counter() - start
        print(f"rendered {len(synth.sample_names())} samples at NTU sizes in {seconds:.0f} s")
    samples = protocol_samples(load_config(overrides=[f"data.root={root}"]).data, ("rgb", "ir"))
    start = time.perf_counter()
    prepare_store(samples.train + samples.test, store, StoreSettings(), workers=workers, progress=False)
    print(f"store ready in {time.perf_counter() - start:.0f} s")
    return root, store


class _TimedBar:
    """`arctic train`'s progress bar over one epoch, noting the clips it yields and the time from the first
    batch's arrival to the end of the epoch's last step (so neither worker start-up nor the test pass and
    checkpoint writes between epochs count)."""

    def __init__(self, bar: Any, spans: list[tuple[int, float]]) -> None:
        self.bar, self.spans = bar, spans

    def __iter__(self) -> Iterator[Any]:
        clips, start = 0, 0.0
        for batch in self.bar:
            start = start or time.perf_counter()
            clips += len(batch["label"])
            yield batch
        self.spans.append((clips, time.perf_counter() - start))

    def __getattr__(self, name: str) -> Any:
        return getattr(self.bar, name)


def loop_rate(run: Path, settings: list[str], epochs: int) -> float:
    """Training clips per second of `arctic train`'s loop over every epoch but the first (worker start-up,
    warm-up, compilation), from each epoch's first batch to its last step."""
    command = ["train", "--modality", "rgb", "--out", str(run), "--force", *settings]
    loop = ["optim.epochs", "train.eval_every", "train.tensorboard", "data.test_clips"]
    for key, value in zip(loop, (epochs, epochs, "false", 1), strict=True):
        command += ["--set", f"{key}={value}"]
    spans: list[tuple[int, float]] = []
    progress_bar = train.progress_bar
    train.progress_bar = lambda *args, **kwargs: _TimedBar(progress_bar(*args, **kwargs), spans)
    try:
        if arctic(command) != 0:
            raise SystemExit("the training run failed")
    finally:
        train.progress_bar = progress_bar
    return sum(clips for clips, _ in spans[1:]) / sum(seconds for _, seconds in spans[1:])


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--work", type=Path, help="dataset, store and run (default: a temporary folder)")
    parser.add_argument("--config", default="ntu", help="config file or preset name (default: ntu)")
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE")
    parser.add_argument("--classes", type=int, default=4, help="synthetic classes (6 training clips each)")
    parser.add_argument(
        "--epochs", type=int, default=3, help="training epochs (at least 2; the first untimed)"
    )
    parser.add_argument("--passes", type=int, default=10, help="training-split passes of the loader alone")
    parser.add_argument("--steps", type=int, default=10, help="timed training steps of the network alone")
    parser.add_argument("--device", default="cpu")
    args = parser.parse_args()
    if args.epochs < 2:
        parser.error("--epochs must be at least 2: the first epoch is not timed")
    with tempfile.TemporaryDirectory() as scratch:
        work = args.work or Path(scratch)
        cores = len(os.sched_getaffinity(0))
        root, store = prepared_store(work, args.classes, min(cores, 8))
        overrides = [f"data.root={root}", f"data.store={store}", *args.set, f"device={args.device}"]
        settings = ["--config", args.config, *[arg for setting in overrides for arg in ("--set", setting)]]
        config = load_config(resolve_config(args.config), overrides)
        data, device = config.data, torch.device(args.device)
        loop = loop_rate(work / "run", settings, args.epochs)
        train, _, class_names = make_loaders(data, ("rgb",), config.seed, progress=False)
        loader = loader_rate(train, data.workers, args.passes, config.seed)
        one_worker = loader_rate(train, 1, args.passes, config.seed)
        threads = torch.get_num_threads()
        torch.set_num_threads(1)  # as in a worker: idle OpenMP threads spinning would count as CPU time
        per_cpu_second = loader_rate(train, 0, args.passes, config.seed, time.process_time)
        torch.set_num_threads(threads)
        network = step_rate(config, len(class_names), device, args.steps)
    teacher = config.teacher
    print(
        f"\n{teacher.arch}-{teacher.depth} ×{teacher.width}, {data.num_frames}×{data.rgb_size}², batch "
        f"{data.batch_size}, {device.type}, precision {config.train.precision}, "
        f"compile {config.train.compile}; "
        f"{cores} cores, {torch.get_num_threads()} torch threads, load average {os.getloadavg()[0]:.1f}\n"
    )
    print("| measurement | clips/s |\n| --- | --- |")
    print(f"| `arctic train` loop, {data.workers} loader workers | {loop:.1f} |")
    per_worker = loader / max(data.workers, 1)
    print(f"| loader alone, {data.workers} workers | {loader:.1f} ({per_worker:.1f} per worker) |")
    print(f"| loader alone, 1 worker | {one_worker:.1f} |")
    print(f"| loader alone, in the main process, per CPU-second | {per_cpu_second:.1f} |")
    print(f"| network alone (training steps on random clips) | {network:.1f} |")
    print(
        f"\nloop / network alone: {100 * loop / network:.0f} %; CPU cores the loader needs to feed the "
        f"network alone: {network / per_cpu_second:.2f}"
    )


if __name__ == "__main__":
    main()
