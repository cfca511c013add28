"""Does ARCTIC's activation region constraint bind, and does binding pay? Map agreement across a bench.

    python benchmarks/bench_agreement.py runs/bench      # every protocol of an `arctic bench` folder
    python benchmarks/bench_agreement.py runs/bench --methods arctic arctic-no-arc ir_only
    python benchmarks/bench_agreement.py runs/bench --pair arctic-no-kd arctic-no-arc

For every finished IR student of an `arctic bench` output folder (OUT/PROTOCOL/seedN/METHOD with its
`result.json`), the class activation maps of the true class at the last stage are compared clip by clip
with those of the same seed's RGB teacher on the test split (`distill.agreement.clip_agreement`; `arctic
eval --teacher` reports the means for one run). These are the maps ARC aligns at its default
`arc.maps: cam`; a run trained with Grad-CAM maps is measured on the same CAMs, not on its own maps.
Prints, per protocol, two Markdown tables:
- per method (mean ± std over seeds): the per-clip map correlation, L_ARC and top-1, and top-1 on each
  run's half of the clips whose maps agree least and most with the teacher's;
- for a pair of methods (default: ARCTIC against ARCTIC − ARC), clip by clip on the seeds both have:
  how much the first raises agreement, whether clips that gain agreement gain right answers (Pearson r
  of the two changes, and the top-1 change on the quarter of clips that gained most), and how many clips
  the first gets right and the second wrong ("fixed"), and the other way round ("broken").
Every pair re-reads the test clips: turn `data.cache` on in the bench's config to decode them once.
"""

from __future__ import annotations

import argparse
import dataclasses
import re
import statistics
from collections.abc import Callable
from pathlib import Path

import torch

from arctic_kd.config import config_from_dict
from arctic_kd.data.loaders import frame_cache_for, make_view_loader
from arctic_kd.distill.agreement import ClipAgreement, clip_agreement
from arctic_kd.engine.checkpoint import load_checkpoint, model_from_checkpoint
from arctic_kd.experiments.runner import TEACHER, RunRecord

MODALITIES = ("rgb", "ir")
SEED_FOLDER = re.compile(r"seed(\d+)")
Runs = dict[str, dict[int, ClipAgreement]]  # method → seed → per-clip agreement


@dataclasses.dataclass(frozen=True)
class Student:
    folder: Path
    record: RunRecord


def students(protocol_dir: Path, methods: list[str] | None) -> dict[str, dict[int, Student]]:
    """Finished IR students (a `result.json`) by method and seed, where the seed's teacher is finished."""
    found: dict[str, dict[int, Student]] = {}
    for seed_dir in sorted(protocol_dir.iterdir()):
        seed = SEED_FOLDER.fullmatch(seed_dir.name)
        if seed is None or not (seed_dir / TEACHER / "result.json").is_file():
            continue
        for run in sorted(seed_dir.iterdir()):
            if run.name == TEACHER or not (run / "result.json").is_file():
                continue
            record = RunRecord.read(run / "result.json")
            if record.modality == "ir" and (methods is None or run.name in methods):
                found.setdefault(run.name, {})[int(seed.group(1))] = Student(run, record)
    return found


def measure(found: dict[str, dict[int, Student]]) -> Runs:
    """Per-clip agreement of every student with its seed's teacher, on the test clips of their data."""
    runs = [(method, seed, s) for method, by_seed in found.items() for seed, s in sorted(by_seed.items())]
    data_settings = runs[0][2].record.config["data"]
    for _, _, student in runs:
        if student.record.config["data"] != data_settings:
            raise SystemExit(f"{student.folder} was trained on other data settings than {runs[0][2].folder}")
    data = dataclasses.replace(config_from_dict({"data": data_settings}).data, test_clips=1)
    loader, _ = make_view_loader(data, MODALITIES, frame_cache_for(data), progress=False)
    cpu = torch.device("cpu")
    measured: Runs = {}
    for method, seed, student in runs:
        teacher = model_from_checkpoint(load_checkpoint(student.folder.parent / TEACHER / "last.pt"))
        model = model_from_checkpoint(load_checkpoint(student.folder / "last.pt"))
        rho = student.record.config["distill"]["arc"]["rho"]
        clips = clip_agreement(teacher, model, loader, MODALITIES, rho, cpu)
        measured.setdefault(method, {})[seed] = clips
        summary = clips.summary()
        print(
            f"{student.folder}: correlation {summary['map_correlation']:.3f}  L_ARC {summary['arc_loss']:.4f}"
        )
    return measured


