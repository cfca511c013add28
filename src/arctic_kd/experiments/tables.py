"""The one Markdown table writer, the tables of the demo and the bench built with it, and the bench plot."""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path

from arctic_kd.experiments.runner import TEACHER, RunRecord
from arctic_kd.experiments.stats import REFERENCE


def markdown_table(header: Sequence[str], rows: Sequence[Sequence[str]]) -> list[str]:
    """A Markdown table's lines: the header, its rule and one line per row."""
    return [_line(header), "| --- " * len(header) + "|", *map(_line, rows)]


def _line(cells: Sequence[str]) -> str:
    return "| " + " | ".join(cells) + " |"


def demo_table(records: list[RunRecord]) -> str:
    """One line per run of a single seed: its final epoch's accuracies and wall time."""
    header = ("method", "modality", "top-1", "top-5", "multi-view top-1", "wall time")
    rows = [
        (
            r.label + (" ⚠ weak" if r.teacher_warnings else ""),
            r.modality.upper(),
            f"{r.top1:.1f}",
            f"{r.top5:.1f}",
            f"{r.multiview_top1:.1f}",
            f"{r.seconds:.0f} s",
        )
        for r in records
    ]
    return "\n".join(markdown_table(header, rows))


def _pm(stats: dict | None, digits: int = 1, unit: str = "") -> str:
    if stats is None:
        return "–"
    return f"{stats['mean']:.{digits}f} ± {stats['std']:.{digits}f}{unit}"


def _paired(stats: dict | None) -> str:
    if stats is None:
        return "–"
    seeds = len(stats["values"])
    low, high = stats["ci95"]
    interval = f"95 % CI [{low:+.1f}, {high:+.1f}]"
    return f"{stats['mean']:+.1f} ± {stats['se']:.1f} SE, {interval}, below on {stats['below']}/{seeds}"


def bench_markdown(summary: dict) -> str:
    """One table per protocol of a bench summary (`bench.summarise`); the command and the seeds above."""
    plan = summary["plan"]
    lines = []
    if summary["command"]:
        lines += ["```bash", summary["command"], "```", ""]
    if summary["dataset"]:
        lines += [f"Data: {summary['dataset']}.", ""]
    lines.append(
        f"Seeds {', '.join(map(str, plan['seeds']))}; mean ± std over seeds of the final epoch's accuracy."
    )
    if REFERENCE in plan["methods"] and len(plan["seeds"]) > 1:
        lines.append(
            "Paired: the mean of the per-seed top-1 differences from the same seed's ARCTIC run (same "
            "teacher), ± its standard error, its 95 % interval (mean ± t_{n−1}·SE, Student's t over the n "
            "seeds), and on how many seeds the method is below ARCTIC. Resolved at 95 %: the half-width "
            "t_{n−1}·s/√n of that interval for s the pooled (root-mean-square) standard deviation of every "
            "method's paired differences on the protocol; a smaller mean difference is a tie."
        )
    for protocol, methods in summary["protocols"].items():
        with_gap = any("gap_recovered" in m for m in methods.values())
        with_paired = any(m.get("vs_reference") for m in methods.values())
        header = ["method", "modality", "top-1", "top-5", "multi-view top-1"]
        header += ["gap recovered"] if with_gap else []
        header += [f"top-1 − {methods[REFERENCE]['label']}, paired"] if with_paired else []
        rows = []
        for m in methods.values():
            row = [
                m["label"] + (" ⚠ weak" if m.get("health", {}).get("warnings") else ""),
                m["modality"].upper(),
                _pm(m["top1"]),
                _pm(m["top5"]),
                _pm(m["multiview_top1"]),
            ]
            row += [_pm(m.get("gap_recovered"), 0, " %")] if with_gap else []
            row += [_paired(m.get("vs_reference"))] if with_paired else []
            rows.append([*row, f"{m['seconds']['mean']:.0f} s"])
        lines += ["", f"**{protocol}**", "", *markdown_table([*header, "wall time per run"], rows)]
        resolution = summary.get("resolvable", {}).get(protocol)
        if resolution:
            lines += [
                "",
                f"Resolved at 95 %: paired differences of at least {resolution['half_width']:.1f} points "
                f"({resolution['seeds']} seeds, pooled paired std {resolution['sd']:.1f}).",
            ]
    return "\n".join([*lines, *_teacher_lines(summary["protocols"])])


def _teacher_lines(protocols: dict) -> list[str]:
    """The teachers of every table: mean and weakest seed, how often not above IR-only, their warnings
    (`engine.health`); nothing for a bench.json written before teachers were checked."""
    rows = []
    for name, methods in protocols.items():
        teacher, ir_only = methods[TEACHER], methods.get("ir_only")
        health = teacher.get("health")
        if health is None:
            continue
        below = health.get("below_ir_only")
        warned = "; ".join(f"seed {seed}: {', '.join(w)}" for seed, w in health["warnings"].items())
        rows.append(
            [
                name,
                _pm(teacher["top1"]),
                f"{health['min_top1']:.1f}",
                _pm(ir_only["top1"]) if ir_only else "–",
                f"{len(below['seeds'])}/{below['of']}" if below else "–",
                warned or "none",
            ]
        )
    if not rows:
        return []
    header = [
        "table",
        "teacher top-1",
        "weakest seed",
        "IR-only top-1",
        "seeds not above IR-only",
        "warnings",
    ]
    return ["", "**RGB teachers** (⚠ weak: see the warnings)", "", *markdown_table(header, rows)]


def bench_plot(summary: dict, path: Path) -> None:
    """Grouped bars: mean top-1 per method (one bar per protocol), whiskers at ± one std."""
    from matplotlib.figure import Figure

    protocols = list(summary["protocols"])
    names = list(summary["protocols"][protocols[0]])
    labels = [summary["protocols"][protocols[0]][n]["label"] for n in names]
    figure = Figure(figsize=(max(6.0, 0.8 * len(names) + 2), 4.0), layout="constrained")
    axes = figure.subplots()
    width = 0.8 / len(protocols)
    for offset, protocol in enumerate(protocols):
        stats = [summary["protocols"][protocol][n]["top1"] for n in names]
        positions = [i + (offset - (len(protocols) - 1) / 2) * width for i in range(len(names))]
        axes.bar(
            positions,
            [s["mean"] for s in stats],
            width,
            yerr=[s["std"] for s in stats],
            capsize=3,
            label=protocol,
        )
    axes.set_xticks(range(len(names)), labels, rotation=35, ha="right")
    axes.set_ylim(0, 100)
    axes.legend(loc="lower center", bbox_to_anchor=(0.5, 1.0), ncols=len(protocols), frameon=False)
    seeds = len(summary["plan"]["seeds"])
    axes.set_ylabel(f"top-1 (%), mean ± std over {seeds} seed{'s' * (seeds > 1)}")
    axes.grid(axis="y", alpha=0.3)
    figure.savefig(path, dpi=120)


def write_summary(out: Path, name: str, summary: dict, markdown: str) -> None:
    """OUT/NAME.json (the summary, as data) and OUT/NAME.md (its tables): what every experiment writes."""
    out.mkdir(parents=True, exist_ok=True)
    (out / f"{name}.json").write_text(json.dumps(summary, indent=2) + "\n")
    (out / f"{name}.md").write_text(markdown + "\n")
