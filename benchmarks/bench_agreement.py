"""Does ARCTIC's activation region constraint bind, and does binding pay? Map agreement across a bench.

    python benchmarks/bench_agreement.py runs/bench      # every protocol of an `arctic bench` folder
    python benchmarks/bench_agreement.py runs/bench --methods arctic arctic-no-arc ir_only
    python benchmarks/bench_agreement.py runs/bench --pair arctic-gradcam arctic-no-arc

For every finished IR student of an `arctic bench` output folder (OUT/PROTOCOL/seedN/METHOD/last.pt), the
class activation maps ARC aligns are compared clip by clip with those of the same seed's RGB teacher on
the test split (`engine.evaluate.clip_agreement`; `arctic eval --teacher` reports the means for one run).
Prints, per protocol, two Markdown tables:
- per method (mean ± std over seeds): the per-clip map correlation, L_ARC and top-1, and top-1 on each
  run's half of the clips whose maps agree least and most with the teacher's;
- per pair of methods (default: ARCTIC against ARCTIC − ARC), clip by clip on the seeds both have: how
  much the first raises agreement, whether clips that gain agreement gain right answers (the correlation
  of the two changes, and the top-1 change on the quarter of clips that gained most), and the clips
  the first gets right and the second wrong ("fixed"), and the other way round ("broken").
Test clips are decoded once per protocol and shared by all runs.
"""

from __future__ import annotations

import argparse
import dataclasses
import statistics
from pathlib import Path

import torch

from arctic_kd.bench import TEACHER
from arctic_kd.data.loaders import make_view_loader
from arctic_kd.engine.checkpoint import load_checkpoint, model_from_checkpoint
from arctic_kd.engine.evaluate import ClipAgreement, clip_agreement
from arctic_kd.engine.predict import checkpoint_config

MODALITIES = ("rgb", "ir")
Runs = dict[str, dict[int, ClipAgreement]]  # method → seed → per-clip agreement


def students(protocol_dir: Path, methods: list[str] | None) -> dict[str, dict[int, Path]]:
    """Run folders of finished IR students by method and seed, where the seed's teacher is finished."""
    found: dict[str, dict[int, Path]] = {}
    for seed_dir in sorted(protocol_dir.glob("seed*"), key=lambda p: int(p.name[4:])):
        if not (seed_dir / TEACHER / "last.pt").is_file():
            continue
        for run in sorted(p for p in seed_dir.iterdir() if p.name != TEACHER and (p / "last.pt").is_file()):
            if methods is None or run.name in methods:
                found.setdefault(run.name, {})[int(seed_dir.name[4:])] = run
    return found


def measure(folders: dict[str, dict[int, Path]]) -> Runs:
    """Per-clip agreement of every run, on test clips built once from the first run's config."""
    first = next(iter(next(iter(folders.values())).values()))
    config = checkpoint_config(load_checkpoint(first / "last.pt"))
    data = dataclasses.replace(config.data, test_clips=1, test_crops=1)
    batches = list(make_view_loader(data, MODALITIES, progress=False)[0])
    cpu = torch.device("cpu")
    runs: Runs = {}
    for method, by_seed in folders.items():
        for seed, folder in by_seed.items():
            teacher = model_from_checkpoint(load_checkpoint(folder.parent / TEACHER / "last.pt"))
            student = model_from_checkpoint(load_checkpoint(folder / "last.pt"))
            clips = clip_agreement(teacher, student, batches, MODALITIES, config.distill.arc.rho, cpu)
            runs.setdefault(method, {})[seed] = clips
            summary = clips.summary()
            print(f"{folder}: correlation {summary['map_correlation']:.3f}  L_ARC {summary['arc_loss']:.4f}")
    return runs


