"""`arctic bench`: methods × seeds × protocols, with tables and a plot, as a plan of the runner.

A *plan* (YAML preset in the package's `configs/bench/`) names a training config, protocols, seeds and
methods. Each method is a *variant*: a named list of `--set` overrides (data, in `variants.yaml` there),
either a distillation or the IR-only cross-entropy baseline. Per protocol and seed one RGB teacher is
trained and every distillation of that seed uses its last checkpoint, so methods differ only in how they
learn from the same teacher. Every finished run leaves `result.json` in its folder; a second invocation
reuses it (after checking the run's config is still the one asked for) and trains only what is missing.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal, TypeVar

import yaml

from arctic_kd.config import Config, DataConfig, load_config
from arctic_kd.config.typed import from_dict, plain_dict
from arctic_kd.data.protocols import PROTOCOLS
from arctic_kd.data.synth import SynthConfig, describe_settings
from arctic_kd.data.synth.folder import is_foreign_folder
from arctic_kd.errors import ArcticError, ConfigError
from arctic_kd.experiments.demo import ensure_synthetic
from arctic_kd.experiments.runner import TEACHER, PlannedRun, RunRecord, run_all, with_overrides
from arctic_kd.experiments.stats import (
    REFERENCE,
    gap_recovered,
    mean_std,
    paired_difference,
    resolvable_difference,
)
from arctic_kd.experiments.tables import bench_markdown, bench_plot, write_summary
from arctic_kd.presets import BENCH_PRESETS, CONFIG_PRESETS, find_preset, preset_names
from arctic_kd.progress import say

if TYPE_CHECKING:
    from arctic_kd.experiments.tune import TunePlan

ACCURACIES = ("top1", "top5", "multiview_top1")

T = TypeVar("T")


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
    # synthetic renders to bench on, name → `arctic synth` settings (SynthConfig's fields): each rendered
    # into DATA/NAME, its runs in OUT/NAME/PROTOCOL/seedN; none: the one dataset in --data
    renders: dict = field(default_factory=dict)


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


def read_plan(kind: type[T], name: str, presets: Path, command: str) -> tuple[T, Path]:
    """A plan of `kind` (bench, tune) from a YAML file path or the name of one of `presets`, checked key by
    key; its path too, for the errors that name it."""
    path = find_preset(name, presets, command)
    return from_dict(kind, _read_yaml(path) or {}, str(path)), path


def load_plan(name: str) -> BenchPlan:
    """A bench plan: a YAML file path, or the name of a preset such as `quick` or `full`; its renders'
    settings are checked here, before anything runs."""
    plan, path = read_plan(BenchPlan, name, BENCH_PRESETS, "bench")
    render_settings(plan, str(path))
    return plan


def render_settings(plan: BenchPlan, where: str = "bench plan") -> dict[str, SynthConfig]:
    """The plan's renders as synthetic dataset settings, by name; a bad one is an error naming it."""
    renders = {}
    for name, settings in plan.renders.items():
        try:
            renders[str(name)] = from_dict(SynthConfig, settings, f"{where}: renders: {name}")
        except ValueError as error:  # SynthConfig's own range check
            raise ConfigError(f"{where}: renders: {name}: {error}") from None
    return renders


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


def build_base(plan: BenchPlan | TunePlan, config_path: Path, overrides: list[str], data_root: str) -> Config:
    """The config every run starts from: the plan's config file, the plan's and the user's overrides."""
    return load_config(config_path, [*plan.set, *overrides, f"data.root={data_root}"])


def plan_runs(plan: BenchPlan, variants: dict[str, Variant], base: Config, out: Path) -> list[PlannedRun]:
    """Per protocol and seed its teacher, then every method, in the order they train, fully configured
    (in OUT/PROTOCOL/seedN/NAME); every name and override is checked up front."""
    check_plan(plan, variants)
    runs = []
    for protocol in plan.protocols:
        for seed in plan.seeds:
            folder = out / protocol / f"seed{seed}"
            config = with_overrides(base, [f"data.protocol={protocol}", f"seed={seed}"])
            runs.append(
                PlannedRun(TEACHER, "RGB teacher", "train", "rgb", protocol, seed, config, folder / TEACHER)
            )
            for name in plan.methods:
                variant = variants[name]
                overrides = [*variant.set]
                if variant.stage == "distill":
                    overrides.append(f"distill.teacher={folder / TEACHER / 'last.pt'}")
                try:
                    run_config = with_overrides(config, overrides)
                except ConfigError as error:
                    raise ArcticError(f"method {name}: {error}") from None
                run = PlannedRun(
                    name, variant.label, variant.stage, "ir", protocol, seed, run_config, folder / name
                )
                runs.append(run)
    return runs


