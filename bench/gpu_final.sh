#!/bin/sh
# The closing device call: build with CUDA, the whole test suite with the
# GPU, then the Qwen3-30B-A3B-shaped decode benchmark (stock vs patched,
# fidelity, prefill) for Q4_0 and Q8_0; for Q4_0 also the per-launch
# profile and the persistent kernel with its per-step trace. Usage: sh bench/gpu_final.sh
. bench/device_env.sh
nvidia-smi --query-gpu=name,driver_version --format=csv,noheader | tee "$OUT/gpu.txt"
zm_build
echo "$(el) whole suite"
(build/zmlx synth --arch qwen3moe --preset qwen3-30b-a3b --type q4_0 -o /tmp/q4.gguf >/dev/null 2>&1; echo done >/tmp/q4.done) &
ZT_TIMEOUT=240 sh tests/run.sh build >"$OUT/tests.log" 2>&1
grep -E "FAIL|CRASH|passed" "$OUT/tests.log" | tail -15
while [ ! -f /tmp/q4.done ]; do sleep 1; done
echo "$(el) bench q4_0"
(build/zmlx synth --arch qwen3moe --preset qwen3-30b-a3b --type q8_0 -o /tmp/q8.gguf >/dev/null 2>&1; echo done >/tmp/q8.done) &
timeout 200 build/bench/cuda_decode -m /tmp/q4.gguf -n 256 --prefill 512 --profile 8 \
    --ab "ZMLX_CUDA_PERSIST=1,ZMLX_CUDA_PS_TRACE=1" >"$OUT/bench_q4.log" 2>&1
grep -E "device:|decode:|fidelity|prefill|memory|RESULT|^AB" "$OUT/bench_q4.log"
rm -f /tmp/q4.gguf
while [ ! -f /tmp/q8.done ]; do sleep 1; done
echo "$(el) bench q8_0"
timeout 150 build/bench/cuda_decode -m /tmp/q8.gguf -n 256 --prefill 512 >"$OUT/bench_q8.log" 2>&1
grep -E "decode:|fidelity|prefill|memory|RESULT" "$OUT/bench_q8.log"
echo "$(el) done"
