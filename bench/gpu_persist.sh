#!/bin/sh
# The persistent-kernel device call: binaries built on the CPU machine travel
# in .carry/bins.tar.gz (built with `make`, packed with bench/pack.sh), so no
# device time goes to compiling. GPU tests of the changed kernels, then the
# Q4_0 decode benchmark with knob A/Bs in one process (same card, same run).
# Usage (device machine): sh bench/gpu_persist.sh ["AB variants"]
. bench/device_env.sh
tar xzf .carry/bins.tar.gz || exit 1
export LD_LIBRARY_PATH="$DEPS_PREFIX/usr/lib/x86_64-linux-gnu:$LD_LIBRARY_PATH"
nvidia-smi --query-gpu=name,driver_version --format=csv,noheader
(build/zmlx synth --arch qwen3moe --preset qwen3-30b-a3b --type q4_0 -o /tmp/q4.gguf >/dev/null 2>&1; echo done >/tmp/q4.done) &
zm_gpu_tests ${TESTS:-test_cuda_ops test_cuda_graph}
while [ ! -f /tmp/q4.done ]; do sleep 1; done
echo "$(el) bench"
timeout 400 build/bench/cuda_decode -m /tmp/q4.gguf -n ${N:-128} --prefill ${PREFILL:-0} --ab "${1:--}" >"$OUT/bench_q4.log" 2>&1
grep -E "device:|decode:|fidelity|prefill|RESULT|AB" "$OUT/bench_q4.log"
echo "$(el) done"
