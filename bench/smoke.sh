#!/bin/sh
# Device smoke test: build with CUDA, run the whole test suite (GPU tests
# included), record the card. Usage on the device machine: sh bench/smoke.sh
. bench/device_env.sh
nvidia-smi --query-gpu=name,driver_version,memory.total,clocks.max.sm,clocks.max.mem --format=csv | tee "$OUT/gpu.txt"
zm_build
sh tests/run.sh build 2>&1 | tee "$OUT/tests.log" | tail -40
