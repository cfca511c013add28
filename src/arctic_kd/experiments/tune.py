"""`arctic tune`: the same small grid over each method's main loss weight(s), scored on the validation split.

A *tune plan* (YAML preset in the package's `configs/tune/`) names a training config, one protocol, seeds,
the multiples of the defaults to try (`factors` for a method with one tuned weight, `pairs` for one with two:
as many points either way, so every method, ARCTIC included, gets the same budget) and per method the keys
it tunes. Each grid point is a bench variant (the method's own overrides, then its weights at the point's
multiples of their defaults) trained by the bench's runner: one RGB teacher per seed, every finished run
recorded and reused. A point scores the mean over seeds of its final epoch's VALIDATION top-1 (`data.val`,
carved out of the training split); the test split chooses nothing. Writes OUT/tuned.yaml (a variants file
for `arctic bench --variants`), OUT/tune.md and OUT/tune.json (the whole grid).
"""

from __future__ import annotations

import math
import statistics
from dataclasses import dataclass, field
from pathlib import Path

import yaml

from arctic_kd.config import Config
from arctic_kd.config.typed import plain_dict
from arctic_kd.errors import ArcticError, ConfigError
from arctic_kd.experiments.bench import BenchPlan, Variant, plan_runs, read_plan
from arctic_kd.experiments.runner import RunRecord, run_all, with_overrides
from arctic_kd.experiments.tables import markdown_table, write_summary
from arctic_kd.presets import TUNE_PRESETS


@dataclass
class TunePlan:
    """What `arctic tune` runs; a preset file holds these keys, command-line options replace some."""

    config: str = "demo"  # the training config (file or preset name) every run starts from
    protocol: str = "ntu60-xsub"
    seeds: tuple[int, ...] = (0,)
    factors: tuple[float, ...] = (0.1, 0.3, 1.0, 3.0, 10.0)  # multiples of one tuned weight's default
    pairs: tuple[tuple[float, float], ...] = ()  # multiples of two tuned weights' defaults: as many points
    methods: dict[str, tuple[str, ...]] = field(default_factory=dict)  # method -> the keys it tunes
    set: tuple[str, ...] = ()  # overrides applied to every run (before the variant's own)

    def __post_init__(self) -> None:
        if self.pairs and len(self.pairs) != len(self.factors):
            raise ConfigError(
                f"tune: every method gets the same number of grid points: {len(self.factors)} factors but "
                f"{len(self.pairs)} pairs"
            )
        for method, keys in self.methods.items():
            if len(keys) not in (1, 2) or (len(keys) == 2 and not self.pairs):
                raise ConfigError(
                    f"tune: method {method} tunes 1 key (factors) or 2 (pairs), got {list(keys)}"
                )
        if not self.seeds or not self.methods:
            raise ConfigError("tune: a plan needs at least one seed and one method")

    def points(self, method: str) -> list[tuple[float, ...]]:
        """The multiples of the defaults that `method` tries, one tuple per grid point."""
        return [(f,) for f in self.factors] if len(self.methods[method]) == 1 else list(self.pairs)


def load_tune_plan(name: str) -> TunePlan:
    """A tune plan: a YAML file path, or the name of a preset such as `demo`."""
    return read_plan(TunePlan, name, TUNE_PRESETS, "tune")[0]


def grid_variants(plan: TunePlan, variants: dict[str, Variant], base: Config) -> dict[str, dict]:
    """Per grid point its variant name -> {method, factors, settings, variant}; the defaults the factors
    multiply are the method's own (its variant's overrides on top of `base`)."""
    grid = {}
    for method, keys in plan.methods.items():
        if method not in variants:
            raise ArcticError(f"tune: unknown method {method!r}; known: {', '.join(sorted(variants))}")
        own = variants[method]
        defaults = plain_dict(with_overrides(base, own.set))
        for factors in plan.points(method):
            settings = {
                key: float(f"{_default(defaults, key) * f:.6g}") for key, f in zip(keys, factors, strict=True)
            }
            name = f"{method}@" + "x".join(f"{f:g}" for f in factors)
            label = f"{own.label} " + ", ".join(
                f"{key.rsplit('.', 1)[-1]}={v:g}" for key, v in settings.items()
            )
            changed = [*own.set, *(f"{key}={value!r}" for key, value in settings.items())]
            grid[name] = {
                "method": method,
                "factors": list(factors),
                "settings": settings,
                "variant": Variant(label, own.stage, tuple(changed)),
            }
    return grid


def _default(config: dict, key: str) -> float:
    value = config
    for part in key.split("."):
        if not isinstance(value, dict) or part not in value:
            raise ArcticError(f"tune: {key} is not a config key")
        value = value[part]
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ArcticError(f"tune: {key} is not a number ({value!r}), so it has no multiples")
    return float(value)


