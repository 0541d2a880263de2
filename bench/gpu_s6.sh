#!/bin/sh
# Session 6 device call: binaries built here (bench/pack.sh), the GPU tests
# under each VAR=VALUE in ENVS (TESTS=" ": none), then the decode benchmark of
# each type in TYPES with the A/B variants in $1 (cuda_decode --ab).
# Usage (device machine): ENVS="ZMLX_CUDA_NT=768" TYPES="q4_0" N=256 sh bench/gpu_s6.sh "-;ZMLX_CUDA_PRE=7"
. bench/device_env.sh
tar xzf .carry/bins.tar.gz || exit 1
export LD_LIBRARY_PATH="$DEPS_PREFIX/usr/lib/x86_64-linux-gnu:$LD_LIBRARY_PATH"
nvidia-smi --query-gpu=name,driver_version --format=csv,noheader
TYPES="${TYPES:-q4_0}"
for t in $TYPES; do rm -f /tmp/$t.done; done
(for t in $TYPES; do
    [ -f /tmp/$t.gguf ] || build/zmlx synth --arch qwen3moe --preset qwen3-30b-a3b --type $t -o /tmp/$t.gguf >/dev/null 2>&1
    echo done >/tmp/$t.done
done) &
for e in ${ENVS:-ZMLX_NONE=0}; do
    echo "$(el) tests with $e"
    export "$e"
    zm_gpu_tests ${TESTS:-test_cuda_ops test_cuda_graph}
    unset "${e%%=*}"
done
for t in $TYPES; do
    while [ ! -f /tmp/$t.done ]; do sleep 1; done
    echo "$(el) bench $t"
    timeout 400 build/bench/cuda_decode -m /tmp/$t.gguf -n ${N:-256} --prefill 0 --ab "${1:--}" >"$OUT/bench_$t.log" 2>&1
    grep -E "device:|decode:|fidelity|RESULT|AB" "$OUT/bench_$t.log"
done
echo "$(el) done"
