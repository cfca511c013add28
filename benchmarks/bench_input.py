"""Is a run bound by its input pipeline? Training clips per second the configured loader delivers alone,
against what one training step of the configured networks consumes.

    python benchmarks/bench_input.py                        # the demo preset on data/synth, CPU
    python benchmarks/bench_input.py --workers 0 2 8 --device cuda
    python benchmarks/bench_input.py --set data.cache=false --workers 2 8

With `data.cache` (the demo's) every video is decoded once into memory and clips are cut from it; the
loader passes below are read after that, with the given numbers of DataLoader workers (a run reads them
with none: `loaders._prepare_cache`). The clips are paired RGB + IR, as distillation reads them (a
teacher's own run cuts RGB only, a little less work). The step rate is forward + backward + SGD of the
configured RGB teacher on random clips of the same shape, in the run's precision and memory format.
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable

import torch
from bench_throughput import time_training_steps

from arctic_kd.config import Config, load_config
from arctic_kd.data.cliploader import ClipLoader
from arctic_kd.data.loaders import frame_cache_for, make_loaders
from arctic_kd.engine.precision import autocast_dtype
from arctic_kd.models.factory import build_model, model_spec
from arctic_kd.presets import resolve_config


def loader_rate(
    train: ClipLoader, workers: int, passes: int, seed: int, clock: Callable[[], float] = time.perf_counter
) -> float:
    """Clips per second of `clock` (wall time; `time.process_time` with 0 workers: per CPU-second, which a
    shared machine does not lower) over `passes` passes of a copy of the training loader."""
    loader = ClipLoader(
        train.dataset,  # the run's augmentation, cut from the same cache
        train.batch_size,
        shuffle=True,
        num_workers=workers,
        drop_last=True,
        seed=seed,
    )
    clips, start = 0, clock()
    for _ in range(passes):
        for batch in loader:
            clips += len(batch["label"])
    return clips / (clock() - start)


def step_rate(config: Config, num_classes: int, device: torch.device, steps: int) -> float:
    """Clips per second of the configured RGB teacher's training steps on random clips, in the run's
    precision, memory format and `train.compile` on `device` (as `engine.setup` sets them up)."""
    data, teacher = config.data, config.teacher
    model = build_model(
        model_spec(teacher.arch, teacher.depth, teacher.width, teacher.dropout, 3, num_classes)
    )
    clips = torch.randn(data.batch_size, 3, data.num_frames, data.rgb_size, data.rgb_size)
    channels_last = config.train.channels_last and device.type == "cuda"
    dtype = autocast_dtype(config.train.precision, device)
    compiled = config.train.compile
    timed = time_training_steps(model, clips, num_classes, dtype, channels_last, compiled, steps, 3, device)
    return timed["clips_per_s"]


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--config", default="demo", help="config file or preset name (default: demo)")
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE")
    parser.add_argument("--workers", type=int, nargs="+", default=[0, 1, 2], help="loader workers to try")
    parser.add_argument("--passes", type=int, default=2, help="training-split passes per loader setting")
    parser.add_argument("--steps", type=int, default=20, help="timed training steps")
    parser.add_argument("--device", default="cpu")
    args = parser.parse_args()
    config = load_config(resolve_config(args.config), args.set)
    device = torch.device(args.device)
    start = time.perf_counter()
    train, _, _, class_names = make_loaders(
        config.data, ("rgb", "ir"), config.seed, frame_cache_for(config.data)
    )
    print(f"loaders ready in {time.perf_counter() - start:.1f} s (cache: {config.data.cache})")
    data = config.data
    print(f"| measurement ({data.num_frames}×{data.rgb_size}², batch {data.batch_size}) | clips/s |")
    print("| --- | --- |")
    for workers in args.workers:
        rate = loader_rate(train, workers, args.passes, config.seed)
        print(f"| paired training clips, loader workers: {workers} | {rate:.1f} |")
    rate = step_rate(config, len(class_names), device, args.steps)
    where = f"{device.type}, {torch.get_num_threads()} threads, precision {config.train.precision}"
    print(f"| teacher training step on {where} | {rate:.1f} |")


if __name__ == "__main__":
    main()
