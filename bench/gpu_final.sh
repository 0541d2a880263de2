#!/bin/sh
# The closing device call: bench/gpu.sh (build, GPU tests, tiny + Q4_0 + Q8_0
# decode, prefill, profile), attention split-count variants on Q4_0, then
# the whole test suite with the GPU. Usage: sh bench/gpu_final.sh
. bench/device_env.sh
sh bench/gpu.sh 256 2>&1 | tail -40
S=$(date +%s)
build/zmlx synth --arch qwen3moe --preset qwen3-30b-a3b --type q4_0 -o /tmp/q4.gguf >/dev/null 2>&1
for v in 8 66; do
    ZMLX_ATT_SPLITS=$v timeout 120 build/bench/cuda_decode -m /tmp/q4.gguf -n 128 --prefill 0 >"$OUT/bench_q4_splits$v.log" 2>&1
    echo "ZMLX_ATT_SPLITS=$v: $(grep RESULT "$OUT/bench_q4_splits$v.log")"
done
rm -f /tmp/q4.gguf
echo "[+$(($(date +%s) - S)) s] whole suite"
ZT_TIMEOUT=240 sh tests/run.sh build >"$OUT/tests.log" 2>&1
grep -E "FAIL|CRASH|passed" "$OUT/tests.log" | tail -15
echo "[+$(($(date +%s) - S)) s] done"
