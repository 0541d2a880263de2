#!/bin/sh
# The quick device call: binaries built on the CPU machine travel in
# .carry/bins.tar.gz (built with `make`, packed with bench/pack.sh), so no
# device time goes to compiling. GPU tests of the changed kernels, then the
# decode benchmark of each type in TYPES (default q4_0) with knob A/Bs in
# one process per type (same card, same run).
# Usage (device machine): TYPES="q4_0 q8_0" N=256 sh bench/gpu_quick.sh ["AB variants"]
# (SUITE=1: the whole test suite instead of TESTS; ENVS="VAR=V ...": the
# tests once under each setting)
. bench/device_env.sh
zm_carried
nvidia-smi --query-gpu=name,driver_version --format=csv,noheader
TYPES="${TYPES:-q4_0}"
for t in $TYPES; do rm -f /tmp/$t.done; done
(for t in $TYPES; do # a warm machine keeps /tmp: synthesise once
    [ -f /tmp/$t.gguf ] || build/zmlx synth --arch qwen3moe --preset qwen3-30b-a3b --type $t -o /tmp/$t.gguf >/dev/null 2>&1
    echo done >/tmp/$t.done
done) &
if [ -n "$SUITE" ]; then # the whole suite (pack every test binary: SUITE=1 sh bench/pack.sh)
    ZT_TIMEOUT=240 sh tests/run.sh build >"$OUT/tests.log" 2>&1
    echo "$(el) whole suite: $(grep -E 'passed' "$OUT/tests.log" | tail -1)"
    grep -E "FAIL|CRASH" "$OUT/tests.log" | head -20
else # the named tests (TESTS=" ": none), under each VAR=VALUE of ENVS in turn
    for e in ${ENVS:-ZMLX_NONE=0}; do
        [ -n "$ENVS" ] && echo "$(el) tests with $e"
        export "$e"
        zm_gpu_tests ${TESTS:-test_cuda_ops test_cuda_graph}
        unset "${e%%=*}"
    done
fi
for t in $TYPES; do
    while [ ! -f /tmp/$t.done ]; do sleep 1; done
    echo "$(el) bench $t"
    timeout 400 build/bench/cuda_decode -m /tmp/$t.gguf -n ${N:-128} --prefill ${PREFILL:-0} --ab "${1:--}" >"$OUT/bench_$t.log" 2>&1
    grep -E "device:|decode:|fidelity|prefill|RESULT|AB" "$OUT/bench_$t.log"
done
echo "$(el) done"
