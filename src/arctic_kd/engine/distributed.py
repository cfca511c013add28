"""Process groups for `torchrun`: one process per device, on one node or several.

`torchrun` tells each process its place through environment variables (RANK, WORLD_SIZE, LOCAL_RANK);
`setup` reads them, joins the group (`nccl` between GPUs, `gloo` on CPU) and picks the process's device.
Without them everything here degrades to a single process, so the same code path trains on a laptop.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import torch
import torch.distributed as dist
from torch import Tensor, nn

from arctic_kd.errors import ArcticError


@dataclass(frozen=True)
class DistContext:
    """Where this process stands: its rank among `world_size` processes, and its device."""

    rank: int
    world_size: int
    device: torch.device

    @property
    def is_main(self) -> bool:
        """The one process that logs, prints and writes checkpoints."""
        return self.rank == 0

    @property
    def distributed(self) -> bool:
        return self.world_size > 1


def launched_by_torchrun() -> bool:
    return int(os.environ.get("WORLD_SIZE", "1")) > 1


def is_main_process() -> bool:
    """Rank 0 of a torchrun launch (checked before or after the group exists), or a single process."""
    return int(os.environ.get("RANK", "0")) == 0


def setup(device_name: str) -> DistContext:
    """The context of this process; joins the process group once when launched by `torchrun`.

    `device_name` is the config's `device`: under torchrun, `cuda`/`auto` mean this process's local GPU.
    """
    if not launched_by_torchrun():
        return DistContext(0, 1, resolve_device(device_name))
    local_rank = int(os.environ.get("LOCAL_RANK", "0"))
    use_cuda = device_name.startswith("cuda") or (device_name == "auto" and torch.cuda.is_available())
    if use_cuda:
        if local_rank >= torch.cuda.device_count():
            raise ArcticError(
                f"local rank {local_rank} has no GPU ({torch.cuda.device_count()} visible): "
                "--nproc_per_node must not exceed the GPUs per node"
            )
        device = torch.device("cuda", local_rank)
        torch.cuda.set_device(device)
    else:
        device = torch.device("cpu")
    if not dist.is_initialized():
        dist.init_process_group("nccl" if use_cuda else "gloo", device_id=device if use_cuda else None)
    return DistContext(dist.get_rank(), dist.get_world_size(), device)


def resolve_device(name: str) -> torch.device:
    """The config's `device` for a single process: `auto` is the GPU when there is one."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(name)


def shutdown() -> None:
    if dist.is_initialized():
        dist.destroy_process_group()


def barrier(context: DistContext) -> None:
    if context.distributed:
        dist.barrier()


def all_sum(tensor: Tensor, context: DistContext) -> Tensor:
    """Element-wise sum over processes (a copy on the caller's device; the input is left alone)."""
    if not context.distributed:
        return tensor.clone()
    total = tensor.to(context.device, copy=True)
    dist.all_reduce(total)
    return total.to(tensor.device)


class CpuSyncBatchNorm(nn.modules.batchnorm._BatchNorm):
    """Batch normalisation over the global batch of every process, for CPU (gloo) training.

    torch's `SyncBatchNorm` accepts only GPU tensors; this one sums per-channel counts, sums and sums of
    squares across processes with a differentiable all-reduce, so training with N processes of batch B/N
    normalises exactly as one process of batch B does (up to float rounding).
    """

    def _check_input_dim(self, input: Tensor) -> None:
        if input.dim() < 2:
            raise ValueError(f"expected at least 2-D input, got {input.dim()}-D")

    def forward(self, input: Tensor) -> Tensor:
        if not (self.training and dist.is_initialized() and dist.get_world_size() > 1):
            return super().forward(input)
        dims = [0, *range(2, input.dim())]
        shape = [1, -1] + [1] * (input.dim() - 2)
        count = torch.tensor([input.numel() / input.shape[1]], dtype=input.dtype, device=input.device)
        stats = _AllSum.apply(torch.cat([input.sum(dims), input.pow(2).sum(dims), count]))
        channels = input.shape[1]
        total = stats[-1]
        mean = stats[:channels] / total
        var = (stats[channels : 2 * channels] / total - mean.pow(2)).clamp_min(0)
        if self.track_running_stats:
            self._update_running_stats(mean.detach(), var.detach() * total / (total - 1).clamp_min(1))
        output = (input - mean.view(shape)) * torch.rsqrt(var.view(shape) + self.eps)
        if self.affine:
            output = output * self.weight.view(shape) + self.bias.view(shape)
        return output

    @torch.no_grad()
    def _update_running_stats(self, mean: Tensor, unbiased_var: Tensor) -> None:
        self.num_batches_tracked += 1
        momentum = 1.0 / float(self.num_batches_tracked) if self.momentum is None else self.momentum
        self.running_mean.lerp_(mean, momentum)
        self.running_var.lerp_(unbiased_var, momentum)


class _AllSum(torch.autograd.Function):
    """Sum over processes, differentiable: the gradient of a sum is the sum of the gradients."""

    @staticmethod
    def forward(ctx, tensor: Tensor) -> Tensor:
        total = tensor.clone()
        dist.all_reduce(total)
        return total

    @staticmethod
    def backward(ctx, grad: Tensor) -> Tensor:
        total = grad.clone()
        dist.all_reduce(total)
        return total


def convert_sync_batchnorm(module: nn.Module, device: torch.device) -> nn.Module:
    """Every BatchNorm of `module` normalised over the global batch: torch's kernel on GPU, ours on CPU."""
    if device.type == "cuda":
        return nn.SyncBatchNorm.convert_sync_batchnorm(module)
    if isinstance(module, nn.modules.batchnorm._BatchNorm):
        synced = CpuSyncBatchNorm(
            module.num_features, module.eps, module.momentum, module.affine, module.track_running_stats
        )
        synced.load_state_dict(module.state_dict())
        synced.train(module.training)
        return synced
    for name, child in module.named_children():
        module.add_module(name, convert_sync_batchnorm(child, device))
    return module
