"""CPU inference speed and peak memory of IR students: PyTorch eager against onnxruntime.

python benchmarks/bench_inference.py                 # both students, both runtimes, 2 threads, ~5 s each
python benchmarks/bench_inference.py --seconds 20 --threads 4

Students (random weights: speed does not depend on them), by default one clip per call (batch 1, as a
camera stream is served):
  demo      R3D-10 at width 0.25, 1 channel, 8×64×64 clips, 12 classes (the demo preset's student)
  r2plus1d  R(2+1)D-18 at width 1, 1 channel, 16×112×112 clips, 60 classes (NTU60-sized IR student)

Each (student, runtime) pair runs in its own process, so its peak resident memory (ru_maxrss) is its
own: "peak RSS" is the whole process (runtime libraries included), "inference" the growth over the
process once the model is loaded, i.e. what running clips costs on top.
"""

from __future__ import annotations

import argparse
import itertools
import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

STUDENTS = {
    "demo": {"arch": "r3d", "depth": 10, "width": 0.25, "classes": 12, "shape": (1, 1, 8, 64, 64)},
    "r2plus1d": {"arch": "r2plus1d", "depth": 18, "width": 1.0, "classes": 60, "shape": (1, 1, 16, 112, 112)},
}
RUNTIMES = ("eager", "onnxruntime")
WARMUP_RUNS, WARMUP_SECONDS = 3, 2.0  # oneDNN and onnxruntime settle over the first few runs
MIN_RUNS = 3


def build(name: str):
    from arctic_kd.models import video_resnet

    spec = STUDENTS[name]
    return video_resnet(
        spec["arch"], spec["depth"], num_classes=spec["classes"], in_channels=1, width=spec["width"]
    ).eval()


def export_onnx(name: str, path: Path) -> None:
    import torch

    from arctic_kd.use.export import write_onnx

    write_onnx(build(name), torch.zeros(STUDENTS[name]["shape"]), path, {})


def memory_mib(field: str) -> float:
    """VmRSS (now) or VmHWM (peak) of this process. Not ru_maxrss: Linux carries that across the
    fork+exec that started us, so a child would report its parent's peak."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(f"{field}:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError(f"no {field} in /proc/self/status")


def timed(run, seconds: float) -> tuple[float, float]:
    """Calls per second over the timed runs, and the median seconds per call, after a warm-up.

    The median is the steadier figure on a shared machine, where other jobs steal whole runs.
    """
    start = time.perf_counter()
    for done in itertools.count(1):
        run()
        if done >= WARMUP_RUNS and time.perf_counter() - start >= WARMUP_SECONDS:
            break
    latencies: list[float] = []
    start = time.perf_counter()
    while len(latencies) < MIN_RUNS or time.perf_counter() - start < seconds:
        began = time.perf_counter()
        run()
        latencies.append(time.perf_counter() - began)
    return len(latencies) / (time.perf_counter() - start), statistics.median(latencies)


def measure(name: str, runtime: str, onnx_path: Path, seconds: float, threads: int, batch: int) -> dict:
    """One (student, runtime) pair; runs in a child process of its own."""
    import numpy as np

    shape = (batch, *STUDENTS[name]["shape"][1:])
    clip = np.random.default_rng(0).standard_normal(shape).astype(np.float32)
    if runtime == "eager":
        import torch

        torch.set_num_threads(threads)
        model, tensor = build(name), torch.from_numpy(clip)

        def run():
            with torch.inference_mode():
                model(tensor)
    else:
        import onnxruntime as ort  # torch is not imported: the process holds what a deployment would

        options = ort.SessionOptions()
        options.intra_op_num_threads = threads
        session = ort.InferenceSession(str(onnx_path), options, providers=["CPUExecutionProvider"])

        def run():
            session.run(["logits"], {"clip": clip})

    loaded = memory_mib("VmRSS")
    calls, median = timed(run, seconds)
    peak = memory_mib("VmHWM")
    return {
        "clips_per_s": calls * batch,
        "median_ms": 1000 * median,
        "peak_rss_mib": peak,
        "inference_mib": peak - loaded,
    }


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--seconds", type=float, default=5.0, help="timed seconds per measurement")
    parser.add_argument("--threads", type=int, default=2, help="intra-op threads for both runtimes")
    parser.add_argument("--batch", type=int, default=1, help="clips per call (default 1, a camera stream)")
    parser.add_argument("--students", nargs="+", choices=sorted(STUDENTS), default=list(STUDENTS))
    parser.add_argument("--one", nargs=3, metavar=("STUDENT", "RUNTIME", "ONNX"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    options = ["--seconds", str(args.seconds), "--threads", str(args.threads), "--batch", str(args.batch)]
    if args.one:
        name, runtime, onnx_path = args.one
        print(json.dumps(measure(name, runtime, Path(onnx_path), args.seconds, args.threads, args.batch)))
        return
    print(f"batch {args.batch}, {args.threads} threads, {args.seconds:g} s timed per row")
    print("| student | clip | runtime | clips/s | median ms/call | peak RSS (MiB) | inference (MiB) |")
    print("| --- | --- | --- | --- | --- | --- | --- |")
    with tempfile.TemporaryDirectory() as scratch:
        for name in args.students:
            onnx_path = Path(scratch) / f"{name}.onnx"
            export_onnx(name, onnx_path)
            for runtime in RUNTIMES:
                child = [sys.executable, __file__, *options, "--one", name, runtime, str(onnx_path)]
                output = subprocess.run(child, check=True, capture_output=True, text=True).stdout
                result = json.loads(output.strip().splitlines()[-1])
                shape = "×".join(map(str, STUDENTS[name]["shape"][1:]))
                cells = [
                    name,
                    shape,
                    runtime,
                    f"{result['clips_per_s']:.1f}",
                    f"{result['median_ms']:.0f}",
                    f"{result['peak_rss_mib']:.0f}",
                    f"{result['inference_mib']:.0f}",
                ]
                print(f"| {' | '.join(cells)} |", flush=True)


if __name__ == "__main__":
    main()
