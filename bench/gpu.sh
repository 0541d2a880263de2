#!/bin/sh
# GPU benchmark and GPU tests in ONE device call (H100/H200 machine):
#   build with CUDA; run the GPU tests (every CUDA kernel vs float64, stock vs
#   fused CUDA graphs over 200 tokens, CUDA vs CPU over 64 tokens); synthesise
#   tiny and qwen3-30b-a3b (Q4_0, Q8_0) into /tmp (never $OUT: they are GBs);
#   decode benchmark per model: tok/s, ms/token, GB/s of the bytes a token must
#   read (active experts), % of the same-run copy bandwidth, stock vs fused,
#   fidelity; prefill tok/s of a 512-token prompt; a per-launch profile.
# Usage on the device machine (repository root): sh bench/gpu.sh [N_TOKENS]
# Logs land in $OUT; the last lines printed are the summary.
. bench/device_env.sh
N=${1:-256}
nvidia-smi --query-gpu=name,driver_version,memory.total,clocks.max.sm,clocks.max.mem --format=csv,noheader | tee "$OUT/gpu.txt"
echo "$(el) build"
zm_build
echo "$(el) GPU tests"
zm_gpu_tests test_cuda_ops test_cuda_graph
B=build/bench/cuda_decode
echo "$(el) synth tiny + bench"
build/zmlx synth --arch qwen3moe --preset tiny --type q4_0 -o /tmp/tiny.gguf >/dev/null 2>&1
$B -m /tmp/tiny.gguf -n 200 --prefill 64 >"$OUT/bench_tiny.log" 2>&1; tail -3 "$OUT/bench_tiny.log"
echo "$(el) synth qwen3-30b-a3b q4_0"
build/zmlx synth --arch qwen3moe --preset qwen3-30b-a3b --type q4_0 -o /tmp/q4.gguf >"$OUT/synth_q4.log" 2>&1 || tail -3 "$OUT/synth_q4.log"
# the Q8_0 file is written while the Q4_0 model is measured
(build/zmlx synth --arch qwen3moe --preset qwen3-30b-a3b --type q8_0 -o /tmp/q8.gguf >"$OUT/synth_q8.log" 2>&1; echo done >/tmp/q8.done) &
echo "$(el) bench q4_0"
timeout 200 $B -m /tmp/q4.gguf -n "$N" --prefill 512 --profile 4 >"$OUT/bench_q4.log" 2>&1
echo "exit $?"; grep -vE '^(profile|launch|total|[a-z_]+ +[0-9]+ )' "$OUT/bench_q4.log" | tail -12
rm -f /tmp/q4.gguf
while [ ! -f /tmp/q8.done ]; do sleep 2; done
echo "$(el) bench q8_0"
timeout 150 $B -m /tmp/q8.gguf -n "$N" --prefill 512 >"$OUT/bench_q8.log" 2>&1
echo "exit $?"; tail -10 "$OUT/bench_q8.log"
rm -f /tmp/q8.gguf
echo "$(el) summary"
sed -n '/^profile/,$p' "$OUT/bench_q4.log"
grep -h '^RESULT' "$OUT"/bench_*.log
