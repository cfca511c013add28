"""Distributed training: sharded loading, and two `torchrun` processes on CPU (gloo) training as one."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from arctic_kd.cli import main
from arctic_kd.config import DataConfig
from arctic_kd.config.distill import DistillConfig
from arctic_kd.data.loaders import make_loaders, protocol_samples
from arctic_kd.distill import ARCTIC
from arctic_kd.engine.checkpoint import load_checkpoint
from arctic_kd.engine.setup import TrainableModules
from arctic_kd.errors import ArcticError
from arctic_kd.models import video_resnet

GLOBAL_BATCH = 4


def tiny_run(root) -> list[str]:
    settings = {
        "data.root": root,
        "data.rgb_size": 32,
        "data.ir_size": 32,
        "data.num_frames": 4,
        "data.batch_size": GLOBAL_BATCH,
        "data.workers": 0,
        "data.cache": "false",
        "teacher.width": 0.125,
        "student.width": 0.125,
        "train.tensorboard": "false",
        "optim.teacher_epochs": 0,  # the demo preset trains its teacher longer
        "train.eval_every": 1,
        "data.val.enabled": "false",  # the tiny split has 2 training performers: keep both training
    }
    return [arg for key, value in settings.items() for arg in ("--set", f"{key}={value}")]


@pytest.fixture(scope="module")
def odd_dataset(tiny_dataset, tmp_path_factory):
    """The tiny dataset with one test sample's IR video removed: an odd test split, where padding shows."""
    root = tmp_path_factory.mktemp("odd") / "tiny"
    shutil.copytree(tiny_dataset, root)
    test_names = protocol_samples(_data(root), ("ir",)).test
    (root / "nturgb+d_ir" / f"{test_names[0].sample_id}_ir.avi").unlink()
    return root


def _data(root, batch_size: int = GLOBAL_BATCH) -> DataConfig:
    return DataConfig(root=str(root), rgb_size=32, ir_size=32, num_frames=4, batch_size=batch_size, workers=0)


def _batches(loader) -> list[dict[str, torch.Tensor]]:
    """Each batch as {sample id: IR clip}."""
    return [dict(zip(batch["sample_id"], batch["ir"], strict=True)) for batch in loader]


def test_the_shards_of_a_batch_make_the_single_process_batch_with_the_same_clips(odd_dataset):
    def loaders(world_size: int, rank: int):
        train, _, test, _ = make_loaders(_data(odd_dataset), ("ir",), seed=3, progress=False)
        if world_size > 1:
            train.shard(rank, world_size, equal_steps=True)
            test.shard(rank, world_size, equal_steps=False)
        return train, test

    (train, _), *shards = [loaders(1, 0), loaders(2, 0), loaders(2, 1)]
    for _epoch in range(2):  # the second pass has another order, in every process alike
        single = _batches(train)
        parts = [_batches(shard_train) for shard_train, _ in shards]
        assert len(single) == len(parts[0]) == len(parts[1]) == len(train) == len(shards[0][0])
        for whole, first, second in zip(single, *parts, strict=True):
            assert len(first) == len(second) == GLOBAL_BATCH // 2
            assert {**first, **second}.keys() == whole.keys()
            for sample_id, clip in {**first, **second}.items():  # augmentation does not depend on the rank
                torch.testing.assert_close(clip, whole[sample_id], rtol=0, atol=0)

    test_ids = [set(batch) for _, shard_test in shards for batch in _batches(shard_test)]
    every_id = [sample_id for batch in test_ids for sample_id in batch]
    expected = {s.sample_id for s in protocol_samples(_data(odd_dataset), ("ir",)).test}
    assert len(every_id) == len(expected) == 5 and set(every_id) == expected  # once each, no padding
    assert [len(batch) for _, shard_test in shards for batch in _batches(shard_test)] == [2, 1, 2]


def test_a_loader_resumes_in_the_middle_of_a_pass(odd_dataset):
    def loader():
        return make_loaders(_data(odd_dataset), ("ir",), seed=0, progress=False)[0]

    running = loader()
    list(running)  # pass 0
    stream = iter(running)
    next(stream)
    state = running.state_dict()
    assert state == {"epoch": 1, "batch": 1}
    resumed = loader()
    resumed.load_state_dict(state)
    rest, again = _batches(stream), _batches(resumed)
    assert [b.keys() for b in rest] == [b.keys() for b in again] and len(rest) == len(running) - 1
    for a, b in zip(rest, again, strict=True):
        for sample_id in a:
            torch.testing.assert_close(a[sample_id], b[sample_id], rtol=0, atol=0)


