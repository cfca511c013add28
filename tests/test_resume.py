"""Exact resume: a distillation killed (SIGKILL) at a chosen step and resumed ends where an uninterrupted run
ends, bit for bit, with dropout on so that the restored random generators matter."""

from __future__ import annotations

import json
import random
import signal
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

from arctic_kd.cli import main
from arctic_kd.engine.checkpoint import load_checkpoint, restore_rng_state, rng_state
from tests.test_distributed import tiny_run

ROOT = Path(__file__).resolve().parents[1]
EPOCHS = 2
TIMEOUT = 300  # seconds for any one run; a run takes a few seconds
# where the killed runs die: (epoch, batch of that epoch, train.checkpoint_every)
CRASHES = {
    "mid-epoch": (1, 2, 1),  # after 2 steps of epoch 1, each step checkpointed: resumes mid-epoch
    "epoch boundary": (2, 0, 0),  # after epoch 1 was tested and saved, before epoch 2's first step
}


def _distill(teacher: Path, out: Path, *extra: str) -> list[str]:
    return [
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
        "student.dropout=0.5",  # the dropout masks come from torch's generator: its restore matters
        "--set",
        "train.tensorboard=true",
        *extra,
    ]


def _lines(path: Path) -> list[str]:
    return path.read_text().splitlines() if path.is_file() else []


@pytest.fixture(scope="module")
def runs(tiny_dataset, tmp_path_factory) -> Path:
    """A teacher, an uninterrupted distillation, and one killed and resumed distillation per crash point."""
    base = tmp_path_factory.mktemp("resume")
    (base / "data").symlink_to(tiny_dataset, target_is_directory=True)
    runs = base / "runs"
    teacher = runs / "teacher"
    settings = [*tiny_run(base / "data"), "--set", "optim.epochs=1"]
    assert main(["train", "--modality", "rgb", "--out", str(teacher), *settings]) == 0
    checkpoint = teacher / "last.pt"
    quiet = {"stdout": subprocess.DEVNULL, "stderr": subprocess.PIPE, "text": True, "cwd": ROOT}
    arctic = [sys.executable, "-m", "arctic_kd"]
    started = {"whole": subprocess.Popen([*arctic, *_distill(checkpoint, runs / "whole")], **quiet)}
    for name, (epoch, batch, every) in CRASHES.items():
        every_setting = ["--set", f"train.checkpoint_every={every}"]
        crashing = [sys.executable, "-m", "tests.crash", "train", str(epoch), str(batch)]
        started[name] = subprocess.Popen(
            [*crashing, *_distill(checkpoint, runs / name, *every_setting)], **quiet
        )
    _wait(started, {name: 0 if name == "whole" else -signal.SIGKILL for name in started})
    steps_per_epoch = load_checkpoint(runs / "whole" / "last.pt")["step"] // EPOCHS
    assert steps_per_epoch > 2, "the mid-epoch crash must land inside epoch 1"
    resumed = {}
    for name, (epoch, batch, every) in CRASHES.items():
        crashed = load_checkpoint(runs / name / "last.pt")
        assert crashed["step"] == (epoch - 1) * steps_per_epoch + batch, f"{name}: killed elsewhere"
        assert len(_lines(runs / name / "metrics.jsonl")) == epoch - 1
        every_setting = ["--set", f"train.checkpoint_every={every}"]
        command = [*arctic, *_distill(checkpoint, runs / name, *every_setting, "--resume")]
        resumed[name] = subprocess.Popen(command, **quiet)
    _wait(resumed, {name: 0 for name in resumed})
    return runs


def _wait(processes: dict[str, subprocess.Popen], codes: dict[str, int]) -> None:
    """Wait for every process (each within the time limit) and check its exit status; none outlives this."""
    try:
        for name, process in processes.items():
            code = process.wait(timeout=TIMEOUT)
            assert code == codes[name], f"{name}: exit {code}: {process.stderr.read()[-3000:]}"
    finally:
        for process in processes.values():
            if process.poll() is None:
                process.kill()
                process.wait(timeout=30)


@pytest.mark.parametrize("crash", list(CRASHES))
def test_a_killed_distillation_resumes_to_bit_identical_weights(runs, crash):
    final = [load_checkpoint(runs / name / "last.pt") for name in ("whole", crash)]
    assert final[0]["step"] == final[1]["step"]
    for part in ("state_dict", "method_state"):
        assert final[0][part].keys() == final[1][part].keys()
        for key, value in final[0][part].items():
            assert torch.equal(final[1][part][key], value), f"{part}.{key} differs after the resume"
    logs = [[json.loads(line) for line in _lines(runs / name / "metrics.jsonl")] for name in ("whole", crash)]
    for log in logs:
        for record in log:
            del record["seconds"]
    assert logs[0] == logs[1] and [r["epoch"] for r in logs[1]] == list(range(1, EPOCHS + 1))

    events = EventAccumulator(str(runs / crash / "tensorboard"))
    events.Reload()
    steps = [event.step for event in events.Scalars("test/top1")]
    assert steps == sorted(set(steps)) and len(steps) == EPOCHS  # one point per epoch, none twice


def test_the_random_generators_are_restored_exactly(tmp_path):
    """Python's, NumPy's and torch's generators, through a checkpoint file loaded with weights_only."""
    random.seed(1), np.random.seed(2), torch.manual_seed(3)
    random.gauss(0, 1)  # Python keeps a spare Gaussian: part of the state
    path = tmp_path / "rng.pt"
    torch.save(rng_state(torch.device("cpu")), path)
    expected = (random.random(), random.gauss(0, 1), np.random.rand(), torch.rand(2))
    random.seed(9), np.random.seed(9), torch.manual_seed(9)
    restore_rng_state(torch.load(path, weights_only=True), torch.device("cpu"))
    again = (random.random(), random.gauss(0, 1), np.random.rand(), torch.rand(2))
    assert again[:3] == expected[:3] and torch.equal(again[3], expected[3])


def test_a_foreign_or_stateless_last_checkpoint_is_refused_on_resume(runs, tmp_path, capsys):
    teacher = runs / "teacher" / "last.pt"
    out = tmp_path / "runs" / "foreign"
    out.mkdir(parents=True)
    (tmp_path / "data").symlink_to(runs.parent / "data", target_is_directory=True)
    torch.save({"state_dict": {}, "epoch": 1}, out / "last.pt")  # some other tool's checkpoint
    assert main([*_distill(teacher, out), "--set", "deterministic=false", "--resume"]) == 2
    assert "not an arctic-kd checkpoint" in capsys.readouterr().err
    # an arctic-kd checkpoint without training state (as best.pt is): last.pt without it
    stateless = load_checkpoint(runs / "whole" / "last.pt")
    del stateless["resume"]
    torch.save(stateless, out / "last.pt")
    assert main([*_distill(teacher, out), "--set", "deterministic=false", "--resume"]) == 2
    assert "holds no training state" in capsys.readouterr().err
