"""`arctic demo`: the whole job on synthetic data, with a results table (`arctic bench`: bench.py).

Teacher on RGB → IR-only baseline → ARCTIC student, all on the same split, budget and seed; results are
the *final* epoch's test accuracy (no checkpoint is picked by test accuracy), and the teacher handed to
distillation is its last checkpoint for the same reason.
"""

from __future__ import annotations

import copy
import json
import math
import time
from dataclasses import dataclass
from pathlib import Path

from arctic_kd.config import Config
from arctic_kd.data.cache import FrameCache
from arctic_kd.data.synth import SynthConfig, describe_settings, differences, generate
from arctic_kd.data.synth.folder import recorded_render, refuse_foreign_folder
from arctic_kd.engine.stages import run_distill, run_train
from arctic_kd.errors import ArcticError
from arctic_kd.use.viz.curves import plot_run_curves


@dataclass
class Row:
    method: str
    modality: str
    top1: float
    top5: float
    seconds: float
    multiview_top1: float = math.nan  # final model on data.test_clips × test_crops views (NaN: older runs)


def ensure_synthetic(root: Path, synth: SynthConfig | None, progress: bool = True) -> SynthConfig:
    """The synthetic dataset in `root`, rendered first if `root` holds none (or an unfinished one).

    With `synth` None any synthetic dataset there is used as it was rendered (`arctic synth
    --ir-object-contrast 0 DIR`, then `arctic bench --data DIR`), an unfinished one is finished with its
    own settings, and the default one is rendered into an empty folder. A `synth` that differs from what
    `root` holds is an error, never a re-render over it.
    """
    recorded = recorded_render(root)
    if recorded is None:
        refuse_foreign_folder(root)
        synth = synth or SynthConfig()
    else:
        rendered, complete = recorded
        if synth not in (None, rendered):
            held, asked = ", ".join(differences(rendered, synth)), ", ".join(differences(synth, rendered))
            raise ArcticError(
                f"{root} holds {'a' if complete else 'an unfinished'} synthetic dataset of other settings "
                f"({held}; asked: {asked}): give another --data folder, or delete {root} to have it "
                "rendered with the asked settings"
            )
        if complete:
            print(f"using the synthetic dataset in {root} ({describe_settings(rendered)})")
            return rendered
        synth = rendered
    print(f"rendering the synthetic dataset into {root} ({len(synth.sample_names())} samples)")
    generate(root, synth, progress=progress)
    return synth


def run_pipeline(
    config: Config, out: Path, frame_cache: FrameCache | None = None, progress: bool = True
) -> list[Row]:
    """Teacher, IR baseline and ARCTIC student for one seed; checkpoints and logs under `out`."""
    rows = []
    for method, modality, folder in (("RGB teacher", "rgb", "rgb_teacher"), ("IR only", "ir", "ir_only")):
        start = time.perf_counter()
        result = run_train(config, modality, out / folder, frame_cache, progress)
        plot_run_curves(result)
        rows.append(_row(method, modality, result, start))
    distill = copy.deepcopy(config)
    distill.distill.teacher = str(out / "rgb_teacher" / "last.pt")
    start = time.perf_counter()
    result = run_distill(distill, out / "arctic", frame_cache, progress)
    plot_run_curves(result)
    rows.append(_row("ARCTIC", "ir", result, start))
    return rows


def _row(method: str, modality: str, result: dict, start: float) -> Row:
    final = result["final"]
    seconds = time.perf_counter() - start
    return Row(method, modality, final["top1"], final["top5"], seconds, result["multiview"]["top1"])


def _shared_cache(config: Config) -> FrameCache | None:
    """One in-memory cache for every stage, so each video is decoded once per run."""
    return FrameCache(config.data.cache_side) if config.data.cache else None


def gap_recovered(rows: list[Row]) -> float:
    """Share of the teacher–IR-only top-1 gap that distillation closes, in percent; NaN when the teacher
    is not better than IR alone (there is no gap to recover)."""
    by_method = {r.method: r.top1 for r in rows}
    gap = by_method["RGB teacher"] - by_method["IR only"]
    return 100.0 * (by_method["ARCTIC"] - by_method["IR only"]) / gap if gap > 0 else float("nan")


def gap_sentence(recovered: float) -> str:
    if math.isnan(recovered):
        return (
            "The RGB teacher is not better than IR alone here: there is no gap for distillation to recover."
        )
    return f"ARCTIC recovers {recovered:.0f} % of the teacher–IR-only top-1 gap."


def table(rows: list[Row]) -> str:
    lines = [
        "| method | modality | top-1 | top-5 | multi-view top-1 | wall time |",
        "| --- | --- | --- | --- | --- | --- |",
    ]
    lines += [
        f"| {r.method} | {r.modality.upper()} | {r.top1:.1f} | {r.top5:.1f} | {r.multiview_top1:.1f} | "
        f"{r.seconds:.0f} s |"
        for r in rows
    ]
    return "\n".join(lines)


def run_demo(config: Config, out: Path, synth: SynthConfig | None, progress: bool = True) -> dict:
    ensure_synthetic(Path(config.data.root), synth, progress)
    start = time.perf_counter()
    rows = run_pipeline(config, out, _shared_cache(config), progress)
    results = {
        "rows": [r.__dict__ for r in rows],
        "gap_recovered": gap_recovered(rows),
        "seconds": time.perf_counter() - start,
        "config": config.to_dict(),
    }
    out.mkdir(parents=True, exist_ok=True)
    (out / "results.json").write_text(json.dumps(results, indent=2) + "\n")
    return results
