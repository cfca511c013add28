"""A run folder belongs to one run (issue 21, items 1, 2, 5, 14): refused, replaced only on --force, locked
against a second writer, resumed only under the same schedule, and resumable after a torn metrics line."""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
import time

import pytest

from arctic_kd.cli import main
from arctic_kd.engine import stages
from arctic_kd.engine.runs import LOCK_NAME, claim_run_folder
from arctic_kd.errors import ArcticError
from tests.trained import TINY_MODEL, trained_run

SUBPROCESS_TIMEOUT_S = 120


def _result() -> dict:
    """What a finished training stage returns, for the stand-in below."""
    scores = {"top1": 50.0, "top5": 100.0, "mean_class": 50.0}
    return {
        "final": {**scores, "epoch": 1},
        "validation": {"final": {**scores, "epoch": 1}, "best": {**scores, "epoch": 1}},
        "multiview": {**scores, "views": 1},
        "skipped": {},
        "metrics_log": None,  # the stand-in draws no curves
    }


@pytest.fixture
def stand_in(monkeypatch):
    """`run_train` replaced by a recorder, so the folder rules are tested without training; `calls` holds
    the run folders it was asked to train into (none: the command stopped before any work)."""
    calls = []

    def run_train(config, modality, run_dir, **options):
        calls.append(run_dir)
        (run_dir / "metrics.jsonl").write_text('{"epoch": 1}\n')
        return _result()

    monkeypatch.setattr(stages, "run_train", run_train)
    return calls


def _train(out, *extra: str) -> int:
    return main(["train", "--modality", "ir", "--out", str(out), *extra])


def _earlier_run(out):
    out.mkdir()
    (out / "last.pt").write_bytes(b"an 8-epoch RGB run")
    (out / "metrics.jsonl").write_text("".join(f'{{"epoch": {e}}}\n' for e in range(1, 9)))
    (out / "tensorboard").mkdir()
    (out / "notes.txt").write_text("the user's own file")


def test_an_existing_run_folder_is_refused_without_resume_or_force(tmp_path, stand_in, capsys):
    out = tmp_path / "run"
    _earlier_run(out)
    assert _train(out) == 2
    err = capsys.readouterr().err
    assert f"{out} already holds a run (metrics.jsonl with 8 epoch line(s), last.pt)" in err
    assert "--resume continues it, --force replaces it" in err
    assert stand_in == [], "refused before any work"
    assert (out / "last.pt").read_bytes() == b"an 8-epoch RGB run"
    assert not (out / LOCK_NAME).exists()


def test_force_replaces_the_run_and_says_what_it_removes(tmp_path, stand_in, capsys):
    out = tmp_path / "run"
    _earlier_run(out)
    assert _train(out, "--force") == 0
    err = capsys.readouterr().err
    assert f"--force: removing {out / 'last.pt'}, {out / 'metrics.jsonl'}, {out / 'tensorboard'}" in err
    assert stand_in == [out]
    assert not (out / "last.pt").exists() and not (out / "tensorboard").exists()
    assert (out / "notes.txt").read_text() == "the user's own file", "only the run's own files go"
    assert (out / "metrics.jsonl").read_text() == '{"epoch": 1}\n'
    assert _train(out, "--force", "--resume") == 2
    assert "give one of them" in capsys.readouterr().err


def test_an_empty_or_new_folder_is_claimed_and_the_lock_released(tmp_path, stand_in):
    assert _train(tmp_path / "new" / "run") == 0
    (tmp_path / "empty").mkdir()
    assert _train(tmp_path / "empty") == 0
    assert stand_in == [tmp_path / "new" / "run", tmp_path / "empty"]
    assert not (tmp_path / "empty" / LOCK_NAME).exists()


def test_a_second_arctic_process_on_the_same_folder_is_refused(tmp_path, monkeypatch, capsys):
    """Two real processes: while this one holds the folder, `arctic train` in another exits 2."""
    out = tmp_path / "run"
    seen = {}

    def run_train(config, modality, run_dir, **options):
        lock = json.loads((run_dir / LOCK_NAME).read_text())
        seen["lock"] = lock
        seen["second"] = subprocess.run(
            [sys.executable, "-m", "arctic_kd", "train", "--modality", "rgb", "--out", str(run_dir)],
            capture_output=True,
            text=True,
            timeout=SUBPROCESS_TIMEOUT_S,
        )
        return _result()

    monkeypatch.setattr(stages, "run_train", run_train)
    assert _train(out) == 0
    assert seen["lock"]["pid"] == os.getpid() and seen["lock"]["host"] == socket.gethostname()
    second = seen["second"]
    assert second.returncode == 2, second.stderr
    assert f"another arctic process is writing this run folder (pid {os.getpid()}" in second.stderr
    assert "Traceback" not in second.stderr
    assert not (out / LOCK_NAME).exists()


