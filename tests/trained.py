"""Tiny trained checkpoints for the tests that use a model (predict, export, viz), trained once per session.

Every test module asks through `trained_run`, which keeps its runs under the session's base temporary
folder, so a run another module already trained is reused instead of trained again.
"""

from __future__ import annotations

from pathlib import Path

from arctic_kd.cli import main

TINY_MODEL = [
    "--set",
    "optim.epochs=1",
    "--set",
    "data.rgb_size=32",
    "--set",
    "data.ir_size=32",
    "--set",
    "data.num_frames=4",
    "--set",
    "data.batch_size=4",
    "--set",
    "data.workers=0",
    "--set",
    "data.cache=false",
    "--set",
    "teacher.width=0.125",
    "--set",
    "student.width=0.125",
]


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
