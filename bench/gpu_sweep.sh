#!/bin/sh
# One device call: build with CUDA, the GPU correctness tests, then the
# Qwen3-30B-A3B-shaped Q4_0 decode benchmark under launch/grid variants
# (ZMLX_CUDA_PDL=0|1, ZMLX_CUDA_BPS=2|4|8) on the same card in the same run.
# Usage (device machine, repo root): sh bench/gpu_sweep.sh [N_TOKENS]
. bench/device_env.sh
N=${1:-128}
S=$(date +%s)
el() { echo "[$(($(date +%s) - S)) s]"; }
nvidia-smi --query-gpu=name,driver_version,memory.total,clocks.max.sm,clocks.max.mem --format=csv,noheader | tee "$OUT/gpu.txt"
echo "$(el) build"
make -j16 all >"$OUT/build.log" 2>&1 || { tail -30 "$OUT/build.log"; exit 1; }
echo "$(el) GPU tests"
for t in test_cuda_ops test_cuda_graph; do
    timeout 240 build/tests/$t >"$OUT/$t.log" 2>&1
    echo "$t: exit $? $(grep -E '^RESULT|passed' "$OUT/$t.log" | tail -1)"
    grep -E 'FAIL|fail' "$OUT/$t.log" | head -20
done
B=build/bench/cuda_decode
echo "$(el) synth qwen3-30b-a3b q4_0"
build/zmlx synth --arch qwen3moe --preset qwen3-30b-a3b --type q4_0 -o /tmp/q4.gguf >"$OUT/synth_q4.log" 2>&1 || tail -3 "$OUT/synth_q4.log"
echo "$(el) bench q4_0 default (PDL on, 4 blocks/SM), prefill 512, profile"
timeout 200 $B -m /tmp/q4.gguf -n "$N" --prefill 512 --profile 4 >"$OUT/bench_q4.log" 2>&1
echo "exit $?"; grep -vE '^(profile|launch|total|[a-z_]+ +[0-9]+ )' "$OUT/bench_q4.log" | tail -8
sed -n '/^profile/,$p' "$OUT/bench_q4.log"
for v in "ZMLX_CUDA_PDL=0" "ZMLX_CUDA_BPS=3" "ZMLX_CUDA_BPS=8"; do
    echo "$(el) bench q4_0 $v"
    env $v timeout 120 $B -m /tmp/q4.gguf -n "$N" --prefill 0 >"$OUT/bench_q4_$v.log" 2>&1
    echo "exit $?"; grep RESULT "$OUT/bench_q4_$v.log"
done
# per-kernel execution times of the fused decode graph's nodes (ncu replays
# each kernel alone: durations without launch gaps or PDL overlap)
if command -v ncu >/dev/null 2>&1; then
    echo "$(el) ncu kernel durations (fused decode)"
    timeout 240 ncu --clock-control none --graph-profiling node --metrics gpu__time_duration.sum --csv \
        --launch-skip 3400 --launch-count 700 $B -m /tmp/q4.gguf -n 16 --prefill 0 --fused-only >"$OUT/ncu.csv" 2>"$OUT/ncu.err"
    echo "ncu exit $? $(wc -l <"$OUT/ncu.csv") lines"; tail -3 "$OUT/ncu.err"
fi
echo "$(el) done"
