"""What ARCTIC's losses cost: one distillation step vs. one student CE step plus one teacher forward.

    python benchmarks/bench_distill_step.py                  # the demo preset, 20 interleaved rounds
    python benchmarks/bench_distill_step.py --set distill.arc.maps=gradcam

A distillation step cannot be cheaper than training the student alone and running the frozen teacher on
the same batch; the ratio of the two is the overhead of ARM, ARC and correctness-aware KD (target ≤ 1.15).
Rounds interleave the three measurements, so load on a shared machine hits them alike; medians are shown.
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch
from bench_methods import make_step

from arctic_kd.config import load_config
from arctic_kd.experiments.runner import TEACHER
from arctic_kd.models import video_resnet
from arctic_kd.presets import resolve_config


def teacher_forward(config, num_classes: int):
    """One no-grad forward of a frozen (eval-mode) teacher on a demo-size RGB batch."""
    data, model = config.data, config.teacher
    teacher = video_resnet(model.arch, model.depth, num_classes=num_classes, width=model.width).eval()
    clips = torch.randn(data.batch_size, 3, data.num_frames, data.rgb_size, data.rgb_size)

    def forward() -> None:
        with torch.inference_mode():
            teacher(clips)

    return forward


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--config", default="demo", help="config file or preset (default: demo)")
    parser.add_argument("--set", action="append", default=[], help="config override (repeatable)")
    parser.add_argument("--rounds", type=int, default=20)
    parser.add_argument("--classes", type=int, default=12)
    args = parser.parse_args()
    config = load_config(resolve_config(args.config), [*args.set, "distill.teacher=unused"])
    plain = load_config(resolve_config(args.config), [*args.set, "distill.teacher=''"])
    runs = {
        "distill step (ARCTIC)": make_step("arctic", config, args.classes),
        "student CE step": make_step("ir_only", plain, args.classes),
        "teacher forward": teacher_forward(config, args.classes),
    }
    seconds: dict[str, list[float]] = {name: [] for name in runs}
    for run in runs.values():
        run()  # warm-up
    for _ in range(args.rounds):
        for name, run in runs.items():
            start = time.perf_counter()
            run()
            seconds[name].append(time.perf_counter() - start)
    median = {name: statistics.median(values) for name, values in seconds.items()}
    data = config.data
    print(
        f"batch {data.batch_size}, {data.num_frames}×{data.ir_size}² IR / {data.rgb_size}² RGB, "
        f"{TEACHER} {config.teacher.arch}-{config.teacher.depth} width {config.teacher.width}, "
        f"{args.rounds} rounds, {torch.get_num_threads()} threads"
    )
    print("| measurement | median ms |")
    print("| --- | --- |")
    for name, value in median.items():
        print(f"| {name} | {1000 * value:.1f} |")
    baseline = median["student CE step"] + median["teacher forward"]
    print(f"ratio distill / (student CE + teacher forward): {median['distill step (ARCTIC)'] / baseline:.2f}")


if __name__ == "__main__":
    main()
