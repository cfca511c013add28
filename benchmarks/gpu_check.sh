#!/usr/bin/env bash
# The checks that only a CUDA machine can make, in one script that fits one 10-minute call:
#   1. the test suite (but the lint test), whose runs pick the GPU (`device: auto`);
#   2. training throughput of R(2+1)D-18 (fp32, bf16 AMP, + channels-last, compiled);
#   3. an IR-only epoch under torchrun + DDP (nccl, one process);
#   4. the demo's input pipeline against its teacher's training step on the GPU (bench_input.py), and
#   5. the demo's RGB teacher on the GPU (`auto` precision: bf16 autocast, channels-last-3d; 10 epochs),
#      its wall time per epoch in LOGS/teacher-metrics.jsonl: on an H200 the demo's small networks were
#      not faster than on 2 CPU cores (BENCHMARKS.md), and 4 and 5 are where to find out why;
#   6. end to end (bench_e2e.py): `arctic train`'s loop on an NTU-size clip store against its loader alone
#      and its network alone, in the NTU config (R(2+1)D-18, 16×112², batch 32, bf16 AMP + channels-last,
#      16 loader workers), eager (e2e) and with train.compile (e2e-compiled, reusing e2e's store).
# Each step has its own time limit and exit status, so one failure does not hide the others. All steps'
# limits add up to more than 10 minutes: name the steps to run, e.g. `... LOGS WORK synth input e2e
# e2e-compiled` (the ddp, input and teacher steps read the synth step's dataset).
#
#   benchmarks/gpu_check.sh LOGS [WORK [STEP...]]   # LOGS: one log per step; WORK: data and runs
#                                                   # (/tmp/gpu-check); STEPs: these only (default: all)
#
# `python3` must import arctic_kd (installed, or PYTHONPATH=src) and see a GPU.
set -uo pipefail
logs=${1:?usage: benchmarks/gpu_check.sh LOGS [WORK]}
work=${2:-/tmp/gpu-check}
only=" ${*:3} "
mkdir -p "$logs" "$work"
export PYTHONUNBUFFERED=1
status=0

step() {  # step NAME SECONDS COMMAND...: run with a time limit, log to LOGS/NAME.txt, report the outcome
    local name=$1 limit=$2 start=$SECONDS rc
    shift 2
    [ "$only" = "  " ] || [[ "$only" == *" $name "* ]] || return 0
    echo "== $name: $*"
    timeout "$limit" "$@" >"$logs/$name.txt" 2>&1
    rc=$?
    tail -n 15 "$logs/$name.txt"
    echo "== $name: exit $rc after $((SECONDS - start)) s"
    [ "$rc" -eq 0 ] || status=1
}

python3 -c 'import torch; print("torch", torch.__version__, "CUDA", torch.version.cuda, torch.cuda.get_device_name())'
step tests 180 python3 -m pytest -q -p no:cacheprovider --ignore=tests/test_lint.py
step throughput 90 python3 benchmarks/bench_throughput.py --steps 10 --warmup 3 --compile
step synth 60 python3 -m arctic_kd synth "$work/synth"
step ddp 60 python3 -m torch.distributed.run --standalone --nproc_per_node 1 -m arctic_kd train --modality ir \
    --out "$work/ddp" --set data.root="$work/synth" --set optim.epochs=1 --set data.cache=false
step input 60 python3 benchmarks/bench_input.py --device cuda --workers 0 2 8 --set data.root="$work/synth" \
    --set data.workers=8
step teacher 140 python3 -m arctic_kd train --modality rgb --out "$work/teacher" --set data.root="$work/synth" \
    --set optim.teacher_epochs=10
[ ! -f "$work/teacher/metrics.jsonl" ] || cp "$work/teacher/metrics.jsonl" "$logs/teacher-metrics.jsonl"
ntu=(--work "$work/e2e" --device cuda --classes 16 --epochs 4 --set data.workers=16 --set teacher.arch=r2plus1d
    --set data.num_frames=16 --set data.batch_size=32)
step e2e 300 python3 benchmarks/bench_e2e.py "${ntu[@]}"
step e2e-compiled 240 python3 benchmarks/bench_e2e.py "${ntu[@]}" --set train.compile=true
exit $status
