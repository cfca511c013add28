"""Does ARCTIC's activation region constraint bind? Teacher–student activation-map agreement of a bench.

    python benchmarks/bench_agreement.py runs/bench      # every protocol of an `arctic bench` folder
    python benchmarks/bench_agreement.py runs/bench --methods arctic arctic-no-arc ir_only

For every finished IR student of an `arctic bench` output folder (OUT/PROTOCOL/seedN/METHOD/last.pt), the
class activation maps ARC aligns are compared with those of the same seed's RGB teacher on the test split
(`engine.evaluate.activation_agreement`, what `arctic eval --teacher` reports for one run). Prints a
Markdown table per protocol: the mean per-clip map correlation and L_ARC (mean ± std over seeds) beside
the runs' top-1, so a method whose maps follow the teacher's can be told from one whose accuracy does.
Test clips are decoded once per protocol and shared by all runs.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import statistics
from pathlib import Path

import torch

from arctic_kd.bench import TEACHER
from arctic_kd.data.loaders import make_view_loader
from arctic_kd.engine.checkpoint import load_checkpoint, model_from_checkpoint
from arctic_kd.engine.evaluate import activation_agreement
from arctic_kd.engine.predict import checkpoint_config

MODALITIES = ("rgb", "ir")


def students(protocol_dir: Path, methods: list[str] | None) -> dict[str, list[Path]]:
    """Run folders of finished IR students by method, in seed order, that have a finished teacher."""
    found: dict[str, list[Path]] = {}
    for seed_dir in sorted(protocol_dir.glob("seed*"), key=lambda p: int(p.name[4:])):
        if not (seed_dir / TEACHER / "last.pt").is_file():
            continue
        for run in sorted(p for p in seed_dir.iterdir() if p.name != TEACHER and (p / "last.pt").is_file()):
            if methods is None or run.name in methods:
                found.setdefault(run.name, []).append(run)
    return found


def measure(runs: dict[str, list[Path]], threads: int) -> dict[str, list[dict]]:
    """Agreement and top-1 of every run, on test clips built once from the first run's config."""
    torch.set_num_threads(threads)
    config = checkpoint_config(load_checkpoint(next(iter(runs.values()))[0] / "last.pt"))
    data = dataclasses.replace(config.data, test_clips=1, test_crops=1)
    batches = list(make_view_loader(data, MODALITIES, progress=False)[0])
    cpu = torch.device("cpu")
    results: dict[str, list[dict]] = {}
    for method, folders in runs.items():
        for folder in folders:
            teacher = model_from_checkpoint(load_checkpoint(folder.parent / TEACHER / "last.pt"))
            student = model_from_checkpoint(load_checkpoint(folder / "last.pt"))
            agreement = activation_agreement(
                teacher, student, batches, MODALITIES, config.distill.arc.rho, cpu
            )
            top1 = json.loads((folder / "result.json").read_text())["top1"]
            results.setdefault(method, []).append({**agreement, "top1": top1, "run": str(folder)})
            print(
                f"{folder}: correlation {agreement['map_correlation']:.3f}  L_ARC {agreement['arc_loss']:.4f}"
            )
    return results


def table(results: dict[str, list[dict]]) -> str:
    rows = [
        "| method | seeds | map correlation | L_ARC | top-1 |",
        "| --- | --- | --- | --- | --- |",
    ]
    for method, runs in sorted(results.items(), key=lambda item: -_mean(item[1], "map_correlation")):
        cells = [
            _mean_std(runs, "map_correlation", 3),
            _mean_std(runs, "arc_loss", 4),
            _mean_std(runs, "top1", 1),
        ]
        rows.append(f"| {method} | {len(runs)} | " + " | ".join(cells) + " |")
    return "\n".join(rows)


def _mean(runs: list[dict], key: str) -> float:
    return statistics.mean(r[key] for r in runs)


def _mean_std(runs: list[dict], key: str, digits: int) -> str:
    values = [r[key] for r in runs]
    spread = f" ± {statistics.stdev(values):.{digits}f}" if len(values) > 1 else ""
    return f"{statistics.mean(values):.{digits}f}{spread}"


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("out", type=Path, help="an `arctic bench --out` folder")
    parser.add_argument("--methods", nargs="+", help="runs to measure (default: every finished IR student)")
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    protocols = sorted(p for p in args.out.iterdir() if p.is_dir() and any(p.glob("seed*")))
    if not protocols:
        raise SystemExit(f"{args.out}: no PROTOCOL/seedN folders of an `arctic bench` run")
    for protocol_dir in protocols:
        runs = students(protocol_dir, args.methods)
        if not runs:
            print(f"{protocol_dir}: no finished IR student with a finished teacher")
            continue
        print(f"\n## {protocol_dir.name}\n\n{table(measure(runs, args.threads))}\n")


if __name__ == "__main__":
    main()
