"""Faults and bad input (issue 21): each case is fed to the command a user would run, and must end in one
clear line naming the key, file or path (never a traceback), or be reported, never silently lost."""

from __future__ import annotations

import errno
import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch

from arctic_kd.cli import main
from arctic_kd.config import MODEL_DEPTHS, Config, DataConfig, load_config
from arctic_kd.config.distill import DISTILL_METHODS
from arctic_kd.data.clipfile import StoredVideo, write_clip_file
from arctic_kd.distill import METHODS, build_distiller
from arctic_kd.engine import checkpoint as checkpoint_module
from arctic_kd.engine import stages
from arctic_kd.engine.checkpoint import load_checkpoint, save_checkpoint
from arctic_kd.engine.distributed import DistContext
from arctic_kd.engine.train import fit
from arctic_kd.errors import ArcticError, ConfigError, DataError
from arctic_kd.models import video_resnet
from arctic_kd.models.resnet3d import BLOCKS_PER_STAGE
from arctic_kd.use import export as export_module
from tests.conftest import TINY_SYNTH
from tests.trained import TINY_MODEL, tiny_model_args, trained_run


def _one_line(err: str) -> str:
    """The single line a failing command printed (and that there is only one, with no traceback)."""
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    assert "Traceback" not in err
    return lines[0]


@pytest.fixture
def no_training(monkeypatch):
    """`run_train` and `run_distill` replaced by a recorder: a config error must stop a command before."""
    calls = []
    monkeypatch.setattr(stages, "run_train", lambda *a, **k: calls.append(a))
    monkeypatch.setattr(stages, "run_distill", lambda *a, **k: calls.append(a))
    return calls


# item 9: impossible values are errors naming the key, at load, before any work
@pytest.mark.parametrize(
    ("setting", "message"),
    [
        ("data.batch_size=0", "data.batch_size must be at least 1, got 0"),
        ("data.num_frames=0", "data.num_frames must be at least 1, got 0"),
        ("teacher.depth=11", "teacher.depth must be one of 10, 18, 34, got 11"),
        ("student.width=0", "student.width must be positive, got 0.0"),
        ("data.rgb_size=0", "data.rgb_size must be at least 1, got 0"),
        ("data.workers=-1", "data.workers must be at least 0, got -1"),
        ("optim.lr=-1", "optim.lr must be positive, got -1.0"),
        ("data.test_crops=2", "data.test_crops must be odd"),
        ("data.test_clips=0", "data.test_clips must be at least 1, got 0"),
        ("data.test_crops=3", "data: 3 test crops of the whole region would coincide: set data.test_crop"),
        ("data.test_crop=0", "data.test_crop must be in (0, 1], got 0"),
        ("data.crop_scale=[0.9, 0.5]", "data.crop_scale must be [low, high] with 0 < low <= high <= 1"),
        ("distill.method=fitnet", "distill.method: unknown method 'fitnet'; known: afd, arctic"),
        ("distill.arc.rho=0", "distill.arc.rho must be in (0, 1], got 0"),
        ("distill.arm.stages=[layer5]", "distill: arm: stages: 'layer5' is not one of 'stem', 'layer1'"),
        ("distill.arm.stages=[layer1, layer1]", "distill.arm.stages must be distinct stage names"),
        ("distill.kd.tau=0", "distill.kd.tau must be positive"),
        ("optim.momentum=1", "optim.momentum must be in [0, 1), got 1.0"),
    ],
)
def test_an_impossible_config_value_is_one_line_naming_the_key(
    setting, message, no_training, tmp_path, capsys
):
    assert main(["train", "--modality", "ir", "--out", str(tmp_path / "run"), "--set", setting]) == 2
    line = _one_line(capsys.readouterr().err)
    assert line.startswith("arctic train: error: --set: ") and message in line
    assert no_training == [] and not (tmp_path / "run").exists()


def test_a_bad_value_in_a_file_names_the_file_and_a_bad_override_names_set(tmp_path):
    path = tmp_path / "mine.yaml"
    path.write_text("data:\n  batch_size: -4\n")
    with pytest.raises(ConfigError, match=r"mine\.yaml: data\.batch_size must be at least 1"):
        load_config(path)
    path.write_text("data:\n  batch_size: 4\n")
    with pytest.raises(ConfigError, match=r"^--set: data: unknown key 'batchsize'"):
        load_config(path, ["data.batchsize=3"])
    assert load_config(path, ["data.test_crops=3", "data.test_crop=0.8"]).data.test_crops == 3


