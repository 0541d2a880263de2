#!/bin/sh
# One device call for the attention variants: binaries built here and
# packed (sh bench/pack.sh), the GPU op and graph tests, the Q4_0 decode
# benchmark with A/Bs ($1, default: the pull merge), then the
# attention phase trace (ZMLX_ATT_TRACE=1, block (0,0,0)) under each
# setting of $2 (';'-separated, ','-joined VAR=V, "-" the defaults).
. bench/device_env.sh
zm_carried
nvidia-smi --query-gpu=name,driver_version --format=csv,noheader
[ -f /tmp/q4_0.gguf ] || build/zmlx synth --arch qwen3moe --preset qwen3-30b-a3b --type q4_0 -o /tmp/q4_0.gguf >/dev/null 2>&1 &
zm_gpu_tests ${TESTS:-test_cuda_ops test_cuda_graph}
wait
AB="${1:-ZMLX_ATT_PUSH=0;-}"
timeout 300 build/bench/cuda_decode -m /tmp/q4_0.gguf -n ${N:-256} --ab "$AB" >"$OUT/bench_q4_0.log" 2>&1
echo "$(el) bench q4_0"
grep -E "device:|decode:|fidelity|RESULT|AB" "$OUT/bench_q4_0.log"
zm_att_traces "${2:--;ZMLX_ATT_PUSH=0}"
echo "$(el) done"