def run_tune(
    plan: TunePlan,
    variants: dict[str, Variant],
    base: Config,
    out: Path,
    progress: bool = True,
    command: str = "",
) -> dict:
    """Train what is missing of the grid, choose each method's point on validation top-1 and write
    OUT/tuned.yaml, OUT/tune.md and OUT/tune.json."""
    if not base.data.val.enabled:
        raise ArcticError("arctic tune scores on the validation split: data.val.enabled=false leaves none")
    grid = grid_variants(plan, variants, base)
    bench = BenchPlan(plan.config, (plan.protocol,), plan.seeds, tuple(grid), plan.set)
    runs = plan_runs(bench, {name: point["variant"] for name, point in grid.items()}, base, out)
    records = run_all(runs, progress)
    summary = summarise_tune(plan, grid, records, command)
    write_summary(out, "tune", summary, tune_markdown(summary))
    (out / "tuned.yaml").write_text(tuned_variants(summary, variants))
    return summary


def summarise_tune(plan: TunePlan, grid: dict[str, dict], records: list[RunRecord], command: str) -> dict:
    """Per method its grid points with the validation top-1 of each seed and their mean, and the chosen
    point: the best mean (on a tie, the one nearest the defaults, then the first)."""
    by_name: dict[str, list[float]] = {}
    for record in records:
        by_name.setdefault(record.name, []).append(record.val_top1)
    methods: dict[str, dict] = {}
    for name, point in grid.items():
        scores = by_name[name]
        if any(math.isnan(s) for s in scores):
            raise ArcticError(f"tune: run {name} recorded no validation accuracy (trained without data.val)")
        entry = {
            **{k: v for k, v in point.items() if k != "variant"},
            "name": name,
            "label": point["variant"].label,
        }
        entry |= {"val_top1": scores, "mean": statistics.fmean(scores)}
        methods.setdefault(point["method"], {"points": []})["points"].append(entry)
    for method in methods.values():
        method["chosen"] = max(method["points"], key=_preference)["name"]
    return {"command": command, "plan": plain_dict(plan), "methods": methods}


def _preference(point: dict) -> tuple[float, float]:
    """Higher is better: the mean validation top-1, then closeness to the defaults (factor 1)."""
    return point["mean"], -sum(abs(math.log(f)) for f in point["factors"])


def tuned_variants(summary: dict, variants: dict[str, Variant]) -> str:
    """A variants file: each tuned method at its chosen point, and every other variant of that method
    (its ablations, `METHOD-...`) with the chosen weights under its own overrides, which win."""
    chosen = {}
    for method, entry in summary["methods"].items():
        point = next(p for p in entry["points"] if p["name"] == entry["chosen"])
        chosen[method] = [f"{key}={value!r}" for key, value in point["settings"].items()]
    tuned = {}
    for name, variant in variants.items():
        method = name if name in chosen else next((m for m in chosen if name.startswith(f"{m}-")), None)
        if method is not None:
            settings = [*variants[method].set, *chosen[method], *variant.set]
            tuned[name] = {"label": variant.label, "stage": variant.stage, "set": settings}
    head = f"# Chosen by `{summary['command'] or 'arctic tune'}` on validation top-1 (tune.md): use with\n"
    head += "# arctic bench --variants THIS_FILE\n"
    return head + yaml.safe_dump(tuned, sort_keys=False, allow_unicode=True, width=200)


def tune_markdown(summary: dict) -> str:
    """The grid of every method: its points, the validation top-1 per seed and the mean, the chosen one."""
    plan = summary["plan"]
    lines = ["```bash", summary["command"], "```", ""] if summary["command"] else []
    lines.append(
        f"Protocol {plan['protocol']}, seeds {', '.join(map(str, plan['seeds']))}: each point's final-epoch "
        "top-1 on the validation split (data.val, out of the training split; the test split is not used), "
        "per seed and their mean; **bold**: the chosen point (best mean; on a tie, nearest the defaults)."
    )
    for method, entry in summary["methods"].items():
        rows = [
            [
                ("**{}**" if p["name"] == entry["chosen"] else "{}").format(
                    ", ".join(f"{k} = {v:g}" for k, v in p["settings"].items())
                ),
                " × ".join(f"{f:g}" for f in p["factors"]),
                " / ".join(f"{s:.1f}" for s in p["val_top1"]),
                f"{p['mean']:.1f}",
            ]
            for p in entry["points"]
        ]
        header = ["setting", "× default", "validation top-1 per seed", "mean"]
        lines += ["", f"**{method}**", "", *markdown_table(header, rows)]
    return "\n".join(lines)
