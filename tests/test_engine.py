"""Train, distil and evaluate end to end on the tiny synthetic dataset, through the CLI."""

from __future__ import annotations

import json

import pytest

from arctic_kd.cli import main
from arctic_kd.config import OptimConfig, load_config
from arctic_kd.engine import stages
from arctic_kd.engine.checkpoint import load_checkpoint
from arctic_kd.engine.stages import teacher_optim
from arctic_kd.errors import DataError
from arctic_kd.presets import resolve_config
from tests.trained import tiny_model_args

# the teacher trains 2 epochs with its own label smoothing, tested after the second only; students 1 epoch
TINY_RUN = tiny_model_args(
    "optim.epochs=1", "optim.teacher_epochs=2", "optim.teacher_label_smoothing=0.2", "train.eval_every=2"
)


@pytest.fixture(scope="module")
def teacher(tiny_dataset, tmp_path_factory):
    out = tmp_path_factory.mktemp("runs") / "teacher"
    assert (
        main(
            ["train", "--modality", "rgb", "--out", str(out), "--set", f"data.root={tiny_dataset}", *TINY_RUN]
        )
        == 0
    )
    return out


def test_training_writes_checkpoints_and_one_log_line_per_epoch(teacher):
    lines = [json.loads(line) for line in (teacher / "metrics.jsonl").read_text().splitlines()]
    assert [line["epoch"] for line in lines] == [1, 2]
    assert "test_top1" not in lines[0], "train.eval_every=2: no test after epoch 1"
    assert {"train_ce", "test_top1", "test_top5", "lr"} <= set(lines[1])
    checkpoint = load_checkpoint(teacher / "last.pt")
    assert checkpoint["modality"] == "rgb" and checkpoint["model"]["in_channels"] == 3
    assert checkpoint["class_names"] == ["cheer up", "kicking"]
    assert checkpoint["epoch"] == 2
    assert not (teacher / "best.pt").exists()  # the demo preset has no validation split: nothing chooses one
    assert checkpoint["config"]["optim"]["label_smoothing"] == 0.2  # the teacher's own
    curves = (teacher / "curves.png").read_bytes()
    assert curves[:8] == b"\x89PNG\r\n\x1a\n" and len(curves) > 1000


def test_eval_reproduces_the_final_epoch_metrics(teacher, capsys):
    assert main(["eval", str(teacher / "last.pt"), "--json"]) == 0
    metrics = json.loads(capsys.readouterr().out)
    final = json.loads((teacher / "metrics.jsonl").read_text().splitlines()[-1])
    assert metrics["top1"] == pytest.approx(final["test_top1"])
    assert metrics["samples"] == 6


def test_distillation_trains_an_ir_student_with_every_arctic_loss(teacher, tiny_dataset, tmp_path):
    out = tmp_path / "arctic"
    code = main(
        [
            "distill",
            "--teacher",
            str(teacher / "last.pt"),
            "--out",
            str(out),
            "--set",
            f"data.root={tiny_dataset}",
            *TINY_RUN,
        ]
    )
    assert code == 0
    lines = (out / "metrics.jsonl").read_text().splitlines()
    assert len(lines) == 1, "optim.teacher_epochs is the teacher's schedule only"
    first = json.loads(lines[0])
    assert all(first[f"train_{k}"] >= 0 for k in ("ce", "arm", "arc", "kd"))
    checkpoint = load_checkpoint(out / "last.pt")
    assert checkpoint["modality"] == "ir" and checkpoint["model"]["in_channels"] == 1
    student_smoothing = load_config(resolve_config("demo")).optim.label_smoothing  # not the teacher's 0.2
    assert checkpoint["config"]["optim"]["label_smoothing"] == student_smoothing != 0.2
    assert any(key.startswith("arm.") for key in checkpoint["method_state"])


class CountedPasses:
    """A loader that counts how often its clips are read through."""

    def __init__(self, loader) -> None:
        self.loader, self.passes = loader, 0

    def __iter__(self):
        self.passes += 1
        return iter(self.loader)

    def __getattr__(self, name: str):
        return getattr(self.loader, name)


def test_eval_with_a_teacher_measures_how_a_students_maps_follow_it(
    teacher, tiny_dataset, tmp_path, capsys, monkeypatch
):
    student = tmp_path / "ir"
    run = ["--set", f"data.root={tiny_dataset}", *TINY_RUN]
    assert main(["train", "--modality", "ir", "--out", str(student), *run]) == 0
    capsys.readouterr()
    loaders, make_view_loader = [], stages.make_view_loader

    def counted_view_loader(*args, **kwargs):
        loader, class_names = make_view_loader(*args, **kwargs)
        loaders.append(CountedPasses(loader))
        return loaders[-1], class_names

    monkeypatch.setattr(stages, "make_view_loader", counted_view_loader)
    monkeypatch.setattr(stages, "make_loaders", None)  # eval must not open a second way into the clips
    assert main(["eval", str(student / "last.pt"), "--teacher", str(teacher / "last.pt"), "--json"]) == 0
    assert [loader.passes for loader in loaders] == [1], "accuracy and agreement share one decoding pass"
    metrics = json.loads(capsys.readouterr().out)
    agreement = metrics["agreement"]
    assert agreement["clips"] == metrics["samples"]
    assert agreement["clips"] == 6 and agreement["teacher"] == str(teacher / "last.pt")
    assert -1.0 <= agreement["map_correlation"] <= 1.0 and 0.0 < agreement["arc_loss"] <= 1.0
    assert main(["eval", str(student / "last.pt"), "--teacher", str(teacher / "last.pt")]) == 0
    assert f"correlation {agreement['map_correlation']:.3f}" in capsys.readouterr().out
    assert main(["eval", str(teacher / "last.pt"), "--teacher", str(student / "last.pt")]) == 2
    assert "sees ir and the checkpoint under test rgb" in capsys.readouterr().err


def test_a_damaged_checkpoint_is_a_clear_error(tmp_path, capsys):
    broken = tmp_path / "broken.pt"
    broken.write_bytes(b"not a checkpoint")
    with pytest.raises(DataError, match="not a readable checkpoint"):
        load_checkpoint(broken)
    assert main(["eval", str(tmp_path / "absent.pt")]) == 2
    assert "checkpoint not found" in capsys.readouterr().err


def test_the_teacher_schedule_differs_from_the_students_only_where_set():
    plain = OptimConfig(epochs=15, label_smoothing=0.1)
    assert teacher_optim(plain) == plain
    own = teacher_optim(
        OptimConfig(epochs=15, teacher_epochs=25, label_smoothing=0.1, teacher_label_smoothing=0.0)
    )
    assert (own.epochs, own.label_smoothing) == (25, 0.0)  # 0.0 is a setting, not "unset"
