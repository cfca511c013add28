"""`arctic bench`: methods × seeds × protocols on the synthetic dataset, with tables and a plot.

A *plan* (YAML preset in the package's `configs/bench/`) names a training config, protocols, seeds and
methods. Each method is a *variant*: a named list of `--set` overrides (data, in `variants.yaml` there),
either a distillation or the IR-only cross-entropy baseline. Per protocol and seed one RGB teacher is
trained and every distillation of that seed uses its last checkpoint, so methods differ only in how they
learn from the same teacher. Every finished run leaves `result.json` in its folder; a second invocation
reuses it (after checking the run's config is still the one asked for) and trains only what is missing.
"""

from __future__ import annotations

import json
import math
import shutil
import statistics
import time
from dataclasses import MISSING, asdict, dataclass, field, fields, replace
from pathlib import Path
from typing import Any, Literal

import torch
import yaml

from arctic_kd.config import Config, apply_overrides, config_from_dict, load_config
from arctic_kd.data.cache import FrameCache
from arctic_kd.data.protocols import PROTOCOLS
from arctic_kd.distill_config import method_sections
from arctic_kd.engine.stages import TEACHER_ONLY_OPTIM, run_distill, run_train, teacher_optim
from arctic_kd.errors import ArcticError, ConfigError
from arctic_kd.presets import BENCH_PRESETS, CONFIG_PRESETS, find_preset, preset_names
from arctic_kd.progress import say
from arctic_kd.typed import from_dict, plain_dict
from arctic_kd.use.viz.curves import plot_run_curves

TEACHER = "rgb_teacher"
REFERENCE = "arctic"  # the method every other IR run is compared with, seed by seed


@dataclass
class Variant:
    """A bench entry: `distill` learns from the seed's teacher, `train` is the IR-only baseline."""

    label: str = ""  # the name shown in tables (default: the variant's name)
    stage: Literal["distill", "train"] = "distill"
    set: tuple[str, ...] = ()


@dataclass
class BenchPlan:
    """What a bench runs; a preset file holds these keys, command-line options replace them."""

    config: str = "demo"  # the training config (file or preset name) every run starts from
    protocols: tuple[str, ...] = ("ntu60-xsub", "ntu60-xview")
    seeds: tuple[int, ...] = (0, 1, 2)
    methods: tuple[str, ...] = ("ir_only", "arctic")
    set: tuple[str, ...] = ()  # overrides applied to every run (before the variant's own)


@dataclass
class RunResult:
    """What a finished run records in `result.json`."""

    name: str
    label: str
    modality: str
    protocol: str
    seed: int
    top1: float
    top5: float
    seconds: float
    config: dict[str, Any] = field(repr=False)
    multiview_top1: float = math.nan  # data.test_clips × test_crops views (NaN: recorded before it existed)
    # CPU float sums depend on the thread count, and a run is only bit-reproducible at the same one
    # (0: recorded before it was)
    threads: int = 0


@dataclass
class PlannedRun:
    name: str
    variant: Variant
    protocol: str
    seed: int
    config: Config
    folder: Path


def _read_yaml(path: Path) -> Any:
    try:
        return yaml.safe_load(path.read_text())
    except OSError as error:
        raise ConfigError(f"{path}: cannot read: {error.strerror}") from None
    except yaml.YAMLError as error:
        raise ConfigError(f"{path}: not valid YAML: {error}") from None


def load_variants(*paths: Path) -> dict[str, Variant]:
    """Variants by name; later files add to or replace earlier ones."""
    variants: dict[str, Variant] = {}
    for path in paths:
        data = _read_yaml(Path(path))
        if not isinstance(data, dict):
            raise ConfigError(f"{path}: a variants file maps names to {{label, stage, set}}")
        for name, spec in data.items():
            variant = from_dict(Variant, spec, f"{path}: {name}")
            variants[str(name)] = Variant(variant.label or str(name), variant.stage, variant.set)
    return variants


