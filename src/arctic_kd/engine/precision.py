"""Mixed precision: what `train.precision` means on a device, and which kernels the backward pass may use.

torch 2.13's oneDNN computes a wrong bf16 Conv3d weight gradient on the AVX-512 CPU measured (garbage up to
1e38, NaN included, different on every call) when a kernel 3 frames deep, padded by 1, meets a 2-frame
input with a batch above 1 and 16 or more channels, in the cases measured. R3D-10 meets it in `layer3` at 8
input frames and R(2+1)D-18 (whose temporal convolutions are 3×1×1) in `layer4` at 16. The gradients of the
inputs (all that Grad-CAM takes) and ATen's own kernels are right, so where oneDNN fails a probe of both
kernel shapes, bf16 backward runs without oneDNN: correct, but several times slower than fp32, for every
network. A torch whose oneDNN passes the probe keeps the fast path."""

from __future__ import annotations

import contextlib
import functools

import torch

from arctic_kd.errors import ArcticError

_PROBE_SHAPE = (2, 16, 2, 4, 4)  # batch 2, 16 channels, 2 frames of 4×4: the smallest case seen failing
_PROBE_KERNELS = ((3, 3, 3), (3, 1, 1))  # R3D's and R(2+1)D's temporal kernel, each padded to keep 2 frames
_PROBE_TOLERANCE = 0.05  # bf16 itself is off by under 1 % of the largest weight gradient here
_PROBE_CALLS = 2  # the wrong gradients change from call to call: one might come out right by chance


def autocast_dtype(precision: str, device: torch.device) -> torch.dtype | None:
    """The autocast dtype of `train.precision` on `device`; None means plain fp32."""
    if precision == "auto":
        if device.type != "cuda":
            return None
        return torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
    if precision == "fp16" and device.type != "cuda":
        raise ArcticError("train.precision=fp16 needs a GPU; on CPU use bf16 or fp32")
    return {"fp32": None, "bf16": torch.bfloat16, "fp16": torch.float16}[precision]


def autocast(dtype: torch.dtype | None, device: torch.device) -> contextlib.AbstractContextManager:
    """Autocast to `dtype` (from `autocast_dtype`) on `device`; None: plain fp32."""
    return torch.autocast(device.type, dtype=dtype, enabled=dtype is not None)


def conv3d_weight_gradient_error(dtype: torch.dtype, kernel: tuple[int, int, int], calls: int = 1) -> float:
    """Largest error of a Conv3d weight gradient in `dtype` on the CPU's current kernels over `calls` calls,
    relative to the largest fp32 gradient, for `kernel` over the probe input of the module docstring."""
    generator = torch.Generator().manual_seed(0)
    inputs, output_grad = (torch.randn(_PROBE_SHAPE, generator=generator) for _ in range(2))
    weight = torch.randn(16, 16, *kernel, generator=generator)
    padding = [k // 2 for k in kernel]

    def weight_grad(cast: torch.dtype) -> torch.Tensor:
        grads = torch.ops.aten.convolution_backward(
            output_grad.to(cast), inputs.to(cast), weight.to(cast), None,
            [1, 1, 1], padding, [1, 1, 1], False, [0, 0, 0], 1, [False, True, False],
        )  # fmt: skip
        return grads[1].float()

    exact = weight_grad(torch.float32)
    errors = [float((weight_grad(dtype) - exact).abs().max() / exact.abs().max()) for _ in range(calls)]
    return float("inf") if any(e != e for e in errors) else max(errors)  # NaN → inf: compares as a failure


@functools.cache
def onednn_conv3d_backward_is_sound() -> bool:
    """Whether this CPU's oneDNN gives the right bf16 Conv3d weight gradients (probed once per process)."""
    if not torch.backends.mkldnn.is_available():
        return True
    with _onednn(enabled=True):
        error = max(conv3d_weight_gradient_error(torch.bfloat16, k, _PROBE_CALLS) for k in _PROBE_KERNELS)
    return error < _PROBE_TOLERANCE


def avoids_onednn(dtype: torch.dtype | None, device: torch.device) -> bool:
    """Whether backward passes in `dtype` on `device` must run without oneDNN (see the module docstring)."""
    return dtype == torch.bfloat16 and device.type == "cpu" and not onednn_conv3d_backward_is_sound()


def backward_kernels(dtype: torch.dtype | None, device: torch.device) -> contextlib.AbstractContextManager:
    """The kernels a backward pass in `dtype` on `device` may use: all, unless `avoids_onednn`."""
    return _onednn(enabled=False) if avoids_onednn(dtype, device) else contextlib.nullcontext()


@contextlib.contextmanager
def _onednn(enabled: bool):
    """oneDNN on or off for a block (`torch.backends.mkldnn.flags` would also reset its TF32 setting)."""
    before = torch.backends.mkldnn.enabled
    torch.backends.mkldnn.enabled = enabled
    try:
        yield
    finally:
        torch.backends.mkldnn.enabled = before
