"""`train.compile`: a compiled distillation trains, resumes exactly, and its checkpoints load compiled or not;
where compiling fails, training warns once and goes on eager."""

from __future__ import annotations

import functools
from pathlib import Path

import pytest
import torch

from arctic_kd.cli import main
from arctic_kd.engine import train
from arctic_kd.engine.checkpoint import load_checkpoint
from tests.trained import tiny_model_args, trained_run

EPOCHS = 2
COMPILED = "train.compile=true"


def _distill(teacher: Path, out: Path, dataset: Path, *settings: str) -> list[str]:
    """A tiny deterministic ARCTIC distillation (compiles both the student and the teacher's forward)."""
    common = (f"data.root={dataset}", f"optim.epochs={EPOCHS}", "data.cache=false", "deterministic=true")
    return ["distill", "--teacher", str(teacher), "--out", str(out), *tiny_model_args(*common, *settings)]


def _interrupted_after_epoch_one(monkeypatch, arguments: list[str]) -> None:
    """Run `arguments` and stop it (Ctrl-C) just before epoch 2's first step, after epoch 1 was saved."""
    progress_bar = train.progress_bar

    def stopping(iterable=None, *, desc: str = "", **kwargs):
        if desc == "epoch 2":
            raise KeyboardInterrupt
        return progress_bar(iterable, desc=desc, **kwargs)

    with monkeypatch.context() as patch:
        patch.setattr(train, "progress_bar", stopping)
        assert main(arguments) == 130


def _weights(run: Path) -> dict[str, torch.Tensor]:
    checkpoint = load_checkpoint(run / "last.pt")
    assert checkpoint["epoch"] == EPOCHS
    return {**checkpoint["state_dict"], **{f"method.{k}": v for k, v in checkpoint["method_state"].items()}}


@pytest.fixture(scope="module")
def runs(tiny_dataset, tmp_path_factory) -> dict[str, Path]:
    """A compiled distillation run whole, one stopped after epoch 1 and resumed compiled, and one trained
    eager for epoch 1 and resumed compiled."""
    teacher = trained_run(tmp_path_factory, tiny_dataset, "rgb") / "last.pt"
    base = tmp_path_factory.mktemp("compile")
    monkeypatch = pytest.MonkeyPatch()
    runs = {name: base / name for name in ("whole", "resumed", "eager-then-compiled")}
    assert main(_distill(teacher, runs["whole"], tiny_dataset, COMPILED)) == 0
    _interrupted_after_epoch_one(monkeypatch, _distill(teacher, runs["resumed"], tiny_dataset, COMPILED))
    assert main([*_distill(teacher, runs["resumed"], tiny_dataset, COMPILED), "--resume"]) == 0
    _interrupted_after_epoch_one(monkeypatch, _distill(teacher, runs["eager-then-compiled"], tiny_dataset))
    assert main([*_distill(teacher, runs["eager-then-compiled"], tiny_dataset, COMPILED), "--resume"]) == 0
    return runs


def test_a_compiled_distillation_resumes_to_identical_weights(runs):
    whole, resumed = _weights(runs["whole"]), _weights(runs["resumed"])
    assert not [key for key in whole if "_orig_mod" in key]  # the eager network's keys
    assert whole.keys() == resumed.keys()
    for key, value in whole.items():
        assert torch.equal(resumed[key], value), f"{key} differs after the resume"


def test_an_eager_checkpoint_resumes_compiled(runs):
    assert _weights(runs["eager-then-compiled"]).keys() == _weights(runs["whole"]).keys()


def test_a_compiled_runs_checkpoint_predicts_and_exports(runs, tiny_dataset, tmp_path, capsys):
    checkpoint = runs["whole"] / "last.pt"
    video = next((tiny_dataset / "nturgb+d_ir").glob("*_ir.avi"))
    assert main(["predict", str(video), "--checkpoint", str(checkpoint), "--json"]) == 0
    assert video.name in capsys.readouterr().out
    exported = tmp_path / "student.pt"
    assert main(["export", str(checkpoint), "--format", "torchscript", "--out", str(exported)]) == 0
    assert exported.is_file()


def test_a_network_that_does_not_compile_trains_eager_after_one_warning(
    tiny_dataset, tmp_path, monkeypatch, capsys
):
    def failing_backend(graph, inputs):
        raise RuntimeError("no C++ compiler here")

    monkeypatch.setattr(torch, "compile", functools.partial(torch.compile, backend=failing_backend))
    settings = tiny_model_args(
        f"data.root={tiny_dataset}", "optim.epochs=1", "data.cache=false", "deterministic=true"
    )
    assert (
        main(["train", "--modality", "ir", "--out", str(tmp_path / "failed"), *settings, "--set", COMPILED])
        == 0
    )
    warnings = [line for line in capsys.readouterr().out.splitlines() if "train.compile" in line]
    assert len(warnings) == 1 and "student runs eager" in warnings[0] and "no C++ compiler" in warnings[0]
    assert main(["train", "--modality", "ir", "--out", str(tmp_path / "eager"), *settings]) == 0
    failed, eager = (
        load_checkpoint(tmp_path / name / "last.pt")["state_dict"] for name in ("failed", "eager")
    )
    for key, value in eager.items():
        assert torch.equal(failed[key], value), f"{key}: the fallback is not the eager run"