def test_a_global_batch_that_does_not_split_evenly_is_an_error(odd_dataset):
    train, _, _, _ = make_loaders(_data(odd_dataset, batch_size=3), ("ir",), seed=0, progress=False)
    with pytest.raises(ArcticError, match="does not split evenly between 2 processes"):
        train.shard(0, 2, equal_steps=True)


def test_torchrun_with_two_processes_gives_the_metrics_of_one_process(odd_dataset, tmp_path):
    """Two gloo processes with batch 2 each against one process with batch 4, SyncBatchNorm on; the final
    multi-view test (2 clips per video) too.

    Tolerance: the two runs do the same arithmetic in another order (gradients averaged across processes,
    BatchNorm statistics as sums of the two halves, E[x²]−E[x]² instead of torch's two-pass variance), so
    weights agree to float32 rounding, amplified by a few training steps: 1e-5 absolute (measured: about
    4e-7; without synchronised BatchNorm they differ by 2e-3 and more). The evaluation metrics, which only
    depend on each clip's arg-max, must then be equal; the training losses agree to 1e-5 relative.
    """
    args = ["train", "--modality", "ir", *tiny_run(odd_dataset)]
    args += ["--set", "optim.epochs=2", "--set", "optim.lr=0.01", "--set", "train.sync_batchnorm=true"]
    args += ["--set", "data.test_clips=2", "--set", "data.val.enabled=true"]  # P001 trains, P002 validates
    args += ["--set", "device=cpu"]  # gloo: two processes must also start where only one GPU is
    assert main([*args, "--out", str(tmp_path / "one")]) == 0
    done = run_two_processes(args, tmp_path / "two")
    assert done.stdout.count("final test (epoch 2)") == 1  # rank 0 alone reports

    one, two = (_metrics(tmp_path / name) for name in ("one", "two"))
    assert len(one) == len(two) == 2
    for single, double in zip(one, two, strict=True):
        # every process holds the same validation split and reads its share: each clip counted once
        assert double["val_samples"] == single["val_samples"] == 6
        splits = ("val", "test") if single["epoch"] == 2 else ("val",)  # the test split: at the end only
        assert set(double) == set(single) and ("test_top1" in single) == (single["epoch"] == 2)
        for key in (f"{split}_{name}" for split in splits for name in ("top1", "top5", "mean_class")):
            assert double[key] == single[key]
        assert double["train_ce"] == pytest.approx(single["train_ce"], rel=1e-5)
    assert one[-1]["test_samples"] == two[-1]["test_samples"] == 5  # odd: a padded shard would count 6
    one, two = (json.loads((tmp_path / name / "multiview.json").read_text()) for name in ("one", "two"))
    assert two["views"] == one["views"] == 2
    assert two["samples"] == one["samples"] == 5  # each video once, from one process or the other
    for key in ("top1", "top5", "mean_class", "confusion"):
        assert two[key] == one[key]
    weights = [load_checkpoint(tmp_path / name / "last.pt")["state_dict"] for name in ("one", "two")]
    assert weights[0].keys() == weights[1].keys()  # synchronised BatchNorm saves plain BatchNorm keys
    for key, value in weights[0].items():
        torch.testing.assert_close(weights[1][key], value, rtol=0, atol=1e-5, msg=key)


def _metrics(run_dir) -> list[dict]:
    return [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]


def test_ddp_synchronises_the_student_and_the_method_modules_never_the_teacher():
    def tiny(in_channels: int) -> torch.nn.Module:
        return video_resnet("r3d", 10, num_classes=2, in_channels=in_channels, width=0.125)

    distiller = ARCTIC(tiny(1), tiny(3), DistillConfig())
    synchronised = TrainableModules(distiller)
    params = {id(p) for p in synchronised.parameters()}
    assert params == {id(p) for p in distiller.trainable_parameters()}
    assert any(name.startswith("extras.arm.") for name, _ in synchronised.named_parameters())
    teacher = {id(t) for t in [*distiller.teacher.parameters(), *distiller.teacher.buffers()]}
    assert not teacher & (params | {id(b) for b in synchronised.buffers()})


