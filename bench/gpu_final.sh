#!/bin/sh
# The closing device call: build with CUDA, the whole test suite with the
# GPU, then the Qwen3-30B-A3B-shaped decode benchmark (stock vs patched,
# fidelity, prefill) for Q4_0 and Q8_0; for Q4_0 also the per-launch
# profile, the persistent kernel with its per-step trace and the in-place
# cost of each launch kind, and against .carry/cuda_decode_old when one is
# carried (a build of an older commit); last bench/pdl_chain.cu.
# Usage: sh bench/gpu_final.sh
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
# A/B in the same process: dense blocks of two rows a warp (before
# session 6), the defaults again, the combine through registers (k_combine,
# before session 10), the router's weights after its wait and the
# attention's workspace merge (before session 9), its partials pulled
# through the cluster barrier (before session 11), the head through k_matvec
# (before session 12), the combine's early ids/weights off, the head's
# whole-chunk L2 prefetch (before session 5), the attention's early K/V
# reads off, the persistent kernel, then the in-place cost of each launch
# kind (outputs wrong, timing only: README's measuring knobs), last the
# empty grids
AB="ZMLX_CUDA_MV_MIN=2;-;ZMLX_CUDA_BULK=0;ZMLX_CUDA_PRE=3;ZMLX_ATT_CLUSTER=0;ZMLX_ATT_PUSH=0;ZMLX_CUDA_WIDE=0;ZMLX_CUDA_PRE=0;ZMLX_CUDA_PF_ROWS=100000;ZMLX_ATT_EARLY=0;ZMLX_CUDA_PERSIST=1,ZMLX_CUDA_PS_TRACE=1;ZMLX_CUDA_NOPS=1"
for k in matmul_multi attention matmul gather_qmm_swiglu gather_qmm_combine; do AB="$AB;ZMLX_CUDA_SKIP=$k"; done
AB="$AB;ZMLX_CUDA_TWICE=router_gate;ZMLX_CUDA_TWICE=matmul_multi;ZMLX_CUDA_DBG=3,ZMLX_CUDA_SKIP=attention;ZMLX_CUDA_DBG=1,ZMLX_CUDA_SKIP=attention"
timeout 300 build/bench/cuda_decode -m /tmp/q4.gguf -n 256 --prefill 512 --profile 8 --ab "$AB" >"$OUT/bench_q4.log" 2>&1
grep -E "device:|decode:|fidelity|prefill|memory|RESULT|^AB" "$OUT/bench_q4.log"
if [ -x .carry/cuda_decode_old ]; then # a baseline build carried in (built here from an older commit): same machine
    for r in 1 2 3; do
        for b in build/bench/cuda_decode .carry/cuda_decode_old; do
            echo "$b: $(timeout 120 $b -m /tmp/q4.gguf -n 256 --prefill 0 --fused-only 2>&1 | grep -E '^fused')"
        done
    done
fi
rm -f /tmp/q4.gguf
while [ ! -f /tmp/q8.done ]; do sleep 1; done
echo "$(el) bench q8_0"
timeout 200 build/bench/cuda_decode -m /tmp/q8.gguf -n 256 --prefill 512 --ab "ZMLX_CUDA_MV_MIN=2;-;ZMLX_CUDA_BULK=0;ZMLX_CUDA_PRE=3;ZMLX_CUDA_WIDE=0" >"$OUT/bench_q8.log" 2>&1
grep -E "decode:|fidelity|prefill|memory|RESULT|^AB" "$OUT/bench_q8.log"
echo "$(el) the output head alone (k_matvec, k_matvec_wide, a copy of its quants)"
for t in q4_0 q8_0; do build/bench/head_bench --type $t | tee -a "$OUT/head_bench.log"; done
echo "$(el) kernel-chain cost by grid shape"
build/bench/pdl_chain 300 | tee "$OUT/pdl_chain.log"
echo "$(el) done"