def load_plan(name: str) -> BenchPlan:
    """A bench plan: a YAML file path, or the name of a preset such as `quick` or `full`."""
    path = find_preset(name, BENCH_PRESETS, "bench")
    return from_dict(BenchPlan, _read_yaml(path) or {}, str(path))


def check_plan(plan: BenchPlan, variants: dict[str, Variant]) -> None:
    """Unknown method or protocol names are errors before anything runs."""
    unknown = [m for m in plan.methods if m not in variants]
    if unknown:
        raise ArcticError(f"unknown method {unknown[0]!r}; known: {', '.join(sorted(variants))}")
    bad = [p for p in plan.protocols if p not in PROTOCOLS]
    if bad:
        raise ArcticError(f"unknown protocol {bad[0]!r}; known: {', '.join(PROTOCOLS)}")
    if not plan.methods or not plan.seeds or not plan.protocols:
        raise ArcticError("a bench needs at least one method, seed and protocol")


def with_overrides(config: Config, overrides: list[str] | tuple[str, ...]) -> Config:
    return config_from_dict(apply_overrides(config.to_dict(), overrides))


def plan_runs(
    plan: BenchPlan, variants: dict[str, Variant], base: Config, out: Path
) -> tuple[list[PlannedRun], list[PlannedRun]]:
    """The teachers and the method runs, fully configured; every name and override is checked up front."""
    check_plan(plan, variants)
    teachers, runs = [], []
    teacher_variant = Variant(label="RGB teacher", stage="train")
    for protocol in plan.protocols:
        for seed in plan.seeds:
            folder = out / protocol / f"seed{seed}"
            config = with_overrides(base, [f"data.protocol={protocol}", f"seed={seed}"])
            teachers.append(PlannedRun(TEACHER, teacher_variant, protocol, seed, config, folder / TEACHER))
            for name in plan.methods:
                variant = variants[name]
                overrides = [*variant.set]
                if variant.stage == "distill":
                    overrides.append(f"distill.teacher={folder / TEACHER / 'last.pt'}")
                try:
                    run_config = with_overrides(config, overrides)
                except ConfigError as error:
                    raise ArcticError(f"method {name}: {error}") from None
                runs.append(PlannedRun(name, variant, protocol, seed, run_config, folder / name))
    return teachers, runs


def run_bench(
    plan: BenchPlan,
    variants: dict[str, Variant],
    base: Config,
    out: Path,
    progress: bool = True,
    command: str = "",
    dataset: str = "",
) -> dict:
    """Train what is missing, then write OUT/bench.json, OUT/bench.md and OUT/bench.png; `command` and
    `dataset` (which data, e.g. a synthetic render's settings) are written above the tables."""
    teachers, runs = plan_runs(plan, variants, base, out)
    planned = [run for teacher in teachers for run in (teacher, *_runs_of(runs, teacher))]
    done = [_finished(run) for run in planned]  # checks every recorded config before training anything
    left = done.count(None)
    say(f"{len(planned)} runs, {len(planned) - left} done before, {left} to train")
    if left:
        _warn_of_other_thread_counts([r for r in done if r is not None])
    cache = FrameCache(base.data.cache_side) if base.data.cache else None
    results, trained_seconds, trained = [], 0.0, 0
    for index, (run, result) in enumerate(zip(planned, done, strict=True), 1):
        where = f"[{index}/{len(planned)}] {run.protocol} seed {run.seed} {run.name}"
        if result is None:
            say(f"{where}: training")
            result = _train(run, cache, progress)
            trained_seconds, trained, left = trained_seconds + result.seconds, trained + 1, left - 1
            eta = f"; about {left * trained_seconds / trained / 60:.0f} min left" if left else ""
            say(f"{where}: top-1 {result.top1:.1f}, top-5 {result.top5:.1f} in {result.seconds:.0f} s{eta}")
        results.append(result)
    summary = summarise(plan, variants, results, command, dataset)
    out.mkdir(parents=True, exist_ok=True)
    (out / "bench.json").write_text(json.dumps(summary, indent=2) + "\n")
    (out / "bench.md").write_text(bench_markdown(summary) + "\n")
    bench_plot(summary, out / "bench.png")
    return summary