def test_torchrun_with_two_processes_distils_like_one_process(odd_dataset, tmp_path):
    """ARCTIC at its defaults (ARM on attention maps, with its query/key BatchNorm synchronised, ARC, KD):
    two gloo processes with 6 clips each against one process with the global batch of 12, for the two
    steps of one epoch. Every loss is a mean over clips, so the runs differ only in the order of float
    operations: weights to 1e-5 (measured 3e-7; with ARM's BatchNorm left unsynchronised, 2e-2), the
    losses to 1e-5 relative, the metrics exactly.

    Why two steps and not two epochs: distillation with ARM amplifies float rounding step by step. Two
    single-process runs that differ only in the thread count (OMP_NUM_THREADS 1 vs 2) end 12 steps apart
    by 1e-2 in the weights, so after many steps no run, distributed or not, reproduces another to rounding.
    """
    teacher = tmp_path / "teacher"
    tiny = tiny_run(odd_dataset)
    assert main(["train", "--modality", "rgb", "--out", str(teacher), *tiny, "--set", "optim.epochs=1"]) == 0
    args = ["distill", "--teacher", str(teacher / "last.pt"), *tiny, "--set", "optim.epochs=1"]
    args += ["--set", "data.batch_size=12", "--set", "optim.lr=0.01", "--set", "train.sync_batchnorm=true"]
    args += ["--set", "device=cpu"]
    assert main([*args, "--out", str(tmp_path / "one")]) == 0
    run_two_processes(args, tmp_path / "two")

    one, two = (_metrics(tmp_path / name) for name in ("one", "two"))
    assert len(one) == len(two) == 1
    for single, double in zip(one, two, strict=True):
        assert double["test_samples"] == single["test_samples"] == 5
        for key in ("test_top1", "test_top5", "test_mean_class"):
            assert double[key] == single[key]
        for loss in ("ce", "arm", "arc", "kd"):
            assert double[f"train_{loss}"] == pytest.approx(single[f"train_{loss}"], rel=1e-5), loss
    final = [load_checkpoint(tmp_path / name / "last.pt") for name in ("one", "two")]
    for part in ("state_dict", "method_state"):
        assert final[0][part].keys() == final[1][part].keys()
        for key, value in final[0][part].items():
            torch.testing.assert_close(final[1][part][key], value, rtol=0, atol=1e-5, msg=f"{part}.{key}")


@pytest.mark.parametrize("value", ["attention", "relation"])
def test_only_arm_relations_depend_on_how_a_batch_is_split_between_processes(value):
    """README, "Training at scale": ARM's attention maps are per clip, so each process's share gives the
    distances of the whole batch; relations compare the clips of a batch, so a share of 2 clips relates
    them only to each other, and two processes train differently from one (by design, documented)."""
    from arctic_kd.config.distill import ArmConfig
    from arctic_kd.distill.arctic import AttentionRelationMatching

    channels = {"layer3": 4, "layer4": 8}
    arm = AttentionRelationMatching(channels, channels, ArmConfig(value=value, stages=("layer3", "layer4")))
    teacher = {"layer3": torch.rand(4, 4, 2, 4, 4), "layer4": torch.rand(4, 8, 1, 2, 2)}
    student = {"layer3": torch.rand(4, 4, 2, 4, 4), "layer4": torch.rand(4, 8, 1, 2, 2)}
    whole = arm.distances(teacher, student)
    halves = torch.cat(
        [
            arm.distances({k: v[part] for k, v in teacher.items()}, {k: v[part] for k, v in student.items()})
            for part in (slice(0, 2), slice(2, 4))
        ]
    )
    if value == "attention":
        torch.testing.assert_close(halves, whole)
    else:
        assert not torch.allclose(halves, whole, atol=1e-2)


def run_two_processes(args: list[str], out: Path) -> subprocess.CompletedProcess:
    """`arctic ARGS --out OUT` under torchrun with 2 processes on this machine; it must succeed."""
    launch = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2"]
    done = subprocess.run(
        [*launch, "-m", "arctic_kd", *args, "--out", str(out)], capture_output=True, text=True, timeout=300
    )
    assert done.returncode == 0, done.stderr[-3000:]
    return done
