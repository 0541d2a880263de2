#!/bin/sh
# Device run of the kernel catalog (one call of the device tool): build with
# CUDA, run every tests/test_catalog_* binary (CUDA variants included), then
# `zmlx bench kernels --device cuda`. Everything lands under $OUT:
#   gpu.txt (card), build.log, tests.log, bench_cuda.txt
# Usage on the device machine: sh bench/gpu_catalog.sh
. bench/device_env.sh
nvidia-smi --query-gpu=name,driver_version,memory.total,clocks.max.sm,clocks.max.mem --format=csv | tee "$OUT/gpu.txt"
date -u +"%Y-%m-%dT%H:%M:%SZ" >>"$OUT/gpu.txt"
t0=$(date +%s)
zm_build
echo "build: $(( $(date +%s) - t0 )) s"
export ZMLX_CACHE="$PWD/build/cache"
: >"$OUT/tests.log"
for t in build/tests/test_catalog_*; do
    case "$t" in *.o|*.d) continue;; esac
    timeout 120 "$t" >>"$OUT/tests.log" 2>&1 || echo "$t exited $?" >>"$OUT/tests.log"
done
grep -E "^(ok|FAIL|RESULT)|skip|exited" "$OUT/tests.log" | grep -v "^ok" | head -60
awk '/^RESULT/ {p+=$2; f+=$3; s+=$4} END {print p " passed, " f " failed, " s " skipped (catalog tests)"}' "$OUT/tests.log"
echo "tests done: $(( $(date +%s) - t0 )) s"
timeout 240 build/zmlx bench kernels --device cuda >"$OUT/bench_cuda.txt" 2>&1
echo "bench exit $?: $(( $(date +%s) - t0 )) s"
cat "$OUT/bench_cuda.txt"