def _warn_of_other_thread_counts(recorded: list[RunResult]) -> None:
    """CPU float sums depend on the thread count: recorded runs stand, but a run trained now at another
    count is not bit-comparable with them (in effect, another seed)."""
    now = torch.get_num_threads()
    other = [r for r in recorded if r.threads not in (0, now)]
    if other:
        counts = sorted({r.threads for r in other})
        say(
            f"note: {len(other)} of {len(recorded)} recorded runs trained at {'/'.join(map(str, counts))} "
            f"threads, this process uses {now}: runs trained now are not bit-comparable with them "
            f"(OMP_NUM_THREADS={counts[0]} matches)"
        )


def _runs_of(runs: list[PlannedRun], teacher: PlannedRun) -> list[PlannedRun]:
    return [r for r in runs if (r.protocol, r.seed) == (teacher.protocol, teacher.seed)]


def _comparable(config: Config, run: PlannedRun) -> dict:
    """What a run's result depends on. The teacher reads its own optimisation settings and the IR-only
    baseline none of the teacher's, and neither reads `distill`; a distillation reads only its method's
    sections (a new ARCTIC default leaves the baselines' runs valid) and everything its teacher reads."""
    if run.variant.stage == "distill":
        data = config.to_dict()
        distill = data["distill"]
        kept = ("method", *method_sections(distill["method"]))
        return {**data, "distill": {k: distill[k] for k in kept if k in distill}}
    teacher = run.name == TEACHER
    optim = teacher_optim(config.optim) if teacher else config.optim
    data = replace(config, optim=optim).to_dict()
    for key in TEACHER_ONLY_OPTIM:
        del data["optim"][key]
    return {k: v for k, v in data.items() if k not in ("distill", "student" if teacher else "teacher")}


def read_record(path: Path) -> RunResult:
    """A `result.json`; a damaged one (written by hand, or not by this tool) is an error that names it."""
    try:
        record = json.loads(path.read_text())
    except ValueError as error:
        problem = f"not JSON: {error}"
    else:
        problem = _record_problem(record)
        if not problem:
            return RunResult(**record)
    raise ArcticError(f"{path} is not a finished run's record ({problem}); delete it to train that run again")


def _record_problem(record: Any) -> str:
    """What keeps a parsed `result.json` from being a `RunResult` ("" when nothing does)."""
    if not isinstance(record, dict):
        return f"a JSON {type(record).__name__}, not an object"
    known = fields(RunResult)
    missing = sorted({f.name for f in known if f.default is MISSING} - record.keys())
    unknown = sorted(record.keys() - {f.name for f in known})  # e.g. written by a newer version of this tool
    mistyped = sorted(
        f"{f.name} ({type(record[f.name]).__name__})"
        for f in known
        if f.name in record and not _is_instance(record[f.name], _RECORD_TYPES[f.type])
    )
    found = (("missing", missing), ("unknown", unknown), ("of the wrong type", mistyped))
    return "; ".join(f"{label}: {', '.join(keys)}" for label, keys in found if keys)


# what JSON gives for each `RunResult` annotation (a float field may hold an integer, as JSON writes 90.0)
_RECORD_TYPES: dict[str, type | tuple[type, ...]] = {
    "str": str,
    "int": int,
    "float": (int, float),
    "dict[str, Any]": dict,
}


def _is_instance(value: Any, expected: type | tuple[type, ...]) -> bool:
    return isinstance(value, expected) and not isinstance(value, bool)  # JSON true is no seed