def test_the_checked_names_match_the_models_and_methods():
    assert set(MODEL_DEPTHS) == set(BLOCKS_PER_STAGE)
    assert set(DISTILL_METHODS) == set(METHODS)


def test_a_batch_that_does_not_split_between_processes_stops_before_any_data_is_read(monkeypatch):
    monkeypatch.setattr(stages.distributed, "setup", lambda device: DistContext(0, 3, torch.device("cpu")))

    def read_data(*args, **kwargs):
        raise AssertionError("data was read before the launch was checked")

    monkeypatch.setattr(stages, "make_loaders", read_data)
    config = Config(data=DataConfig(batch_size=4))
    with pytest.raises(ArcticError, match="global batch of 4 does not split evenly between 3 processes"):
        stages.run_train(config, "ir", Path("unused"))


# item 10: an IR checkpoint as the teacher
def test_an_ir_checkpoint_as_teacher_is_refused(tiny_dataset, tmp_path, capsys):
    teacher = tmp_path / "ir.pt"
    spec = {"arch": "r3d", "depth": 10, "width": 0.125, "dropout": 0.0, "in_channels": 1, "num_classes": 2}
    model = video_resnet("r3d", 10, num_classes=2, in_channels=1, width=0.125)
    save_checkpoint(
        teacher,
        {"modality": "ir", "model": spec, "state_dict": model.state_dict(), "class_names": ["a", "b"]},
    )
    args = ["distill", "--teacher", str(teacher), "--out", str(tmp_path / "run")]
    assert main([*args, "--set", f"data.root={tiny_dataset}", *TINY_MODEL]) == 2
    line = _one_line(capsys.readouterr().err)
    assert f"{teacher}: the teacher must be an RGB network; this checkpoint sees ir" in line


# item 11: outputs that cannot be written
def test_an_output_that_is_not_a_folder_is_one_line(tmp_path, no_training, capsys):
    file = tmp_path / "file"
    file.write_text("x")
    assert main(["train", "--modality", "ir", "--out", str(file)]) == 2
    assert f"{file}: exists and is not a folder" in _one_line(capsys.readouterr().err)
    assert main(["train", "--modality", "ir", "--out", str(file / "run")]) == 2
    assert "a part of the path is a file, not a folder" in _one_line(capsys.readouterr().err)
    metrics = tmp_path / "metrics.jsonl"
    metrics.write_text('{"epoch": 1, "train_total": 1.0, "lr": 0.1}\n')
    assert main(["viz", "curves", str(metrics), "--out", str(file / "curves.png")]) == 2
    assert f"{file}: exists and is not a folder" in _one_line(capsys.readouterr().err)
    assert no_training == []


def test_an_unexpected_os_failure_is_one_line_with_the_path_and_cause(monkeypatch, tmp_path, capsys):
    def disk_full(*args, **kwargs):
        raise OSError(errno.ENOSPC, "No space left on device", "/runs/x/metrics.jsonl")

    monkeypatch.setattr(stages, "run_train", disk_full)
    assert main(["train", "--modality", "ir", "--out", str(tmp_path / "run")]) == 2
    line = _one_line(capsys.readouterr().err)
    assert line == "arctic train: error: /runs/x/metrics.jsonl: disk full (no space left on the device)"


def test_a_full_disk_while_saving_a_checkpoint_says_so_and_keeps_the_old_one(monkeypatch, tmp_path):
    path = tmp_path / "last.pt"
    save_checkpoint(path, {"epoch": 1})

    def torch_save_on_a_full_disk(payload, file):
        Path(file).write_bytes(b"PK\x03\x04 half a checkpoint")
        raise RuntimeError("[enforce fail at inline_container.cc:664] . unexpected pos 4416 vs 4304")

    monkeypatch.setattr(checkpoint_module.torch, "save", torch_save_on_a_full_disk)
    monkeypatch.setattr(checkpoint_module.shutil, "disk_usage", lambda p: shutil._ntuple_diskusage(1, 1, 0))
    with pytest.raises(ArcticError, match=r"last\.pt: cannot write the checkpoint: disk full, 0 MiB free"):
        save_checkpoint(path, {"epoch": 2})
    monkeypatch.undo()
    assert load_checkpoint(path)["epoch"] == 1
    assert sorted(p.name for p in tmp_path.iterdir()) == ["last.pt"], "no partial file is left behind"


