"""Training throughput of an R(2+1)D-18 on 16×112×112 clips: forward, backward and an SGD step on random
clips already on the device (data loading left out), in fp32 and in mixed precision, with and without
channels-last-3d memory, optionally under torch.compile.

python benchmarks/bench_throughput.py --tiny     # CPU: batch 2, 2 timed steps per setting, ~2-3 min
python benchmarks/bench_throughput.py --compile  # GPU: batch 32, 20 timed steps, also torch.compile

Mixed precision is autocast in bf16 by default (on CPU the only choice; on GPU it needs no gradient
scaler); `--amp-dtype fp16` uses fp16 with a GradScaler on GPU. A setting that fails (torch.compile without
a working compiler, a dtype the device lacks) is reported and skipped. bf16 backward avoids oneDNN where
its Conv3d weight gradient is wrong, as training does (`arctic_kd.engine.precision`).
"""

from __future__ import annotations

import argparse
import platform
import time
from dataclasses import dataclass

import torch
from torch import Tensor, nn

from arctic_kd.engine.precision import autocast, backward_kernels, onednn_conv3d_backward_is_sound
from arctic_kd.models import video_resnet

NUM_CLASSES = 60  # NTU RGB+D 60


@dataclass(frozen=True)
class Setting:
    name: str
    amp: bool
    channels_last: bool
    compile: bool = False


SETTINGS = (
    Setting("fp32", amp=False, channels_last=False),
    Setting("fp32 + channels-last", amp=False, channels_last=True),
    Setting("AMP", amp=True, channels_last=False),
    Setting("AMP + channels-last", amp=True, channels_last=True),
)
COMPILED = Setting("AMP + channels-last + compile", amp=True, channels_last=True, compile=True)
TINY_SETTINGS = ("fp32", "AMP", "AMP + channels-last")


def measure(setting: Setting, args: argparse.Namespace, device: torch.device) -> dict:
    """Clips per second over `args.steps` training steps of `args.arch`-18, after `args.warmup` untimed."""
    torch.manual_seed(0)
    model = video_resnet(args.arch, 18, num_classes=NUM_CLASSES)
    clips = torch.randn(args.batch, 3, args.frames, args.size, args.size)
    dtype = {"bf16": torch.bfloat16, "fp16": torch.float16}[args.amp_dtype] if setting.amp else None
    return time_training_steps(
        model,
        clips,
        NUM_CLASSES,
        dtype,
        setting.channels_last,
        setting.compile,
        args.steps,
        args.warmup,
        device,
    )


def time_training_steps(
    model: nn.Module,
    clips: Tensor,
    num_classes: int,
    amp_dtype: torch.dtype | None,
    channels_last: bool,
    compile_model: bool,
    steps: int,
    warmup: int,
    device: torch.device,
) -> dict:
    """Forward, backward and SGD steps on one batch of random `clips`, timed as `arctic train` runs them."""
    memory = torch.channels_last_3d if channels_last else torch.contiguous_format
    model = model.to(device, memory_format=memory).train()
    optimizer = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9)
    step_model: nn.Module = torch.compile(model) if compile_model else model
    clips = clips.to(device).contiguous(memory_format=memory)
    labels = torch.randint(num_classes, (len(clips),), device=device)
    scaler = torch.amp.GradScaler(device.type, enabled=amp_dtype == torch.float16)

    def step() -> None:
        with autocast(amp_dtype, device):
            loss = nn.functional.cross_entropy(step_model(clips), labels)
        optimizer.zero_grad(set_to_none=True)
        with backward_kernels(amp_dtype, device):  # as `arctic train` runs it
            scaler.scale(loss).backward()
        scaler.step(optimizer)
        scaler.update()

    for _ in range(warmup):
        step()
    _sync(device)
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)
    start = time.perf_counter()
    for _ in range(steps):
        step()
    _sync(device)
    seconds = time.perf_counter() - start
    peak = torch.cuda.max_memory_allocated(device) / 2**30 if device.type == "cuda" else float("nan")
    return {
        "clips_per_s": len(clips) * steps / seconds,
        "step_s": seconds / steps,
        "peak_gib": peak,
    }


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def device_name(device: torch.device) -> str:
    if device.type == "cuda":
        return torch.cuda.get_device_name(device)
    return f"{platform.processor() or platform.machine()} CPU, {torch.get_num_threads()} threads"


def onednn_probe_line() -> str:
    """What the once-per-process probe of oneDNN's bf16 Conv3d weight gradients finds here, and its cost."""
    if not torch.backends.mkldnn.is_available():
        return "oneDNN bf16 Conv3d backward probe: not run (this torch has no oneDNN)"
    start = time.perf_counter()
    sound = onednn_conv3d_backward_is_sound()
    verdict = "sound" if sound else "wrong gradients, so bf16 backward runs on ATen's kernels"
    return f"oneDNN bf16 Conv3d backward probe: {verdict} ({1000 * (time.perf_counter() - start):.0f} ms)"


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--tiny", action="store_true", help="CPU configuration: batch 2, 1 warm-up + 2 steps")
    parser.add_argument("--device", default="auto", help="cpu, cuda, cuda:1, ... (default: cuda if present)")
    parser.add_argument("--arch", default="r2plus1d", choices=("r2plus1d", "r3d", "mc3"))
    parser.add_argument("--batch", type=int, help="clips per step (default: 32, or 2 with --tiny)")
    parser.add_argument("--steps", type=int, help="timed steps (default: 20, or 2 with --tiny)")
    parser.add_argument("--warmup", type=int, help="untimed steps first (default: 5, or 1 with --tiny)")
    parser.add_argument("--frames", type=int, default=16)
    parser.add_argument("--size", type=int, default=112)
    parser.add_argument("--amp-dtype", choices=("bf16", "fp16"), default="bf16")
    parser.add_argument("--compile", action="store_true", help="also time AMP + channels-last compiled")
    args = parser.parse_args()
    defaults = (2, 2, 1) if args.tiny else (32, 20, 5)
    for name, default in zip(("batch", "steps", "warmup"), defaults, strict=True):
        if getattr(args, name) is None:
            setattr(args, name, default)
    if args.device == "auto":
        args.device = "cuda" if torch.cuda.is_available() else "cpu"
    device = torch.device(args.device)
    settings = [s for s in SETTINGS if not args.tiny or s.name in TINY_SETTINGS]
    if args.compile:
        settings.append(COMPILED)

    print(
        f"{args.arch}-18, {args.frames}×{args.size}×{args.size}, batch {args.batch}, {args.warmup} warm-up + "
        f"{args.steps} timed steps, AMP {args.amp_dtype}, torch {torch.__version__}, {device_name(device)}"
    )
    if device.type == "cpu":
        print(onednn_probe_line())
    print("\n| setting | clips/s | s/step | vs fp32 | peak GPU memory |\n| --- | --- | --- | --- | --- |")
    baseline = None
    for setting in settings:
        try:
            result = measure(setting, args, device)
        except Exception as error:  # compile or dtype support varies by machine: report, go on
            reason = f"{type(error).__name__}: {str(error).splitlines()[0][:80]}"
            print(f"| {setting.name} | failed: {reason} | | | |")
            continue
        baseline = baseline or result["clips_per_s"]
        peak = "–" if result["peak_gib"] != result["peak_gib"] else f"{result['peak_gib']:.1f} GiB"
        print(
            f"| {setting.name} | {result['clips_per_s']:.2f} | {result['step_s']:.2f} | "
            f"{result['clips_per_s'] / baseline:.2f}× | {peak} |",
            flush=True,
        )


if __name__ == "__main__":
    main()