def _finished(run: PlannedRun) -> RunResult | None:
    """The recorded result of a finished run, or None; a result from another config is an error."""
    path = run.folder / "result.json"
    if not path.is_file():
        return None
    result = read_record(path)
    try:  # keys added to the config since the run take their defaults, which keep the old behaviour
        recorded = config_from_dict(result.config, str(path))
    except ConfigError as error:
        raise ArcticError(
            f"{run.folder} holds a config this version cannot read ({error}); "
            "use another --out or delete that folder"
        ) from error
    old, wanted = _comparable(recorded, run), _comparable(run.config, run)
    if old != wanted:
        key = _first_difference(old, wanted)
        raise ArcticError(
            f"{run.folder} was run with another config ({key}: {_lookup(old, key)!r}, "
            f"now {_lookup(wanted, key)!r}); use another --out or delete that folder"
        )
    return result


def _first_difference(old: dict, new: dict, prefix: str = "") -> str:
    for key in sorted(set(old) | set(new)):
        a, b = old.get(key), new.get(key)
        if a != b:
            if isinstance(a, dict) and isinstance(b, dict):
                return _first_difference(a, b, f"{prefix}{key}.")
            return f"{prefix}{key}"
    return prefix.rstrip(".")


def _lookup(data: dict, key: str) -> Any:
    for part in key.split("."):
        data = data.get(part) if isinstance(data, dict) else None
    return data


def _train(run: PlannedRun, cache: FrameCache | None, progress: bool) -> RunResult:
    """Train one run from scratch (an unfinished folder is cleared first) and record its result."""
    if run.folder.exists():
        shutil.rmtree(run.folder)
    start = time.perf_counter()
    if run.variant.stage == "distill":
        outcome = run_distill(run.config, run.folder, cache, progress)
        modality = "ir"
    else:
        modality = "rgb" if run.name == TEACHER else "ir"
        outcome = run_train(run.config, modality, run.folder, cache, progress)
    plot_run_curves(outcome)
    final = outcome["final"]
    result = RunResult(
        run.name,
        run.variant.label,
        modality,
        run.protocol,
        run.seed,
        final["top1"],
        final["top5"],
        time.perf_counter() - start,
        run.config.to_dict(),
        outcome["multiview"]["top1"],
        torch.get_num_threads(),
    )
    partial = run.folder / "result.json.partial"  # renamed when complete: a kill never leaves half a record
    partial.write_text(json.dumps(asdict(result), indent=2) + "\n")
    partial.replace(run.folder / "result.json")
    return result


ACCURACIES = ("top1", "top5", "multiview_top1")


def mean_std(values: list[float]) -> dict | None:
    """None where a value is unknown (NaN: a run recorded before multi-view testing existed)."""
    if any(math.isnan(v) for v in values):
        return None
    return {
        "mean": statistics.fmean(values),
        "std": statistics.stdev(values) if len(values) > 1 else 0.0,
        "values": values,
    }


def gap_recovered(teacher: float, ir_only: float, method: float) -> float | None:
    """Share of the teacher–IR-only top-1 gap a method closes, in percent; None without a gap."""
    gap = teacher - ir_only
    return 100.0 * (method - ir_only) / gap if gap > 0 else None


def paired_difference(reference: list[float], method: list[float]) -> dict | None:
    """Per-seed top-1 differences from the reference run on the same teacher: their mean, its standard
    error and on how many seeds the method is below. Seeds share their teacher and data order, so the
    paired difference is far less noisy than the difference of two means (None with one seed)."""
    differences = [m - r for m, r in zip(method, reference, strict=True)]
    if len(differences) < 2:
        return None
    return {
        "mean": statistics.fmean(differences),
        "se": statistics.stdev(differences) / math.sqrt(len(differences)),
        "below": sum(d < 0 for d in differences),
        "values": differences,
    }


