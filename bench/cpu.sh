#!/bin/sh
# `make bench`: the CPU benchmarks, one after the other.
#   sh bench/cpu.sh [BUILD_DIR]
# 1. build/bench/cpu_matvec: GB/s of every matvec path (weight type x ISA x
#    activation mode) at 16384 x 4096 beside memcpy in the same run, then
#    the same at a cache-resident size on one thread (the kernels' compute
#    ceiling). Knobs: MV_ARGS (extra arguments), MV_REPS (7).
# 2. build/bench/kernel_bench: DSL element-wise kernels vs memcpy (the spine).
# 3. bench/cpu_decode.sh when present: decode tok/s beside llama.cpp.
# Numbers go to docs/BENCHMARKS.md by hand, with the CPU, date and command.
set -u
B=${1:-build}
here=$(cd "$(dirname "$0")" && pwd)
REPS=${MV_REPS:-7}
echo "== $(date -u '+%Y-%m-%d %H:%M UTC'), $(uname -n), load $(cut -d' ' -f1-3 /proc/loadavg)"
echo "== matvec, memory-bound size, all threads"
"$B/bench/cpu_matvec" --reps "$REPS" ${MV_ARGS:-} || exit 1
echo
echo "== matvec, cache-resident size (128 x 4096), 1 thread"
"$B/bench/cpu_matvec" --rows 128 --reps 101 --threads 1 ${MV_ARGS:-} || exit 1
if [ -x "$B/bench/kernel_bench" ]; then
    echo
    echo "== element-wise kernels from the DSL (mish, swiglu, axpy) vs memcpy, all threads"
    "$B/bench/kernel_bench" --device cpu --runs 15 || exit 1
fi
if [ -f "$here/cpu_decode.sh" ] && [ "${SKIP_DECODE:-0}" != 1 ]; then
    echo
    echo "== decode"
    sh "$here/cpu_decode.sh" "$B"
fi