def method_table(runs: Runs, labels: dict[str, str]) -> str:
    columns: list[tuple[Callable[[ClipAgreement], float], int]] = [
        (correlation, 3),
        (lambda c: float(c.arc_loss.mean()), 4),
        (lambda c: top1(c.correct), 1),
        (lambda c: top1(agreement_half(c, least=True)), 1),
        (lambda c: top1(agreement_half(c, least=False)), 1),
    ]
    rows = [
        "| method | seeds | map correlation | L_ARC | top-1 | top-1, least agreeing half | most agreeing |",
        "| --- | --- | --- | --- | --- | --- | --- |",
    ]
    for method, by_seed in sorted(runs.items(), key=lambda item: -_mean(item[1], correlation)):
        cells = [_mean_std([value(c) for c in by_seed.values()], digits) for value, digits in columns]
        rows.append(f"| {labels[method]} | {len(by_seed)} | " + " | ".join(cells) + " |")
    return "\n".join(rows)


def pair_table(runs: Runs, labels: dict[str, str], first: str, second: str) -> str:
    """Clip by clip, what `first` changes against `second` on the same seeds' teachers and clips."""
    seeds = sorted(runs[first].keys() & runs[second].keys())
    gain, change = paired_changes([(runs[first][s], runs[second][s]) for s in seeds])
    r = pearson(gain, change)
    most = gain.argsort(descending=True)[: len(gain) // 4]
    cells = [
        f"{labels[first]} against {labels[second]}",
        str(len(seeds)),
        str(len(gain)),
        f"{float(gain.mean()):+.3f}",
        "–" if r != r else f"{r:.3f}",
        f"{100 * float(change[most].mean()):+.1f}",
        f"{int((change > 0).sum())} / {int((change < 0).sum())}",
    ]
    return "\n".join(
        [
            "| pair | seeds | clip pairs | correlation gain | r(gain, change in right answers) "
            "| top-1 change, quarter gaining most | fixed / broken |",
            "| --- | --- | --- | --- | --- | --- | --- |",
            "| " + " | ".join(cells) + " |",
        ]
    )


def paired_changes(pairs: list[tuple[ClipAgreement, ClipAgreement]]) -> tuple[torch.Tensor, torch.Tensor]:
    """Per clip of every pair: the first run's gain in map correlation and its change in right answers
    (+1 fixed, −1 broken, 0 the same)."""
    gain = torch.cat([a.correlation - b.correlation for a, b in pairs])
    change = torch.cat([a.correct.float() - b.correct.float() for a, b in pairs])
    return gain, change


def correlation(clips: ClipAgreement) -> float:
    return float(clips.correlation.mean())


def agreement_half(clips: ClipAgreement, least: bool) -> torch.Tensor:
    """Whether the student is right on the half of the clips whose maps agree least (or most)."""
    order = clips.correlation.argsort(descending=not least)
    return clips.correct[order[: len(order) // 2]]


def top1(correct: torch.Tensor) -> float:
    return 100.0 * float(correct.float().mean())


def pearson(x: torch.Tensor, y: torch.Tensor) -> float:
    """Pearson's r; NaN where either has no variance."""
    return float(torch.corrcoef(torch.stack([x.float(), y.float()]))[0, 1])


def _mean(by_seed: dict[int, ClipAgreement], value: Callable[[ClipAgreement], float]) -> float:
    return statistics.mean(value(c) for c in by_seed.values())


def _mean_std(values: list[float], digits: int) -> str:
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
        help="methods to compare clip by clip (default: arctic arctic-no-arc)",
    )
    parser.add_argument("--threads", type=int, default=2, help="torch CPU threads (default: 2)")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    protocols = sorted(p for p in args.out.iterdir() if p.is_dir() and any(p.glob("seed*")))
    if not protocols:
        raise SystemExit(f"{args.out}: no PROTOCOL/seedN folders of an `arctic bench` run")
    for protocol_dir in protocols:
        found = students(protocol_dir, args.methods)
        if not found:
            print(f"{protocol_dir}: no finished IR student with a finished teacher")
            continue
        labels = {method: next(iter(by_seed.values())).record.label for method, by_seed in found.items()}
        runs = measure(found)
        print(f"\n## {protocol_dir.name}\n\n{method_table(runs, labels)}\n")
        if all(m in runs for m in args.pair):
            print(f"{pair_table(runs, labels, *args.pair)}\n")


if __name__ == "__main__":
    main()
