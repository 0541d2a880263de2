#!/bin/sh
# One device call: build, GPU tests, the Q4_0 decode benchmark, then ncu
# sections (speed of light, occupancy, warp stalls, launch stats) for one
# layer's worth of the fused decode kernels (each replayed alone, L2 flushed).
# Usage (device machine, repo root): sh bench/gpu_ncu.sh
# (CARRIED=1: the binaries of .carry/bins.tar.gz, no build, tests or bench)
. bench/device_env.sh
nvidia-smi --query-gpu=name,driver_version --format=csv,noheader | tee "$OUT/gpu.txt"
B=build/bench/cuda_decode
if [ -n "$CARRIED" ]; then # binaries built here (bench/pack.sh): ncu only
    zm_carried
else
    echo "$(el) build"
    zm_build
    echo "$(el) GPU tests"
    zm_gpu_tests test_cuda_ops test_cuda_graph
fi
echo "$(el) synth q4_0"
build/zmlx synth --arch qwen3moe --preset qwen3-30b-a3b --type q4_0 -o /tmp/q4.gguf >"$OUT/synth_q4.log" 2>&1 || tail -3 "$OUT/synth_q4.log"
if [ -z "$CARRIED" ]; then
    echo "$(el) bench q4_0"
    timeout 200 $B -m /tmp/q4.gguf -n 128 --prefill 512 >"$OUT/bench_q4.log" 2>&1
    echo "exit $?"; grep -E "decode:|fidelity|prefill|RESULT" "$OUT/bench_q4.log"
    for v in "ZMLX_CUDA_PDL=0"; do
        env $v timeout 120 $B -m /tmp/q4.gguf -n 128 --prefill 0 >"$OUT/bench_q4_nopdl.log" 2>&1
        echo "$v: $(grep RESULT "$OUT/bench_q4_nopdl.log")"
    done
fi
echo "$(el) ncu stall breakdown"
M=gpu__time_duration.sum,sm__cycles_active.avg,gpc__cycles_elapsed.max,smsp__inst_executed.sum,dram__bytes_read.sum,lts__t_bytes.sum
for r in long_scoreboard short_scoreboard barrier membar wait lg_throttle mio_throttle math_pipe_throttle no_instruction drain sleeping misc dispatch_stall not_selected selected branch_resolving tex_throttle imc_miss; do
    M="$M,smsp__average_warps_issue_stalled_${r}_per_issue_active.ratio"
done
timeout 240 ncu --clock-control none --graph-profiling node --metrics "$M" --csv \
    -k "regex:k_matvec|k_expert|k_combine|k_router_gate|k_attn_decode|k_qkv_norm_rope" --launch-skip 3500 --launch-count 14 \
    $B -m /tmp/q4.gguf -n 16 --prefill 0 --fused-only >"$OUT/ncu_stalls.csv" 2>"$OUT/ncu.err"
echo "ncu exit $?"
timeout 200 ncu --clock-control none --graph-profiling node --metrics gpu__time_duration.sum --csv \
    --launch-skip 3400 --launch-count 700 $B -m /tmp/q4.gguf -n 16 --prefill 0 --fused-only >"$OUT/ncu.csv" 2>>"$OUT/ncu.err"
echo "$(el) done"