def test_a_stale_lock_is_taken_over_and_a_live_one_is_not(tmp_path, stand_in, capsys):
    out = tmp_path / "run"
    out.mkdir()
    gone = subprocess.Popen(["true"])
    gone.wait(timeout=SUBPROCESS_TIMEOUT_S)
    (out / LOCK_NAME).write_text(json.dumps({"pid": gone.pid, "host": socket.gethostname(), "since": 0}))
    assert _train(out) == 0
    assert f"removing the lock of pid {gone.pid}, no longer running" in capsys.readouterr().err
    with subprocess.Popen(["sleep", "60"]) as alive:
        try:
            (out / "metrics.jsonl").unlink()
            (out / LOCK_NAME).write_text(
                json.dumps({"pid": alive.pid, "host": socket.gethostname(), "since": 0})
            )
            assert _train(out) == 2
            assert f"pid {alive.pid} on {socket.gethostname()}" in capsys.readouterr().err
            assert (out / LOCK_NAME).exists(), "another process's lock is left alone"
        finally:
            alive.kill()
    assert len(stand_in) == 1


def test_claiming_a_claimed_folder_in_one_process_is_refused(tmp_path):
    first = claim_run_folder(tmp_path / "run")
    first.__enter__()
    with pytest.raises(ArcticError, match="another arctic process"), claim_run_folder(tmp_path / "run"):
        pass
    first.__exit__(None, None, None)
    assert not (tmp_path / "run" / LOCK_NAME).exists()


@pytest.fixture
def finished_run(tmp_path_factory, tiny_dataset, tmp_path):
    """A copy of a one-epoch tiny RGB run (shared with other modules) and the settings it was trained with."""
    out = tmp_path / "run"
    shutil.copytree(trained_run(tmp_path_factory, tiny_dataset, "rgb"), out)
    settings = ["--set", f"data.root={tiny_dataset}", "--set", "seed=0", *TINY_MODEL]
    return out, settings


def _resume(out, settings, *extra: str) -> int:
    return main(["train", "--modality", "rgb", "--out", str(out), "--resume", *settings, *extra])


def test_resume_refuses_a_changed_schedule_unless_asked(finished_run, capsys):
    out, settings = finished_run
    before = (out / "last.pt").read_bytes()
    assert _resume(out, settings, "--set", "optim.epochs=2") == 2
    err = capsys.readouterr().err
    assert "optim.epochs 1 → 2" in err and "would splice two learning-rate schedules" in err
    assert "--allow-schedule-change" in err
    assert (out / "last.pt").read_bytes() == before
    assert _resume(out, settings, "--set", "optim.epochs=2", "--allow-schedule-change") == 0
    epochs = [json.loads(line)["epoch"] for line in (out / "metrics.jsonl").read_text().splitlines()]
    assert epochs == [1, 2]


def test_resume_refuses_a_run_of_another_modality(finished_run, capsys):
    out, settings = finished_run
    assert main(["train", "--modality", "ir", "--out", str(out), "--resume", *settings]) == 2
    assert "continues a run with modality 'rgb', but this command trains 'ir'" in capsys.readouterr().err


def test_a_torn_last_metrics_line_does_not_stop_resume(finished_run, capsys):
    out, settings = finished_run
    metrics = out / "metrics.jsonl"
    whole = metrics.read_text()
    metrics.write_text(whole + '{"epoch": 2, "lr": 0.0')  # a crash in the middle of writing epoch 2
    assert _resume(out, settings) == 0
    captured = capsys.readouterr()
    assert "dropping its torn last line" in captured.out + captured.err
    assert metrics.read_text() == whole
    metrics.write_text('{"epoch": 1\n' + whole)  # damage anywhere else is an error naming the line
    assert _resume(out, settings) == 2
    assert f"{metrics}:1: not a metrics line" in capsys.readouterr().err


def test_an_unreadable_lock_file_is_refused_while_fresh_and_taken_over_once_old(tmp_path, stand_in, capsys):
    out = tmp_path / "run"
    out.mkdir()
    lock = out / LOCK_NAME
    lock.write_text("{not json")  # a writer that died between creating the file and filling it
    assert _train(out) == 2
    assert f"{out}: locked by another process that is starting up ({LOCK_NAME})" in capsys.readouterr().err
    old = time.time() - 60
    os.utime(lock, (old, old))
    assert _train(out) == 0
    assert f"{lock}: removing an unreadable lock" in capsys.readouterr().err
    assert len(stand_in) == 1
