#!/bin/sh
# A/B of one knob in one device call: GPU tests with the knob, then the Q4_0
# decode benchmark alternating default and knob (same card, same run).
# Usage (device machine): sh bench/gpu_ab.sh VAR=VALUE
. bench/device_env.sh
KNOB=${1:-ZMLX_CUDA_MINB=4}
zm_build
for t in test_cuda_ops test_cuda_graph; do
    env $KNOB timeout 240 build/tests/$t >"$OUT/$t.log" 2>&1
    echo "$KNOB $t: exit $? $(grep -E '^RESULT' "$OUT/$t.log" | tail -1)"
done
build/zmlx synth --arch qwen3moe --preset qwen3-30b-a3b --type q4_0 -o /tmp/q4.gguf >/dev/null 2>&1
for rep in 1 2; do
    for v in "ZMLX_NONE=1" "$KNOB"; do
        env $v timeout 120 build/bench/cuda_decode -m /tmp/q4.gguf -n 128 --prefill 0 >"$OUT/ab.log" 2>&1
        echo "$v: $(grep RESULT "$OUT/ab.log")"
    done
done