def method_table(runs: Runs) -> str:
    rows = [
        "| method | seeds | map correlation | L_ARC | top-1 | top-1, least agreeing half | most agreeing |",
        "| --- | --- | --- | --- | --- | --- | --- |",
    ]
    for method, by_seed in sorted(runs.items(), key=lambda item: -_mean(item[1], _correlation)):
        columns = (
            (_correlation, 3),
            (lambda c: float(c.arc_loss.mean()), 4),
            (lambda c: _top1(c.correct), 1),
            (lambda c: _top1(_agreement_half(c, least=True)), 1),
            (lambda c: _top1(_agreement_half(c, least=False)), 1),
        )
        cells = [_mean_std(by_seed, value, digits) for value, digits in columns]
        rows.append(f"| {method} | {len(by_seed)} | " + " | ".join(cells) + " |")
    return "\n".join(rows)


def pair_table(runs: Runs, first: str, second: str) -> str:
    """Clip by clip, what `first` changes against `second` on the same seeds' teachers and clips."""
    seeds = sorted(runs[first].keys() & runs[second].keys())
    gain = torch.cat([runs[first][s].correlation - runs[second][s].correlation for s in seeds])
    change = torch.cat([runs[first][s].correct.float() - runs[second][s].correct.float() for s in seeds])
    top_quarter_change = 100 * float(change[gain >= gain.quantile(0.75)].mean())
    fixed, broken = int((change > 0).sum()), int((change < 0).sum())
    return "\n".join(
        [
            "| pair | seeds | clip pairs | correlation gain | r(gain, change in right answers) "
            "| top-1 change, quarter gaining most | fixed / broken |",
            "| --- | --- | --- | --- | --- | --- | --- |",
            f"| {first} against {second} | {len(seeds)} | {len(gain)} | {float(gain.mean()):+.3f} "
            f"| {_pearson(gain, change):.3f} | {top_quarter_change:+.1f} | {fixed} / {broken} |",
        ]
    )


def _correlation(clips: ClipAgreement) -> float:
    return float(clips.correlation.mean())


def _agreement_half(clips: ClipAgreement, least: bool) -> torch.Tensor:
    """Whether the student is right on the half of the clips whose maps agree least (or most)."""
    order = clips.correlation.argsort(descending=not least)
    return clips.correct[order[: len(order) // 2]]


def _top1(correct: torch.Tensor) -> float:
    return 100.0 * float(correct.float().mean())


def _pearson(x: torch.Tensor, y: torch.Tensor) -> float:
    return float(torch.corrcoef(torch.stack([x.float(), y.float()]))[0, 1])


def _mean(by_seed: dict[int, ClipAgreement], value) -> float:
    return statistics.mean(value(c) for c in by_seed.values())


def _mean_std(by_seed: dict[int, ClipAgreement], value, digits: int) -> str:
    values = [value(c) for c in by_seed.values()]
    spread = f" ± {statistics.stdev(values):.{digits}f}" if len(values) > 1 else ""
    return f"{statistics.mean(values):.{digits}f}{spread}"


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("out", type=Path, help="an `arctic bench --out` folder")
    parser.add_argument("--methods", nargs="+", help="runs to measure (default: every finished IR student)")
    parser.add_argument(
        "--pair",
        nargs=2,
        default=("arctic", "arctic-no-arc"),
        metavar=("FIRST", "SECOND"),
        help="methods to compare clip by clip",
    )
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    protocols = sorted(p for p in args.out.iterdir() if p.is_dir() and any(p.glob("seed*")))
    if not protocols:
        raise SystemExit(f"{args.out}: no PROTOCOL/seedN folders of an `arctic bench` run")
    for protocol_dir in protocols:
        folders = students(protocol_dir, args.methods)
        if not folders:
            print(f"{protocol_dir}: no finished IR student with a finished teacher")
            continue
        runs = measure(folders)
        print(f"\n## {protocol_dir.name}\n\n{method_table(runs)}\n")
        if all(m in runs for m in args.pair):
            print(f"{pair_table(runs, *args.pair)}\n")


if __name__ == "__main__":
    main()
