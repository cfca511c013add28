"""The three stages a user runs: train one modality, distill RGB→IR, evaluate a checkpoint.

Each stage reads a `Config`, builds data, models and the method, and calls the one training loop.
"""

from __future__ import annotations

import dataclasses
import json
import os
import random
import shutil
from pathlib import Path
from typing import Literal

import numpy as np
import torch
from torch import nn

from arctic_kd.config import Config, ModelConfig, OptimConfig
from arctic_kd.config.distill import method_sections
from arctic_kd.data.cache import FrameCache
from arctic_kd.data.cliploader import check_batch_split
from arctic_kd.data.loaders import Loaders, frame_cache_for, make_loaders, make_view_loader
from arctic_kd.distill import build_distiller
from arctic_kd.distill.agreement import AgreementMeter
from arctic_kd.distill.base import Vanilla
from arctic_kd.engine import distributed
from arctic_kd.engine.checkpoint import load_checkpoint, model_from_checkpoint
from arctic_kd.engine.distributed import DistContext, resolve_device
from arctic_kd.engine.evaluate import evaluate_views, sum_over_processes
from arctic_kd.engine.health import checkpoint_health, teacher_warnings, warning_lines
from arctic_kd.engine.precision import autocast, autocast_dtype
from arctic_kd.engine.runlog import training_losses
from arctic_kd.engine.train import fit, require_test_clips
from arctic_kd.errors import ArcticError
from arctic_kd.models.factory import build_model, model_spec
from arctic_kd.models.pretrained import load_pretrained
from arctic_kd.progress import say

CHANNELS = {"rgb": 3, "ir": 1}
Stage = Literal["train", "distill"]  # `run_train` or `run_distill`


def seed_everything(seed: int, deterministic: bool = False) -> None:
    """Seed every generator; `deterministic` also picks deterministic kernels (slower on GPU), so that
    two runs, or a run and its resumed copy, give bit-identical weights on the same machine."""
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)
    if deterministic:
        os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")  # cuBLAS' condition for determinism
    torch.use_deterministic_algorithms(deterministic)
    torch.backends.cudnn.deterministic = deterministic
    torch.backends.cudnn.benchmark = not deterministic


def _spec(model: ModelConfig, modality: str, num_classes: int) -> dict:
    return model_spec(model.arch, model.depth, model.width, model.dropout, CHANNELS[modality], num_classes)


def _new_model(model: ModelConfig, spec: dict) -> nn.Module:
    """The network to train: fresh, or started from `model.pretrained` (head re-initialised)."""
    network = build_model(spec)
    if model.pretrained:
        say(load_pretrained(network, model.pretrained).summary())
    return network


TEACHER_ONLY_OPTIM = ("teacher_epochs", "teacher_label_smoothing")  # what `teacher_optim` folds in


def teacher_optim(optim: OptimConfig) -> OptimConfig:
    """The RGB teacher's optimisation settings: `teacher_epochs` and `teacher_label_smoothing` where set."""
    smoothing = optim.teacher_label_smoothing
    return dataclasses.replace(
        optim,
        epochs=optim.teacher_epochs or optim.epochs,
        label_smoothing=optim.label_smoothing if smoothing is None else smoothing,
    )


def what_it_reads(config: Config, stage: Stage, modality: str = "ir") -> dict:
    """The part of `config` that the result of `stage` ("train" or "distill") depends on, as plain data:
    two runs that read the same give the same result, so a finished one stands for the other (`arctic
    bench` reuses run folders by it). Training reads its own model section and no `distill`; the RGB
    teacher reads its own optimisation settings (`teacher_optim`), the IR-only baseline none of the
    teacher's. A distillation reads only its method's `distill` sections (a new ARCTIC default leaves the
    baselines' runs valid) and everything its teacher reads."""
    if stage == "distill":
        data = config.to_dict()
        distill = data["distill"]
        kept = ("method", *method_sections(distill["method"]))
        return {**data, "distill": {k: distill[k] for k in kept if k in distill}}
    teacher = modality == "rgb"
    optim = teacher_optim(config.optim) if teacher else config.optim
    data = dataclasses.replace(config, optim=optim).to_dict()
    for key in TEACHER_ONLY_OPTIM:
        del data["optim"][key]
    if not teacher:
        del data["train"]["restarts"]  # only the teacher restarts
    return {k: v for k, v in data.items() if k not in ("distill", "student" if teacher else "teacher")}


