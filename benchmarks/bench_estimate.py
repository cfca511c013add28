"""Estimate a bench preset's wall time from a short bench run (every method, one seed, a few epochs).

    arctic bench --preset quick --seeds 0 --set optim.epochs=2 --out runs/timing
    python benchmarks/bench_estimate.py runs/timing --preset quick

Each run's time is modelled as a fixed part (building loaders and models, evaluation of the first epoch;
for the first run also decoding every video into the frame cache) plus a per-epoch part, taken as the
mean of the epochs after the first from `metrics.jsonl`. The estimate replays the preset: for every
protocol and seed, the teacher and every method, at the preset's epoch count, each with the median fixed
part; what the first RGB and the first IR run spent above that median (filling the cache) is counted once.
"""

from __future__ import annotations

import argparse
import json
import statistics
from pathlib import Path

from arctic_kd.experiments.bench import build_base, load_plan
from arctic_kd.experiments.runner import TEACHER
from arctic_kd.presets import resolve_config


def run_timing(folder: Path) -> tuple[float, float]:
    """(fixed seconds, seconds per epoch) of one finished run."""
    total = json.loads((folder / "result.json").read_text())["seconds"]
    clock = [json.loads(line)["seconds"] for line in (folder / "metrics.jsonl").read_text().splitlines()]
    if len(clock) < 2:
        raise SystemExit(f"{folder}: needs at least 2 epochs to time an epoch")
    per_epoch = (clock[-1] - clock[0]) / (len(clock) - 1)
    return total - len(clock) * per_epoch, per_epoch


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("timing", type=Path, help="OUT of the short bench run")
    parser.add_argument("--preset", default="quick", help="bench preset to estimate (default: quick)")
    args = parser.parse_args()
    plan = load_plan(args.preset)
    epochs = build_base(plan, resolve_config(plan.config), [], "data/synth").optim.epochs
    seed_folder = next(args.timing.glob("*/seed*"))
    timings = {name: run_timing(seed_folder / name) for name in (TEACHER, *plan.methods)}
    fixed = statistics.median(f for f, _ in timings.values())
    cache_fill = sum(max(0.0, f - fixed) for f, _ in timings.values())  # first RGB and first IR run
    print(
        f"timed in {seed_folder}; preset {args.preset}: {epochs} epochs, {len(plan.seeds)} seeds, "
        f"{len(plan.protocols)} protocols"
    )
    print("| run | fixed s (median) | s per epoch | one run at the preset |")
    print("| --- | --- | --- | --- |")
    per_seed = 0.0
    for name, (_, per_epoch) in timings.items():
        run = fixed + epochs * per_epoch
        per_seed += run
        print(f"| {name} | {fixed:.0f} | {per_epoch:.1f} | {run:.0f} s |")
    total = cache_fill + per_seed * len(plan.seeds) * len(plan.protocols)
    print(f"one-off cache fill {cache_fill:.0f} s; estimated total {total / 60:.0f} min")


if __name__ == "__main__":
    main()