def summarise(
    plan: BenchPlan, variants: dict[str, Variant], results: list[RunResult], command: str, dataset: str = ""
) -> dict:
    """Per protocol and method: mean ± std over seeds of top-1, top-5, multi-view top-1, wall time, the
    gap recovered and the paired difference from ARCTIC."""
    names = [TEACHER, *plan.methods]
    protocols = {}
    for protocol in plan.protocols:
        mine = [r for r in results if r.protocol == protocol]
        by_seed = {(r.name, r.seed): r for r in mine}
        methods = {}
        for name in names:
            rows = [by_seed[(name, seed)] for seed in plan.seeds]
            entry = {
                "label": rows[0].label,
                "modality": rows[0].modality,
                **{key: mean_std([getattr(r, key) for r in rows]) for key in (*ACCURACIES, "seconds")},
            }
            if "ir_only" in plan.methods and name not in (TEACHER, "ir_only"):
                gaps = [
                    gap_recovered(by_seed[(TEACHER, s)].top1, by_seed[("ir_only", s)].top1, r.top1)
                    for s, r in zip(plan.seeds, rows, strict=True)
                ]
                known = [g for g in gaps if g is not None]
                entry["gap_recovered"] = mean_std(known) if known else None
            if REFERENCE in plan.methods and name not in (TEACHER, REFERENCE):
                reference = [by_seed[(REFERENCE, s)].top1 for s in plan.seeds]
                entry["vs_reference"] = paired_difference(reference, [r.top1 for r in rows])
            methods[name] = entry
        protocols[protocol] = methods
    return {
        "command": command,
        "dataset": dataset,
        "plan": plain_dict(plan),
        "variants": {name: plain_dict(variants[name]) for name in plan.methods},
        "protocols": protocols,
    }


def _pm(stats: dict | None, digits: int = 1, unit: str = "") -> str:
    if stats is None:
        return "–"
    return f"{stats['mean']:.{digits}f} ± {stats['std']:.{digits}f}{unit}"


def _paired(stats: dict | None) -> str:
    if stats is None:
        return "–"
    seeds = len(stats["values"])
    return f"{stats['mean']:+.1f} ± {stats['se']:.1f} SE, below on {stats['below']}/{seeds}"


def bench_markdown(summary: dict) -> str:
    """One table per protocol; the command and the seeds above it."""
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
            "teacher), ± its standard error, and on how many seeds the method is below ARCTIC."
        )
    for protocol, methods in summary["protocols"].items():
        with_gap = any("gap_recovered" in m for m in methods.values())
        with_paired = any(m.get("vs_reference") for m in methods.values())
        header = "| method | modality | top-1 | top-5 | multi-view top-1 |"
        header += " gap recovered |" if with_gap else ""
        header += f" top-1 − {methods[REFERENCE]['label']}, paired |" if with_paired else ""
        lines += ["", f"**{protocol}**", "", header + " wall time per run |"]
        lines.append("| --- " * (header.count("|")) + "|")
        for m in methods.values():
            gap = f" {_pm(m.get('gap_recovered'), 0, ' %')} |" if with_gap else ""
            paired = f" {_paired(m.get('vs_reference'))} |" if with_paired else ""
            lines.append(
                f"| {m['label']} | {m['modality'].upper()} | {_pm(m['top1'])} | {_pm(m['top5'])} |"
                f" {_pm(m['multiview_top1'])} |{gap}{paired}"
                f" {m['seconds']['mean']:.0f} s |"
            )
    return "\n".join(lines)


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


def describe(variants: dict[str, Variant]) -> str:
    """The known variants and presets, for `arctic bench --list`."""
    lines = ["methods:"]
    width = max(map(len, variants))
    for name, variant in variants.items():
        what = "IR-only cross-entropy" if variant.stage == "train" else " ".join(variant.set) or "defaults"
        lines.append(f"  {name:<{width}}  {variant.label}: {what}")
    lines.append(f"presets: {', '.join(preset_names(BENCH_PRESETS))}")
    lines.append(f"(bench presets and variants from {BENCH_PRESETS}; training configs from {CONFIG_PRESETS})")
    return "\n".join(lines)


def build_base(plan: BenchPlan, config_path: Path, overrides: list[str], data_root: str) -> Config:
    """The config every run starts from: the plan's config file, the plan's and the user's overrides."""
    return load_config(config_path, [*plan.set, *overrides, f"data.root={data_root}"])