def run_train(
    config: Config,
    modality: str,
    run_dir: Path,
    frame_cache: FrameCache | None = None,
    progress: bool = True,
    resume: bool = False,
    schedule_change: bool = False,
) -> dict:
    """Cross-entropy on one modality: `rgb` trains the teacher (config.teacher), `ir` the IR-only baseline.

    Under `torchrun`, every process runs this; `resume` continues from `run_dir/last.pt` when there is one
    (refused when the optimisation settings changed, unless `schedule_change`). The teacher is checked for
    signs of a broken training (`engine.health`; its warnings under "teacher_warnings"), and with
    `train.restarts` above 1 trained from that many seeds, the best kept (`_best_restart`).
    """
    resuming = {"resume": resume, "schedule_change": schedule_change}
    if modality == "rgb":
        config = dataclasses.replace(config, optim=teacher_optim(config.optim))
        if config.train.restarts > 1:
            frame_cache = frame_cache or frame_cache_for(config.data)  # decoded once for every restart
            return _best_restart(config, run_dir, frame_cache, progress, resuming)
    context = _launch(config)
    progress = progress and context.is_main
    seed_everything(config.seed, config.deterministic)
    frame_cache = frame_cache or frame_cache_for(config.data)
    loaders = make_loaders(config.data, (modality,), config.seed, frame_cache, progress)
    class_names = loaders.class_names
    model_config = config.network(modality)
    spec = _spec(model_config, modality, len(class_names))
    distiller = Vanilla(
        _new_model(model_config, spec),
        student_modality=modality,
        label_smoothing=config.optim.label_smoothing,
    )
    extra = {
        "model": spec,
        "modality": modality,
        "class_names": class_names,
        "config": config.to_dict(),
        "method": "ce",
    }
    result = _fit(distiller, loaders, config, run_dir, extra, context, progress, frame_cache, **resuming)
    if modality == "rgb" and result["metrics_log"] is not None:
        losses = training_losses(result["metrics_log"])
        result["teacher_warnings"] = teacher_warnings(held_out(result)["top1"], len(class_names), losses)
        for line in warning_lines(result["teacher_warnings"]):
            say(line)
    return result


def held_out(result: dict) -> dict:
    """The metrics a run is judged by: its validation split's final ones once it has one (issue 23), else
    the final test metrics."""
    return result.get("validation", {}).get("final") or result["final"]


def _best_restart(
    config: Config, run_dir: Path, frame_cache: FrameCache | None, progress: bool, resuming: dict
) -> dict:
    """Train the teacher from `train.restarts` seeds (seed, seed+1, …) in RUN_DIR/restartK and keep the best
    on held-out data: its files are copied into RUN_DIR (RUN_DIR/restarts.json says which, and why)."""
    results = []
    for k in range(config.train.restarts):
        seed = config.seed + k
        if progress:
            say(f"teacher restart {k + 1}/{config.train.restarts}: seed {seed}")
        restart = dataclasses.replace(config, seed=seed, train=dataclasses.replace(config.train, restarts=1))
        results.append(run_train(restart, "rgb", run_dir / f"restart{k}", frame_cache, progress, **resuming))
    scores = [held_out(r)["top1"] for r in results]
    best = scores.index(max(scores))
    chosen = {"chosen": best, "seeds": [config.seed + k for k in range(len(scores))], "top1": scores}
    if distributed.is_main_process():
        for name in RESTART_FILES:
            if (run_dir / f"restart{best}" / name).is_file():  # no best.pt without a validation split
                shutil.copy2(run_dir / f"restart{best}" / name, run_dir / name)
        (run_dir / "restarts.json").write_text(json.dumps(chosen) + "\n")
    if progress:
        tried = ", ".join(f"{s:.1f}" for s in scores)
        say(f"teacher restarts: top-1 {tried}; keeping seed {config.seed + best}")
    metrics_log = run_dir / "metrics.jsonl" if distributed.is_main_process() else None
    return {**results[best], "metrics_log": metrics_log, "restarts": chosen}