def bench_dataset(root: Path, synth: SynthConfig | None, base: Config) -> str:
    """Make sure the bench's data is there: a dataset in `root` that is not an NTU-layout synthetic render
    (a real one, or a PKU-MMD render) is used as it is, anything else is the synthetic one `synth` asks
    for (rendered if absent; see `ensure_synthetic`; the default `data.root` is always synthetic). Returns
    the line that bench.md shows above its tables."""
    if synth is None and root != Path(DataConfig.root) and is_foreign_folder(root):
        say(f"using the dataset in {root} as it is (not a synthetic render of the NTU layout)")
        if base.data.cache and not base.data.store:
            say(
                "data.cache is on: every video of the protocol is decoded into memory first; for a full-size "
                "dataset use --set data.cache=false, or a clip store (arctic prepare, --set data.store=STORE)"
            )
        return f"{root} ({base.data.dataset} layout, used as it is)"
    return f"{root}, synthetic: {describe_settings(ensure_synthetic(root, synth))}"


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
    `dataset` (which data, e.g. a synthetic render's settings) are written above the tables. With renders,
    each is rendered (if absent) into `base.data.root`/NAME and benched like a protocol of its own: its
    tables are named NAME/PROTOCOL, and `dataset` lists every render."""
    if not plan.renders:
        records = run_all(plan_runs(plan, variants, base, out), progress)
        summary = summarise(plan, variants, records, command, dataset)
    else:
        parts, lines = {}, []
        for name, settings in render_settings(plan).items():
            root = Path(base.data.root) / name
            lines.append(f"{name}: {root}, synthetic: {describe_settings(ensure_synthetic(root, settings))}")
            config = with_overrides(base, [f"data.root={root}"])
            records = run_all(plan_runs(plan, variants, config, out / name), progress)
            for protocol, methods in summarise(plan, variants, records, "")["protocols"].items():
                parts[f"{name}/{protocol}"] = methods
        summary = {**summarise(plan, variants, [], command, "; ".join(lines), []), "protocols": parts}
    write_summary(out, "bench", summary, bench_markdown(summary))
    bench_plot(summary, out / "bench.png")
    return summary


def summarise(
    plan: BenchPlan,
    variants: dict[str, Variant],
    records: list[RunRecord],
    command: str,
    dataset: str = "",
    protocol_names: tuple[str, ...] | list[str] | None = None,
) -> dict:
    """Per protocol (those of `protocol_names`, default the plan's) and method: mean ± std over seeds of
    top-1, top-5, multi-view top-1, wall time, the gap recovered and the paired difference from ARCTIC;
    for the teacher also its weakest seed, on how many seeds it is not above IR-only, and its warnings;
    per protocol, the smallest paired difference the run resolves ("resolvable")."""
    names = [TEACHER, *plan.methods]
    protocols = {}
    for protocol in plan.protocols if protocol_names is None else protocol_names:
        by_seed = {(r.name, r.seed): r for r in records if r.protocol == protocol}
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
        methods[TEACHER]["health"] = _teacher_health(plan, by_seed)
        protocols[protocol] = methods
    paired = {
        p: [m["vs_reference"] for m in ms.values() if m.get("vs_reference")] for p, ms in protocols.items()
    }
    return {
        "command": command,
        "dataset": dataset,
        "plan": plain_dict(plan),
        "variants": {name: plain_dict(variants[name]) for name in plan.methods},
        "protocols": protocols,
        "resolvable": {p: resolvable_difference(found) for p, found in paired.items() if found},
    }


def _teacher_health(plan: BenchPlan, by_seed: dict[tuple[str, int], RunRecord]) -> dict:
    """The teachers of one protocol: the weakest seed's top-1, the seeds not above the IR-only run (when
    the plan has one) and every seed's warnings (`engine.health`)."""
    teachers = [by_seed[(TEACHER, seed)] for seed in plan.seeds]
    health: dict[str, Any] = {"min_top1": min(t.top1 for t in teachers)}
    if "ir_only" in plan.methods:
        below = [
            s for s, t in zip(plan.seeds, teachers, strict=True) if t.top1 <= by_seed[("ir_only", s)].top1
        ]
        health["below_ir_only"] = {"seeds": below, "of": len(plan.seeds)}
    health["warnings"] = {str(t.seed): t.teacher_warnings for t in teachers if t.teacher_warnings}
    return health


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
