"""The one runner behind `arctic demo` and `arctic bench`: planned runs trained in order, their records.

A run is one stage (`run_train` or `run_distill`) on a fully built config, in a folder of its own. The runner
trains the runs in the order given, on one in-memory frame cache shared by all of them (each video is
decoded once), and says before each which network trains and about how long the rest takes. A resumable
plan (the bench's) records every finished run in its folder's `result.json` and, on a second invocation,
reuses it after asking the stage what the run's result depends on (`engine.stages.what_it_reads`).
"""

from __future__ import annotations

import json
import math
import shutil
import time
from dataclasses import MISSING, asdict, dataclass, field, fields
from pathlib import Path
from typing import Any

import torch

from arctic_kd.config import Config, ModelConfig, apply_overrides, config_from_dict
from arctic_kd.data.cache import FrameCache
from arctic_kd.engine.health import below_ir_only, warning_lines
from arctic_kd.engine.stages import Stage, run_distill, run_train, teacher_optim, what_it_reads
from arctic_kd.errors import ArcticError, ConfigError
from arctic_kd.progress import say
from arctic_kd.use.viz.curves import plot_run_curves

TEACHER = "rgb_teacher"  # the RGB teacher's run (and folder) name, next to the runs that learn from it


@dataclass(frozen=True)
class PlannedRun:
    """One run to train: `name` is its folder's name and its key in tables, `label` what tables show."""

    name: str
    label: str
    stage: Stage
    modality: str  # what the trained network sees: "rgb" (the teacher) or "ir"
    protocol: str
    seed: int
    config: Config
    folder: Path


@dataclass
class RunRecord:
    """What a finished run records in `result.json` (the fields are that file's keys)."""

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
    # the final epoch's top-1 on the validation split (data.val; NaN: none, or recorded before it existed),
    # what `arctic tune` scores: never the test split
    val_top1: float = math.nan
    # why the RGB teacher looks weak (`engine.health`); for a teacher, also once an IR-only run beside it
    # is known, in the records `run_all` returns (its result.json keeps what training found)
    teacher_warnings: list[str] = field(default_factory=list)

    @classmethod
    def read(cls, path: Path) -> RunRecord:
        """A `result.json`; a damaged one (written by hand, or not by this tool) is an error naming it."""
        try:
            record = json.loads(path.read_text())
        except ValueError as error:
            problem = f"not JSON: {error}"
        else:
            problem = _record_problem(record)
            if not problem:
                return cls(**record)
        raise ArcticError(
            f"{path} is not a finished run's record ({problem}); delete it to train that run again"
        )

    def write(self, folder: Path) -> None:
        """`folder/result.json`, renamed into place when complete: a kill never leaves half a record."""
        partial = folder / "result.json.partial"
        partial.write_text(json.dumps(asdict(self), indent=2) + "\n")
        partial.replace(folder / "result.json")


def _record_problem(record: Any) -> str:
    """What keeps a parsed `result.json` from being a `RunRecord` ("" when nothing does)."""
    if not isinstance(record, dict):
        return f"a JSON {type(record).__name__}, not an object"
    known = fields(RunRecord)
    required = {f.name for f in known if f.default is MISSING and f.default_factory is MISSING}
    missing = sorted(required - record.keys())
    unknown = sorted(record.keys() - {f.name for f in known})  # e.g. written by a newer version of this tool
    mistyped = sorted(
        f"{f.name} ({type(record[f.name]).__name__})"
        for f in known
        if f.name in record and not _is_instance(record[f.name], _RECORD_TYPES[f.type])
    )
    found = (("missing", missing), ("unknown", unknown), ("of the wrong type", mistyped))
    return "; ".join(f"{label}: {', '.join(keys)}" for label, keys in found if keys)


# what JSON gives for each `RunRecord` annotation (a float field may hold an integer, as JSON writes 90.0)
_RECORD_TYPES: dict[str, type | tuple[type, ...]] = {
    "str": str,
    "int": int,
    "float": (int, float),
    "dict[str, Any]": dict,
    "list[str]": list,
}


def _is_instance(value: Any, expected: type | tuple[type, ...]) -> bool:
    return isinstance(value, expected) and not isinstance(value, bool)  # JSON true is no seed


def with_overrides(config: Config, overrides: list[str] | tuple[str, ...]) -> Config:
    """`config` with `--set`-style overrides applied, checked like a config file."""
    return config_from_dict(apply_overrides(config.to_dict(), overrides))


def run_all(runs: list[PlannedRun], progress: bool = True, resumable: bool = True) -> list[RunRecord]:
    """Train the runs in order and return their records. Resumable: every recorded run is checked against
    its planned config before anything trains, reused when it reads the same, and each newly trained run
    is recorded (its folder cleared first: an unfinished run starts again from scratch)."""
    done = [_finished(run) if resumable else None for run in runs]
    left = [run for run, record in zip(runs, done, strict=True) if record is None]
    if resumable:
        say(f"{len(runs)} runs, {len(runs) - len(left)} done before, {len(left)} to train")
        if left:
            _warn_of_other_thread_counts([r for r in done if r is not None])
    cache = FrameCache(runs[0].config.data.cache_side) if runs[0].config.data.cache else None
    places = len({(run.protocol, run.seed) for run in runs})
    pace = Pace(sum(epochs(run) for run in left))
    records = []
    teachers: dict[Path, RunRecord] = {}  # by the folder that holds a teacher and the runs beside it
    for index, (run, record) in enumerate(zip(runs, done, strict=True), 1):
        if record is None:
            say(f"[{index}/{len(runs)}] {describe_run(run, where=places > 1)}{pace.eta()}")
            record = _train(run, cache, progress, resumable)
            pace.trained(epochs(run), record.seconds)
            say(
                f"[{index}/{len(runs)}] {run.label}: top-1 {record.top1:.1f}, top-5 {record.top5:.1f} "
                f"in {record.seconds:.0f} s"
            )
        if run.modality == "rgb":
            teachers[run.folder.parent] = record
        elif run.stage == "train" and run.folder.parent in teachers:
            _compare_with_ir_only(teachers[run.folder.parent], record)
        records.append(record)
    return records


