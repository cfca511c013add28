"""Exact resume: a distillation killed with SIGKILL and resumed ends where an uninterrupted run ends."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time

import torch
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

from arctic_kd.cli import main
from arctic_kd.engine.checkpoint import load_checkpoint
from tests.test_distributed import tiny_run

EPOCHS, KILL_AFTER = 2, 1


def _distill(teacher, out, *extra: str) -> list[str]:
    return [
        sys.executable,
        "-m",
        "arctic_kd",
        "distill",
        "--teacher",
        str(teacher),
        "--out",
        str(out),
        *tiny_run(out.parents[1] / "data"),
        "--set",
        f"optim.epochs={EPOCHS}",
        "--set",
        "deterministic=true",
        "--set",
        "train.checkpoint_every=1",  # a kill at any moment resumes from the last step, mid-epoch too
        "--set",
        "train.tensorboard=true",
        *extra,
    ]


def _lines(path) -> list[str]:
    return path.read_text().splitlines() if path.is_file() else []


def test_a_killed_distillation_resumes_to_bit_identical_weights(tiny_dataset, tmp_path):
    (tmp_path / "data").symlink_to(tiny_dataset, target_is_directory=True)
    runs = tmp_path / "runs"
    teacher = runs / "teacher"
    assert (
        main(
            [
                "train",
                "--modality",
                "rgb",
                "--out",
                str(teacher),
                *tiny_run(tmp_path / "data"),
                "--set",
                "optim.epochs=1",
            ]
        )
        == 0
    )
    teacher_checkpoint = teacher / "last.pt"
    quiet = {"stdout": subprocess.DEVNULL, "stderr": subprocess.PIPE, "text": True}
    whole = subprocess.Popen(_distill(teacher_checkpoint, runs / "whole"), **quiet)
    killed = subprocess.Popen(_distill(teacher_checkpoint, runs / "killed"), **quiet)
    deadline = time.monotonic() + 240
    while len(_lines(runs / "killed" / "metrics.jsonl")) < KILL_AFTER and killed.poll() is None:
        assert time.monotonic() < deadline, "the run to kill never finished an epoch"
        time.sleep(0.01)
    os.kill(killed.pid, signal.SIGKILL)
    assert killed.wait() == -signal.SIGKILL, (
        f"the run ended before it could be killed: {killed.stderr.read()}"
    )
    assert len(_lines(runs / "killed" / "metrics.jsonl")) < EPOCHS
    resumed = subprocess.run(_distill(teacher_checkpoint, runs / "killed", "--resume"), **quiet, timeout=240)
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    assert whole.wait(timeout=240) == 0, whole.stderr.read()[-3000:]

    final = [load_checkpoint(runs / name / "last.pt") for name in ("whole", "killed")]
    for part in ("state_dict", "method_state"):
        assert final[0][part].keys() == final[1][part].keys()
        for key, value in final[0][part].items():
            assert torch.equal(final[1][part][key], value), f"{part}.{key} differs after the resume"
    logs = [
        [json.loads(line) for line in _lines(runs / name / "metrics.jsonl")] for name in ("whole", "killed")
    ]
    for log in logs:
        for record in log:
            del record["seconds"]
    assert logs[0] == logs[1] and [r["epoch"] for r in logs[1]] == list(range(1, EPOCHS + 1))

    events = EventAccumulator(str(runs / "killed" / "tensorboard"))
    events.Reload()
    steps = [event.step for event in events.Scalars("test/top1")]
    assert steps == sorted(set(steps)) and len(steps) == EPOCHS  # one point per epoch, none twice
