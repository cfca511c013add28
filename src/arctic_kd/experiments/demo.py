"""`arctic demo`: the whole job on synthetic data, a three-run plan of the runner with a results table.

Teacher on RGB → IR-only baseline → ARCTIC student, all on the same split, budget, seed and frame cache;
results are the *final* epoch's test accuracy (no checkpoint is picked by test accuracy), and the teacher
handed to distillation is its last checkpoint for the same reason. Unlike the bench, the demo trains its
three runs every time and records them together in OUT/results.json.
"""

from __future__ import annotations

import dataclasses
import json
import time
from dataclasses import dataclass
from pathlib import Path

from arctic_kd.config import Config
from arctic_kd.data.synth import SynthConfig, describe_settings, differences, generate
from arctic_kd.data.synth.folder import recorded_render, refuse_foreign_folder
from arctic_kd.errors import ArcticError
from arctic_kd.experiments.runner import TEACHER, PlannedRun, RunRecord, run_all
from arctic_kd.experiments.stats import gap_recovered


def asked_synth(seed: int | None) -> SynthConfig | None:
    """The synthetic dataset `--synth-seed` asks for; None: the one the folder holds (`ensure_synthetic`)."""
    return None if seed is None else SynthConfig(seed=seed)


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


def demo_runs(config: Config, out: Path) -> list[PlannedRun]:
    """RGB teacher, IR-only baseline and ARCTIC student of one seed, in OUT/rgb_teacher, ir_only, arctic."""
    where = (config.data.protocol, config.seed)
    teacher = str(out / TEACHER / "last.pt")
    distil = dataclasses.replace(config, distill=dataclasses.replace(config.distill, teacher=teacher))
    return [
        PlannedRun(TEACHER, "RGB teacher", "train", "rgb", *where, config, out / TEACHER),
        PlannedRun("ir_only", "IR only", "train", "ir", *where, config, out / "ir_only"),
        PlannedRun("arctic", "ARCTIC", "distill", "ir", *where, distil, out / "arctic"),
    ]


@dataclass
class DemoResult:
    """The demo's three runs (teacher, IR only, ARCTIC), the gap ARCTIC recovers and the total time."""

    records: list[RunRecord]
    gap_recovered: float | None  # None: the teacher is not better than IR alone
    seconds: float


def gap_sentence(recovered: float | None) -> str:
    if recovered is None:
        return (
            "The RGB teacher is not better than IR alone here: there is no gap for distillation to recover."
        )
    return f"ARCTIC recovers {recovered:.0f} % of the teacher–IR-only top-1 gap."


def run_demo(config: Config, out: Path, synth: SynthConfig | None, progress: bool = True) -> DemoResult:
    """Render (or find) the synthetic dataset, train the three runs and write OUT/results.json."""
    ensure_synthetic(Path(config.data.root), synth, progress)
    start = time.perf_counter()
    records = run_all(demo_runs(config, out), progress, resumable=False)
    teacher, ir_only, arctic = (r.top1 for r in records)
    result = DemoResult(records, gap_recovered(teacher, ir_only, arctic), time.perf_counter() - start)
    rows = [  # the keys of the demo's rows since before the runner
        {
            "method": r.label,
            "modality": r.modality,
            "top1": r.top1,
            "top5": r.top5,
            "seconds": r.seconds,
            "multiview_top1": r.multiview_top1,
        }
        for r in records
    ]
    saved = {
        "rows": rows,
        "gap_recovered": result.gap_recovered,
        "teacher_warnings": records[0].teacher_warnings,
        "seconds": result.seconds,
        "config": config.to_dict(),
    }
    out.mkdir(parents=True, exist_ok=True)
    (out / "results.json").write_text(json.dumps(saved, indent=2) + "\n")
    return result