def _compare_with_ir_only(teacher: RunRecord, ir_only: RunRecord) -> None:
    """Warn, before its students train, of a teacher no better than the IR-only run beside it, on the
    validation split (the test split where the runs had none: a warning, never a choice)."""
    found = below_ir_only(*_held_out_top1(teacher, ir_only))
    teacher.teacher_warnings = [*teacher.teacher_warnings, *found]
    for line in warning_lines(found, f"the RGB teacher ({teacher.protocol}, seed {teacher.seed})"):
        say(line)


def _held_out_top1(*records: RunRecord) -> list[float]:
    """Each record's validation top-1, or all their test top-1 where one has no validation score."""
    if any(math.isnan(r.val_top1) for r in records):
        return [r.top1 for r in records]
    return [r.val_top1 for r in records]


def epochs(run: PlannedRun) -> int:
    """How many epochs the run trains (the teacher: its own `optim.teacher_epochs` where set, once per
    `train.restarts`)."""
    if run.modality == "rgb":
        return teacher_optim(run.config.optim).epochs * run.config.train.restarts
    return run.config.optim.epochs


def model_text(model: ModelConfig) -> str:
    """A network as papers name it, e.g. "R3D-10 ×0.25" (no factor at full width)."""
    arch = {"r3d": "R3D", "mc3": "MC3", "r2plus1d": "R(2+1)D"}[model.arch]
    return f"{arch}-{model.depth}" + ("" if model.width == 1 else f" ×{model.width:g}")


def describe_run(run: PlannedRun, where: bool = False) -> str:
    """What is about to train, e.g. "IR only — R3D-10 ×0.25, 15 epochs"; `where` adds protocol and seed."""
    model = run.config.teacher if run.modality == "rgb" else run.config.student
    place = f" ({run.protocol}, seed {run.seed})" if where else ""
    return f"{run.label} — {model_text(model)}, {epochs(run)} epochs{place}"


class Pace:
    """The time the runs left to train should take, from the seconds per epoch of the runs trained so
    far (the first run's includes decoding the videos, distillation epochs cost more than IR-only ones:
    an estimate, said as one)."""

    def __init__(self, epochs_left: int) -> None:
        self.epochs_left, self.epochs_done, self.seconds = epochs_left, 0, 0.0

    def trained(self, epochs: int, seconds: float) -> None:
        self.epochs_left -= epochs
        self.epochs_done += epochs
        self.seconds += seconds

    def eta(self) -> str:
        """ "; about 4 min left at 6.1 s per epoch so far", or "" before any run has trained."""
        if not self.epochs_done:
            return ""
        per_epoch = self.seconds / self.epochs_done
        left = per_epoch * self.epochs_left
        text = f"{left:.0f} s" if left < 90 else f"{left / 60:.0f} min"
        return f"; about {text} left at {per_epoch:.1f} s per epoch so far"


def _warn_of_other_thread_counts(recorded: list[RunRecord]) -> None:
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


def _finished(run: PlannedRun) -> RunRecord | None:
    """The recorded result of a finished run, or None; a result from another config is an error."""
    path = run.folder / "result.json"
    if not path.is_file():
        return None
    record = RunRecord.read(path)
    try:  # keys added to the config since the run take their defaults, which keep the old behaviour
        recorded = config_from_dict(_before_validation(record.config), str(path))
    except ConfigError as error:
        raise ArcticError(
            f"{run.folder} holds a config this version cannot read ({error}); "
            "use another --out or delete that folder"
        ) from error
    old = what_it_reads(recorded, run.stage, run.modality)
    wanted = what_it_reads(run.config, run.stage, run.modality)
    if old != wanted:
        key = _first_difference(old, wanted)
        raise ArcticError(
            f"{run.folder} was run with another config ({key}: {_lookup(old, key)!r}, "
            f"now {_lookup(wanted, key)!r}); use another --out or delete that folder"
        )
    return record


def _before_validation(config: dict) -> dict:
    """A recorded config from before `data.val` existed trained on the whole training split: it reads as
    `data.val.enabled: false`, not as the new default (which holds training samples out)."""
    data = config.get("data", {})
    return config if "val" in data else {**config, "data": {**data, "val": {"enabled": False}}}


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


def _train(run: PlannedRun, cache: FrameCache | None, progress: bool, record: bool) -> RunRecord:
    """Train one run; `record`: from scratch (an unfinished folder is cleared first), into `result.json`."""
    if record and run.folder.exists():
        shutil.rmtree(run.folder)
    start = time.perf_counter()
    if run.stage == "distill":
        outcome = run_distill(run.config, run.folder, cache, progress)
    else:
        outcome = run_train(run.config, run.modality, run.folder, cache, progress)
    plot_run_curves(outcome)
    final = outcome["final"]
    result = RunRecord(
        run.name,
        run.label,
        run.modality,
        run.protocol,
        run.seed,
        final["top1"],
        final["top5"],
        time.perf_counter() - start,
        run.config.to_dict(),
        outcome["multiview"]["top1"],
        torch.get_num_threads(),
        outcome.get("validation", {}).get("final", {}).get("top1", math.nan),
        outcome.get("teacher_warnings", []),
    )
    if record:
        result.write(run.folder)
    return result
