#!/bin/sh
# Which decode kernels keep a stack frame (local memory: spills, or a
# by-value struct copied for a run-time index) - needs nvcc, no GPU. A
# 128-byte frame in k_matvec cost 7 % end to end on the H100 (session 8);
# look here after any change to a kernel. Usage: sh bench/stack_frames.sh
NVCC="${NVCC:-nvcc}"
CUARCH="${CUARCH:-90}"
for f in src/kernels/cuda/*.cu; do
    "$NVCC" -O3 -std=c++17 -DZM_HAVE_CUDA=1 -Iinclude -Isrc -arch=sm_$CUARCH -Xptxas -v -c "$f" -o /dev/null 2>&1 |
        awk -v f="$f" '/Function properties for/ {k = $NF}
            /bytes stack frame/ && $1 != "0" {print f ": " k ": " $0}'
done
