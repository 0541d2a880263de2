#!/bin/sh
# Builds on one machine: the current cuda_decode and every other one
# carried as .carry/cuda_decode_* (built here from older commits), run
# alternately on the same model, fused decode only. For changes that a
# knob cannot switch (register use, code layout). TESTS="test_x ...": those
# GPU tests first.
# Usage (device machine): N=256 sh bench/gpu_ab_bins.sh [type]
. bench/device_env.sh
zm_carried
nvidia-smi --query-gpu=name,driver_version --format=csv,noheader
[ -n "$TESTS" ] && zm_gpu_tests $TESTS
t=${1:-q4_0}
[ -f /tmp/$t.gguf ] || build/zmlx synth --arch qwen3moe --preset qwen3-30b-a3b --type $t -o /tmp/$t.gguf >/dev/null 2>&1
for r in 1 2 3; do
    for b in build/bench/cuda_decode .carry/cuda_decode_*; do
        echo "$b: $(timeout 120 $b -m /tmp/$t.gguf -n ${N:-256} --prefill 0 --fused-only 2>&1 | grep -E '^fused')"
    done
done
echo "$(el) done"