def test_an_unforeseen_error_is_one_line_and_its_trace_goes_to_a_file(monkeypatch, tmp_path, capsys):
    def bug(*args, **kwargs):
        raise RuntimeError("something broke\nsecond line of detail")

    monkeypatch.setattr(stages, "run_train", bug)
    assert main(["train", "--modality", "ir", "--out", str(tmp_path / "run")]) == 3
    line = _one_line(capsys.readouterr().err)
    assert line.startswith("arctic train: internal error: RuntimeError: something broke (full trace: ")
    trace = Path(line.split("full trace: ")[1].split(";")[0])
    try:
        text = trace.read_text()
        assert "Traceback (most recent call last)" in text and "second line of detail" in text
    finally:
        trace.unlink()
    assert not (tmp_path / "run" / ".arctic.lock").exists(), "the lock is released on any error"


# item 12: skip_bad with a batch of one, and with nothing left
class _Batches:
    """A stand-in training loader yielding fixed batches, with the interface `fit` reads."""

    def __init__(self, batches: list[dict], report_size: int = 0) -> None:
        from arctic_kd.data.samples import BadSample, BadSampleReport

        self.batches = batches
        self.report = BadSampleReport()
        for number in range(report_size):
            self.report.add(BadSample(f"S{number}", f"bad{number}.avi", "not a readable video"))
        self.dataset = [None] * (sum(len(b["label"]) for b in batches) + report_size)

    def __len__(self) -> int:
        return max(1, len(self.batches))

    def __iter__(self):
        return iter(self.batches)

    def state_dict(self) -> dict:
        return {"epoch": 0, "batch": 0}

    def load_state_dict(self, state: dict) -> None:
        pass


def _clips(count: int) -> dict:
    return {
        "rgb": torch.randn(count, 3, 4, 32, 32),
        "ir": torch.randn(count, 1, 4, 32, 32),
        "ir_from_rgb": torch.eye(2, 3).repeat(count, 1, 1),
        "label": torch.arange(count) % 2,
        "sample_id": [f"S{i}" for i in range(count)],
    }


def _fit_arctic(tmp_path, batches: list[dict], report_size: int = 0, test: _Batches | None = None) -> dict:
    config = load_config(None, ["optim.epochs=1", "train.tensorboard=false", "device=cpu"])
    student = video_resnet("r3d", 10, num_classes=2, in_channels=1, width=0.125)
    teacher = video_resnet("r3d", 10, num_classes=2, in_channels=3, width=0.125)
    distiller = build_distiller(config.distill, student, teacher)
    train, test = _Batches(batches, report_size), test or _Batches([_clips(2)])
    context = DistContext(0, 1, torch.device("cpu"))
    return fit(distiller, train, test, config, tmp_path, {}, 2, context, progress=False)


def test_a_training_batch_left_with_one_clip_is_passed_over_not_a_crash(tmp_path):
    result = _fit_arctic(tmp_path, [_clips(1), _clips(3)])
    assert result["final"]["epoch"] == 1
    record = json.loads((tmp_path / "metrics.jsonl").read_text())
    assert record["skipped_short_batches"] == 1


def test_an_epoch_without_a_usable_batch_stops_with_a_clear_error(tmp_path):
    with pytest.raises(ArcticError, match=r"epoch 1: no training batch was usable: 4 of 4 training samples"):
        _fit_arctic(tmp_path, [], report_size=4)


def test_a_test_split_without_a_usable_clip_is_an_error_not_zero_accuracy(tmp_path):
    with pytest.raises(ArcticError, match=r"the test split gave no usable clip: 3 of 3 test samples are bad"):
        _fit_arctic(tmp_path, [_clips(2)], test=_Batches([], report_size=3))


def _copy_dataset(tiny_dataset: Path, tmp_path: Path) -> Path:
    root = tmp_path / "data"
    shutil.copytree(tiny_dataset, root)
    return root


def _training_names() -> list[str]:
    """The cross-subject training samples of the tiny dataset (performers 1 and 2), in name order."""
    return sorted(str(n) for n in TINY_SYNTH.sample_names() if n.performer in (1, 2))


