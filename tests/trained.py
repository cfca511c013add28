"""Tiny trained checkpoints for the tests that use a model (predict, export, viz), trained once per session.

Every test module asks through `trained_run`, which keeps its runs under the session's base temporary
folder, so a run another module already trained is reused instead of trained again.
"""

from __future__ import annotations

from pathlib import Path

from arctic_kd.cli import main

TINY_SETTINGS = (
    "optim.teacher_epochs=0",  # the demo preset trains its teacher longer
    "train.eval_every=1",
    "data.rgb_size=32",
    "data.ir_size=32",
    "data.num_frames=4",
    "data.batch_size=4",
    "data.workers=0",
    "teacher.width=0.125",
    "student.width=0.125",
)


def tiny_model_args(*settings: str) -> list[str]:
    """`--set` arguments for the tiny networks and clips every end-to-end test trains on, followed by the
    test's own `key=value` settings, so all those tests stay as small as each other."""
    return [arg for setting in (*TINY_SETTINGS, *settings) for arg in ("--set", setting)]


TINY_MODEL = tiny_model_args("optim.epochs=1", "data.cache=false")


def trained_run(tmp_path_factory, dataset: Path, modality: str, seed: int = 0, *overrides: str) -> Path:
    """The run folder of a one-epoch tiny model; IR students read whole frames (no person crop), as
    `arctic predict` does."""
    out = tmp_path_factory.getbasetemp() / "trained" / f"{modality}-seed{seed}"
    if not (out / "last.pt").is_file():
        whole_frames = ["--set", "data.person_crop=false"] if modality == "ir" else []
        args = [
            "--set",
            f"data.root={dataset}",
            "--set",
            f"seed={seed}",
            *TINY_MODEL,
            *whole_frames,
            *overrides,
        ]
        assert main(["train", "--modality", modality, "--out", str(out), *args]) == 0
    return out
