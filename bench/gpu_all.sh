#!/bin/sh
# One device call that proves main on the GPU: build with CUDA, run every
# test binary (GPU tests included), validate stock vs patched on CUDA for the
# tiny preset and for a Qwen3-30B-A3B-shaped Q4_0 file, and the decode
# benchmark on that file. Usage (device machine, repo root): sh bench/gpu_all.sh
. bench/device_env.sh
nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader | tee "$OUT/gpu.txt"
echo "$(el) build"
zm_build
echo "$(el) tests"
ZT_TIMEOUT=240 sh tests/run.sh build >"$OUT/tests.log" 2>&1
grep -E "FAIL|CRASH|passed" "$OUT/tests.log" | tail -15
echo "$(el) validate tiny on cuda"
build/zmlx validate --device cuda --max-tokens 200 --runs 3 --capsule "$OUT/tiny-cuda.json" 2>&1 | tee "$OUT/validate_tiny.txt" | tail -8
echo "$(el) synth qwen3-30b-a3b q4_0"
build/zmlx synth --arch qwen3moe --preset qwen3-30b-a3b --type q4_0 -o /tmp/q4.gguf >"$OUT/synth_q4.log" 2>&1 || tail -3 "$OUT/synth_q4.log"
echo "$(el) validate q4_0 on cuda"
timeout 150 build/zmlx validate -m /tmp/q4.gguf --device cuda --max-tokens 128 --runs 2 --capsule "$OUT/q4-cuda.json" 2>&1 | tee "$OUT/validate_q4.txt" | tail -8
echo "$(el) decode bench q4_0"
timeout 150 build/bench/cuda_decode -m /tmp/q4.gguf -n 256 --prefill 512 >"$OUT/bench_q4.log" 2>&1
grep -vE '^(profile|launch|total|[a-z_]+ +[0-9]+ )' "$OUT/bench_q4.log" | tail -10
echo "$(el) done"
