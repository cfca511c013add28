"""Relative training cost of every method: one optimiser step on a demo-size batch, interleaved rounds.

    python benchmarks/bench_methods.py                    # the demo preset's sizes
    python benchmarks/bench_methods.py --set data.ir_size=112 --rounds 5

Ratios between methods measured in interleaved rounds hold on a machine shared with other work, where
absolute timings do not; with per-epoch times of the IR-only run and of ARCTIC measured on a quiet
machine (`--ir-epoch`, `--arctic-epoch`; defaults: the demo's figures in BENCHMARKS.md) every method's
epoch is interpolated by its step cost, and the wall time of a bench preset is estimated from them.
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch

from arctic_kd.distill import build_distiller
from arctic_kd.distill.base import Vanilla
from arctic_kd.engine.setup import build_optimizer
from arctic_kd.experiments.bench import build_base, load_plan, load_variants
from arctic_kd.experiments.runner import TEACHER, with_overrides
from arctic_kd.models import video_resnet
from arctic_kd.presets import VARIANTS_FILE, resolve_config


def make_step(name: str, config, num_classes: int):
    """A closure running one training step of run `name` on a fixed random batch."""
    data = config.data
    batch = {
        "rgb": torch.randn(data.batch_size, 3, data.num_frames, data.rgb_size, data.rgb_size),
        "ir": torch.randn(data.batch_size, 1, data.num_frames, data.ir_size, data.ir_size),
        "label": torch.arange(data.batch_size) % num_classes,
    }

    def net(model, channels):
        return video_resnet(
            model.arch, model.depth, num_classes=num_classes, in_channels=channels, width=model.width
        )

    if name == TEACHER:
        distiller = Vanilla(net(config.teacher, 3), student_modality="rgb")
    elif config.distill.teacher == "":
        distiller = Vanilla(net(config.student, 1), student_modality="ir")
    else:
        distiller = build_distiller(config.distill, net(config.student, 1), net(config.teacher, 3))
    distiller.train()
    optimizer = build_optimizer(distiller.trainable_parameters(), config.optim)

    def step() -> None:
        _, losses = distiller.forward_train(batch)
        optimizer.zero_grad(set_to_none=True)
        sum(losses.values()).backward()
        optimizer.step()

    return step


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--preset", default="quick", help="bench preset whose methods and budget to use")
    parser.add_argument("--set", action="append", default=[], help="config override (repeatable)")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--steps", type=int, default=2, help="steps per method per round")
    parser.add_argument("--classes", type=int, default=12)
    parser.add_argument("--ir-epoch", type=float, default=94 / 15, help="IR-only seconds per epoch, quiet")
    parser.add_argument(
        "--arctic-epoch", type=float, default=149 / 15, help="ARCTIC seconds per epoch, quiet"
    )
    parser.add_argument("--teacher-epoch", type=float, default=121 / 15, help="teacher seconds per epoch")
    args = parser.parse_args()
    plan = load_plan(args.preset)
    variants = load_variants(VARIANTS_FILE)
    base = build_base(plan, resolve_config(plan.config), args.set, "data/synth")
    configs = {TEACHER: base}
    for name in plan.methods:
        teacher = [] if variants[name].stage == "train" else ["distill.teacher=unused"]
        configs[name] = with_overrides(base, [*variants[name].set, *teacher])
    steps = {name: make_step(name, config, args.classes) for name, config in configs.items()}
    seconds: dict[str, list[float]] = {name: [] for name in steps}
    for step in steps.values():
        step()  # warm-up
    for _ in range(args.rounds):
        for name, step in steps.items():
            start = time.perf_counter()
            for _ in range(args.steps):
                step()
            seconds[name].append((time.perf_counter() - start) / args.steps)
    cost = {name: statistics.median(values) for name, values in seconds.items()}
    ir, arctic = cost["ir_only"], cost["arctic"]
    epochs = base.optim.epochs
    print(
        f"preset {args.preset}: {epochs} epochs × {len(plan.seeds)} seeds × {len(plan.protocols)} protocols"
    )
    print("| run | s per step (this machine) | cost vs ARCTIC | est. s per epoch (quiet) | est. run |")
    print("| --- | --- | --- | --- | --- |")
    per_seed = 0.0
    for name, value in cost.items():
        if name == TEACHER:
            epoch = args.teacher_epoch
        else:
            epoch = args.ir_epoch + (args.arctic_epoch - args.ir_epoch) * (value - ir) / (arctic - ir)
        per_seed += epoch * epochs
        print(f"| {name} | {value:.2f} | {value / arctic:.2f} | {epoch:.1f} | {epoch * epochs:.0f} s |")
    total = per_seed * len(plan.seeds) * len(plan.protocols)
    print(f"estimated wall time: {total / 60:.0f} min (plus rendering and decoding once, about 1 min)")


if __name__ == "__main__":
    main()