RESTART_FILES = ("last.pt", "best.pt", "metrics.jsonl", "multiview.json", "samples.json")  # the winner's


def run_distill(
    config: Config,
    run_dir: Path,
    frame_cache: FrameCache | None = None,
    progress: bool = True,
    resume: bool = False,
    schedule_change: bool = False,
) -> dict:
    """Distil the frozen RGB teacher checkpoint `config.distill.teacher` into an IR student."""
    context = _launch(config)
    progress = progress and context.is_main
    seed_everything(config.seed, config.deterministic)
    teacher_checkpoint = load_checkpoint(config.distill.teacher)
    if teacher_checkpoint.get("modality") != "rgb":
        raise ArcticError(
            f"{config.distill.teacher}: the teacher must be an RGB network; this checkpoint sees "
            f"{teacher_checkpoint.get('modality')} (give the checkpoint of `arctic train --modality rgb`)"
        )
    if progress:
        recorded, warnings = checkpoint_health(teacher_checkpoint, Path(config.distill.teacher))
        for line in (recorded, *warning_lines(warnings)):
            say(line)
    frame_cache = frame_cache or frame_cache_for(config.data)
    loaders = make_loaders(config.data, ("rgb", "ir"), config.seed, frame_cache, progress)
    class_names = loaders.class_names
    if teacher_checkpoint["class_names"] != class_names:
        raise ArcticError(
            f"{config.distill.teacher}: the teacher was trained on other classes than "
            f"{config.data.root} has ({len(teacher_checkpoint['class_names'])} vs {len(class_names)})"
        )
    spec = _spec(config.student, "ir", len(class_names))
    distiller = build_distiller(
        config.distill,
        _new_model(config.student, spec),
        model_from_checkpoint(teacher_checkpoint),
        label_smoothing=config.optim.label_smoothing,
    )
    extra = {
        "model": spec,
        "modality": "ir",
        "class_names": class_names,
        "config": config.to_dict(),
        "method": config.distill.method,
    }
    resuming = {"resume": resume, "schedule_change": schedule_change}
    return _fit(distiller, loaders, config, run_dir, extra, context, progress, frame_cache, **resuming)


def _fit(
    distiller,
    loaders: Loaders,
    config: Config,
    run_dir: Path,
    extra,
    context: DistContext,
    progress,
    frame_cache: FrameCache | None,
    resume: bool = False,
    schedule_change: bool = False,
) -> dict:
    train, val, test = loaders.train, loaders.val, loaders.test
    if context.distributed:  # every process holds the same split (data.validation); each reads its share
        train.shard(context.rank, context.world_size, equal_steps=True)
        for evaluated in (val, test):
            if evaluated is not None:
                evaluated.shard(context.rank, context.world_size, equal_steps=False)
    result = fit(
        distiller,
        train,
        test,
        config,
        run_dir,
        extra,
        len(extra["class_names"]),
        context,
        progress,
        resume,
        schedule_change,
        val,
    )
    result["multiview"] = final_multiview(
        distiller.student, config, extra["modality"], result["final"], frame_cache, context, progress
    )
    if context.is_main:
        (run_dir / "multiview.json").write_text(json.dumps(result["multiview"]) + "\n")
    skipped = train.report.samples | test.report.samples | (val.report.samples if val is not None else {})
    result["skipped"] = {k: f"{v.path}: {v.problem}" for k, v in skipped.items()}
    result["left_out"], result["whole_frames"] = train.report.left_out, train.report.whole_frames
    if context.is_main:
        unused = {k: result[k] for k in ("left_out", "skipped", "whole_frames")}
        (run_dir / "samples.json").write_text(json.dumps(unused, indent=1) + "\n")
    return result


