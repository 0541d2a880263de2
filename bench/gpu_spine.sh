#!/bin/sh
# The spine on the GPU machine, in one call: build with CUDA, run the CUDA
# kernel tests, the element-wise benchmark (mish over 2^28 f32 vs a same-run
# cudaMemcpy device-to-device), then the whole test suite. Every step is
# time-boxed so results land in $OUT within the device call's limit.
#   sh bench/gpu_spine.sh          (on the device machine, from the repo root)
# Numbers go to docs/BENCHMARKS.md with the card named in $OUT/gpu.txt.
. bench/device_env.sh
export ZMLX_CACHE=/tmp/zmlx-cache
date -u +"%Y-%m-%d %H:%M UTC" | tee "$OUT/date.txt"
nvidia-smi --query-gpu=name,driver_version,memory.total,clocks.max.sm,clocks.max.mem --format=csv | tee "$OUT/gpu.txt"
nproc | sed 's/^/cpus: /' | tee -a "$OUT/gpu.txt"
t0=$(date +%s)
make -j"$(nproc)" all >"$OUT/build.log" 2>&1 || { tail -40 "$OUT/build.log"; exit 1; }
echo "build: $(( $(date +%s) - t0 )) s"

echo "== CUDA kernel tests"
timeout 170 build/tests/test_kernel_cuda >"$OUT/test_kernel_cuda.log" 2>&1
echo "exit $?"; tail -12 "$OUT/test_kernel_cuda.log"

echo "== benchmark"
timeout 60 build/bench/kernel_bench --device cuda --runs 15 2>&1 | tee "$OUT/bench_cuda.txt"
timeout 40 build/zmlx kernel "x * tanh(log1p(exp(x)))" --bench --device cuda 2>&1 | tee "$OUT/bench_cli_cuda.txt"
timeout 150 build/bench/kernel_bench --device cpu --runs 9 2>&1 | tee "$OUT/bench_cpu.txt"

echo "== whole suite ($(( $(date +%s) - t0 )) s so far)"
ZT_TIMEOUT=90 timeout 150 sh tests/run.sh build >"$OUT/tests.log" 2>&1
grep -E "FAIL|CRASH|skip|passed" "$OUT/tests.log" | tail -30
echo "total: $(( $(date +%s) - t0 )) s"