def _ir(root: Path, name: str) -> Path:
    return root / "nturgb+d_ir" / f"{name}_ir.avi"


def _distill(tmp_path_factory, tiny_dataset, root, out, *settings) -> int:
    teacher = trained_run(tmp_path_factory, tiny_dataset, "rgb") / "last.pt"
    args = ["distill", "--teacher", str(teacher), "--out", str(out), "--set", f"data.root={root}"]
    return main([*args, *tiny_model_args("optim.epochs=1", "data.skip_bad=true", *settings)])


def test_distill_reports_every_sample_it_could_not_use(tmp_path_factory, tiny_dataset, tmp_path, capsys):
    """Items 3, 8 and 12 in one run: a missing RGB video (left out), five corrupt IR videos (skipped), a
    missing and a 0-body skeleton (whole frames): the run finishes and says so in its log, its metrics
    and its summary."""
    root = _copy_dataset(tiny_dataset, tmp_path)
    names = _training_names()
    missing, corrupt, no_skeleton, no_body = names[0], names[1:6], names[6], names[7]
    (root / "nturgb+d_rgb" / f"{missing}_rgb.avi").unlink()
    for name in corrupt:
        _ir(root, name).write_bytes(np.random.default_rng(0).bytes(3000))
    (root / "nturgb+d_skeletons" / f"{no_skeleton}.skeleton").unlink()
    (root / "nturgb+d_skeletons" / f"{no_body}.skeleton").write_text("3\n0\n0\n0\n")
    out = tmp_path / "run"
    # one batch of all 11 usable training samples (none held out to validate): every corrupt one is met
    assert (
        _distill(tmp_path_factory, tiny_dataset, root, out, "data.batch_size=11", "data.val.enabled=false")
        == 0
    )
    captured = capsys.readouterr()
    assert f"1 sample(s) left out: a video they need is missing: {missing} (no RGB video)" in captured.err
    assert "2 sample(s) read as whole frames, not person crops: no usable skeleton" in captured.err
    record = json.loads((out / "metrics.jsonl").read_text())
    assert record["left_out_samples"] == 1 and record["skipped_train_samples"] == 5
    assert record["whole_frame_samples"] == 2
    unused = json.loads((out / "samples.json").read_text())
    assert unused["left_out"] == {missing: "no RGB video"}
    assert sorted(unused["skipped"]) == corrupt
    assert unused["whole_frames"][no_skeleton] == "no skeleton file"
    assert "tracks no body" in unused["whole_frames"][no_body]
    assert f"left out {missing}: no RGB video" in captured.out
    assert "samples not used as intended: 1 left out (a video missing), 5 skipped (bad), 2 read as whole" in (
        captured.out
    )


def test_distill_with_every_training_sample_bad_stops_clearly(
    tmp_path_factory, tiny_dataset, tmp_path, capsys
):
    root = _copy_dataset(tiny_dataset, tmp_path)
    for name in _training_names():
        _ir(root, name).write_bytes(b"")
    assert _distill(tmp_path_factory, tiny_dataset, root, tmp_path / "run") == 2
    err = capsys.readouterr().err
    assert "Traceback" not in err
    last = err.strip().splitlines()[-1]  # after the notes on what is left out
    assert (
        last.startswith("arctic distill: error: epoch 1: no training batch was usable")
        and "file is empty" in last
    )


# item 13: a damaged clip in a prepared store
def test_a_truncated_clip_file_is_a_data_error_naming_it(tmp_path):
    path = tmp_path / "S001.clip"
    frames = [np.full((16, 16, 3), value, np.uint8) for value in (10, 120, 240)]
    write_clip_file(path, frames, fps=30.0, quality=90)
    with StoredVideo(path) as video:  # where the last frame starts (the reader's own layout)
        last_frame = video._base + video._offsets[2]
    path.write_bytes(path.read_bytes()[:last_frame])  # a copy cut off before its last frame
    with StoredVideo(path) as video:
        assert video.read([0]).shape == (1, 16, 16, 3)
        with pytest.raises(DataError, match=r"S001\.clip: frame 2 does not decode \(damaged clip file\)"):
            video.read([2])


