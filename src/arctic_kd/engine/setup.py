"""What one `fit` call trains with, set up from the config before the first step: the trainable modules
(in DistributedDataParallel under torchrun, their forward compiled with `train.compile`), the optimiser and
its warm-up + cosine schedule, the gradient scaler and the autocast precision.
"""

from __future__ import annotations

import contextlib
import math
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

import torch
from torch import Tensor, nn
from torch.nn.parallel import DistributedDataParallel

from arctic_kd.config import Config, OptimConfig
from arctic_kd.distill.base import Distiller
from arctic_kd.engine import distributed
from arctic_kd.engine.distributed import DistContext
from arctic_kd.engine.precision import autocast, autocast_dtype, backward_kernels
from arctic_kd.progress import say_once


def build_optimizer(parameters: Iterable[nn.Parameter], config: OptimConfig) -> torch.optim.Optimizer:
    """SGD (Nesterov) or AdamW; no weight decay on biases and normalisation weights."""
    decay, no_decay = [], []
    for p in parameters:
        (no_decay if p.ndim <= 1 else decay).append(p)
    groups = [
        {"params": decay, "weight_decay": config.weight_decay},
        {"params": no_decay, "weight_decay": 0.0},
    ]
    if config.optimizer == "sgd":
        return torch.optim.SGD(groups, lr=config.lr, momentum=config.momentum, nesterov=config.momentum > 0)
    return torch.optim.AdamW(groups, lr=config.lr)


def warmup_cosine(total_steps: int, warmup_steps: int) -> Callable[[int], float]:
    """Learning-rate factor per step: linear warm-up to 1, then cosine decay to 0."""

    def factor(step: int) -> float:
        if step < warmup_steps:
            return (step + 1) / warmup_steps
        progress = (step - warmup_steps) / max(1, total_steps - warmup_steps)
        return 0.5 * (1.0 + math.cos(math.pi * min(1.0, progress)))

    return factor


class TrainableModules(nn.Module):
    """The student and the method's own modules: what DistributedDataParallel synchronises. The teacher is
    deliberately not a submodule (frozen, it has no gradients to reduce and buffers to broadcast)."""

    def __init__(self, distiller: Distiller) -> None:
        super().__init__()
        self.student = distiller.student
        self.extras = distiller.extra_modules()
        object.__setattr__(self, "distiller", distiller)  # not registered: keeps the teacher out of DDP

    def forward(self, batch: dict) -> tuple[Tensor, dict[str, Tensor]]:
        return self.distiller.forward_train(batch)


class CompiledOrEager:
    """A network's `forward_features` under `torch.compile`, which goes back to eager for good, with one
    warning, when compiling fails (no working C++ compiler or Triton, an operator inductor cannot lower):
    a slower run, never a crash. It replaces the method on the instance, not the module, so the state-dict
    keys stay those of the eager network (no `_orig_mod.`) and checkpoints load either way."""

    def __init__(self, network: nn.Module, name: str) -> None:
        self.eager = network.forward_features
        self.name = name
        self.compiled: Callable | None = torch.compile(self.eager)

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        if self.compiled is not None:
            try:
                return self.compiled(*args, **kwargs)
            except torch._dynamo.exc.TorchDynamoException as error:
                self.compiled = None
                say_once(f"train.compile: {self.name} runs eager, compiling it failed: {_first_line(error)}")
        return self.eager(*args, **kwargs)


def compile_networks(distiller: Distiller) -> None:
    """`train.compile`: the student's forward and the frozen teacher's (distillation), compiled in place;
    the method's own modules are small and stay eager. Where torch cannot compile at all (e.g. a Python it
    does not support yet), one warning and eager mode."""
    for name in ("student", "teacher"):
        network = getattr(distiller, name)
        if network is None or isinstance(network.forward_features, CompiledOrEager):  # a reused teacher
            continue
        try:
            network.forward_features = CompiledOrEager(network, name)
        except RuntimeError as error:
            say_once(f"train.compile: training eager, torch cannot compile here: {_first_line(error)}")
            return


def _first_line(error: BaseException) -> str:
    """The cause in one line: a backend's failure is wrapped by dynamo, whose own first line names only
    the backend."""
    cause = getattr(error, "inner_exception", None) or error
    return f"{type(cause).__name__}: {(str(cause).strip().splitlines() or [''])[0]}"


@dataclass
class Run:
    """Everything one `fit` call trains with."""

    distiller: Distiller
    model: nn.Module  # `TrainableModules`, wrapped in DDP when distributed
    optimizer: torch.optim.Optimizer
    scheduler: torch.optim.lr_scheduler.LRScheduler
    scaler: torch.amp.GradScaler
    dtype: torch.dtype | None
    channels_last: bool
    context: DistContext

    def autocast(self) -> contextlib.AbstractContextManager:
        return autocast(self.dtype, self.context.device)

    def backward_kernels(self) -> contextlib.AbstractContextManager:
        return backward_kernels(self.dtype, self.context.device)

    def to_device(self, batch: dict) -> dict:
        def move(value: Any) -> Any:
            if not torch.is_tensor(value):
                return value
            value = value.to(self.context.device, non_blocking=True)
            if self.channels_last and value.dim() == 5:
                value = value.contiguous(memory_format=torch.channels_last_3d)
            return value

        return {k: move(v) for k, v in batch.items()}


def prepare_run(distiller: Distiller, config: Config, context: DistContext, steps_per_epoch: int) -> Run:
    """The distiller on its device (SyncBatchNorm, channels-last where asked), its trainable modules in DDP
    under torchrun, and the optimiser, warm-up + cosine schedule and gradient scaler of `config`."""
    device = context.device
    if config.train.sync_batchnorm and context.distributed:
        distiller.student = distributed.convert_sync_batchnorm(distiller.student, device)
        for name, module in distiller.extra_modules().items():
            setattr(distiller, name, distributed.convert_sync_batchnorm(module, device))
    channels_last = config.train.channels_last and device.type == "cuda"
    distiller.to(device)
    if channels_last:
        distiller.to(memory_format=torch.channels_last_3d)
    if config.train.compile:
        compile_networks(distiller)
    model: nn.Module = TrainableModules(distiller)
    if context.distributed:
        model = DistributedDataParallel(model, device_ids=[device.index] if device.type == "cuda" else None)
    optimizer = build_optimizer(distiller.trainable_parameters(), config.optim)
    scheduler = torch.optim.lr_scheduler.LambdaLR(
        optimizer,
        warmup_cosine(
            config.optim.epochs * steps_per_epoch, round(config.optim.warmup_epochs * steps_per_epoch)
        ),
    )
    dtype = autocast_dtype(config.train.precision, device)
    scaler = torch.amp.GradScaler(device.type, enabled=dtype == torch.float16)
    return Run(distiller, model, optimizer, scheduler, scaler, dtype, channels_last, context)