def _launch(config: Config) -> DistContext:
    """This process's place in the launch, checked against the config before any data is read."""
    context = distributed.setup(config.device)
    check_batch_split(config.data.batch_size, context.world_size)
    return context


def final_multiview(
    model: nn.Module,
    config: Config,
    modality: str,
    final: dict,
    frame_cache: FrameCache | None,
    context: DistContext,
    progress,
) -> dict:
    """Multi-view test metrics of a run's final model, measured once at the end (every epoch would multiply
    test time by the number of views). With a single view they are the final epoch's own.

    In the training's precision, like the per-epoch tests; under torchrun every process tests its share of
    the videos (none twice) and the counts are added up, so each video is counted once.
    """
    view_count = config.data.test_clips * config.data.test_crops
    if view_count == 1:
        return {**{k: v for k, v in final.items() if k != "epoch"}, "views": 1}
    views, class_names = make_view_loader(config.data, (modality,), frame_cache, progress)
    if context.distributed:
        views.shard(context.rank, context.world_size, equal_steps=False)
    with autocast(autocast_dtype(config.train.precision, context.device), context.device):
        metrics = evaluate_views(model, views, modality, len(class_names), context.device, progress)
    return {**sum_over_processes(metrics["multiview"], context), "views": view_count}


def run_eval(
    checkpoint_path: str | Path, config: Config, progress: bool = True, teacher_path: str | Path | None = None
) -> dict:
    """Test-split accuracy of a checkpoint on the dataset and protocol of `config.data`: single-clip at the
    top level, multi-view (`data.test_clips` × `data.test_crops`) under "multiview". With a teacher, also
    how closely the checkpoint's activation maps follow the teacher's (`distill.agreement.AgreementMeter`),
    measured in the same pass as its `on_batch` hook, so the test clips are decoded once."""
    checkpoint = load_checkpoint(checkpoint_path)
    modality = checkpoint["modality"]
    teacher = None if teacher_path is None else _agreement_teacher(teacher_path, checkpoint)
    modalities = (modality,) if teacher is None else (teacher["modality"], modality)
    test, class_names = make_view_loader(config.data, modalities, progress=progress)
    for path, trained in ((checkpoint_path, checkpoint), (teacher_path, teacher)):
        if trained is not None and class_names != trained["class_names"]:
            raise ArcticError(f"{path}: trained on other classes than {config.data.root} has")
    device = resolve_device(config.device)
    model = model_from_checkpoint(checkpoint).to(device)
    rho = config.distill.arc.rho
    agreement = None
    if teacher is not None:
        agreement = AgreementMeter(model_from_checkpoint(teacher).to(device), model, modalities, rho, device)
    on_batch = None if agreement is None else agreement.add
    metrics = evaluate_views(model, test, modality, len(class_names), device, progress, on_batch)
    require_test_clips(metrics, test)
    if agreement is not None:
        metrics["agreement"] = {**agreement.result().summary(), "teacher": str(teacher_path), "rho": rho}
    metrics["skipped"] = len(test.report)
    return metrics


def _agreement_teacher(path: str | Path, student: dict) -> dict:
    """The RGB teacher checkpoint to compare an IR student's activation maps with (ARC's direction: the
    clips' registration maps RGB onto IR)."""
    teacher = load_checkpoint(path)
    if (teacher["modality"], student["modality"]) != ("rgb", "ir"):
        raise ArcticError(
            f"--teacher compares an IR student with an RGB teacher; {path} sees {teacher['modality']} "
            f"and the checkpoint under test {student['modality']}"
        )
    return teacher