# item 6: export keeps nothing it could not verify
def test_a_failed_export_verification_leaves_no_file(
    tmp_path_factory, tiny_dataset, tmp_path, monkeypatch, capsys
):
    checkpoint = trained_run(tmp_path_factory, tiny_dataset, "rgb") / "last.pt"
    out = tmp_path / "teacher.torchscript.pt"
    out.write_bytes(b"an earlier, verified export")
    video = tiny_dataset / "nturgb+d_rgb" / f"{TINY_SYNTH.sample_names()[0]}_rgb.avi"
    monkeypatch.setattr(export_module, "TOLERANCE", -1.0)  # no export can pass
    args = ["export", str(checkpoint), "--format", "torchscript", "--video", str(video)]
    assert main([*args, "--out", str(out)]) == 2
    assert "the export is not trustworthy and was not kept" in _one_line(capsys.readouterr().err)
    assert out.read_bytes() == b"an earlier, verified export"
    assert sorted(p.name for p in tmp_path.iterdir()) == [out.name]
    assert main([*args, "--out", str(tmp_path)]) == 2
    assert f"{tmp_path}: is a folder; --out names the file to write" in _one_line(capsys.readouterr().err)


def _check_manifest(manifest: Path) -> int:
    """`arctic check` on a manifest of tiny clips."""
    options = ["--dataset", "manifest", "--workers", "0", "--size", "32", "--frames", "4"]
    return main(["check", str(manifest), *options])


# item 4: duplicate rows and train/test overlap in a manifest
def test_check_flags_duplicate_rows_and_train_test_overlap(tiny_dataset, tmp_path, capsys):
    names = TINY_SYNTH.sample_names()[:3]

    def row(name, split):
        rgb = tiny_dataset / "nturgb+d_rgb" / f"{name}_rgb.avi"
        return f"{rgb},{_ir(tiny_dataset, str(name))},{name.label},{split}\n"

    manifest = tmp_path / "rig.csv"
    manifest.write_text(
        "rgb_path,ir_path,label,split\n"
        + row(names[0], "train")
        + row(names[0], "train")  # the same row twice
        + row(names[1], "train")
        + row(names[1], "test")  # the same video on both sides
        + row(names[2], "test")
    )
    assert _check_manifest(manifest) == 1
    out = capsys.readouterr().out
    assert "2 duplicates or train/test overlaps in manifest-split:" in out
    assert f"{_ir(tiny_dataset, str(names[0]))} [0, end) is listed 2 times (train, train)" in out
    assert f"and {_ir(tiny_dataset, str(names[1]))}, which training reads too" in out


def test_check_lists_clips_that_end_past_their_recording(tiny_dataset, tmp_path, capsys):
    name = TINY_SYNTH.sample_names()[0]
    rgb, ir = tiny_dataset / "nturgb+d_rgb" / f"{name}_rgb.avi", _ir(tiny_dataset, str(name))
    manifest = tmp_path / "rig.csv"
    manifest.write_text(
        f"rgb_path,ir_path,label,start,end,split\n{rgb},{ir},0,0,4,train\n{rgb},{ir},0,2,500,test\n"
    )
    _check_manifest(manifest)
    out = capsys.readouterr().out
    assert "note: 1 clip(s) end past their recording (training stops them at its last frame): " in out
    assert ": ends at frame 500, past the " in out and f"frames of {rgb}" in out


# item 7: a PKU-MMD render no command could read
def test_synth_pkummd_with_one_camera_is_refused(tmp_path, capsys):
    root = tmp_path / "pku"
    assert main(["synth", str(root), "--layout", "pkummd", "--cameras", "1", "--performers", "2"]) == 2
    assert "needs at least 2 cameras" in _one_line(capsys.readouterr().err)
    assert not root.exists()


# smaller ones
def test_a_malicious_checkpoint_is_refused_in_one_line(tmp_path, capsys):
    path = tmp_path / "evil.pt"
    torch.save({"format": "arctic-kd/1", "payload": Path("not a tensor")}, path)
    assert main(["eval", str(path)]) == 2
    line = _one_line(capsys.readouterr().err)
    assert f"{path}: refused: this checkpoint holds Python objects beyond tensors" in line


def test_check_frames_and_a_disagreeing_setting_are_an_error(tmp_path, capsys):
    args = ["check", str(tmp_path), "--frames", "4", "--set", "data.num_frames=8"]
    assert main(args) == 2
    assert "--frames 4 and --set data.num_frames=8 disagree" in _one_line(capsys.readouterr().err)
