#!/bin/sh
# Measuring, one device call: the attention trace ($1: ';'-separated
# variants as in bench/gpu_att.sh), the SASS of the cluster attention
# kernel if the device has cuobjdump, and ncu's warp-state breakdown of a
# few attention launches (replayed alone).
. bench/device_env.sh
zm_carried
nvidia-smi --query-gpu=name,driver_version --format=csv,noheader
[ -f /tmp/q4_0.gguf ] || build/zmlx synth --arch qwen3moe --preset qwen3-30b-a3b --type q4_0 -o /tmp/q4_0.gguf >/dev/null 2>&1 &
echo "tools: $(command -v cuobjdump nvdisasm ncu | tr '\n' ' ')"
if command -v cuobjdump >/dev/null; then
    nvcc -O3 -std=c++17 -DZM_HAVE_CUDA=1 -Iinclude -Isrc -arch=sm_90 -cubin -o /tmp/att.cubin src/kernels/cuda/attention.cu &&
        cuobjdump -sass -fun '_Z13k_attn_decodeILi4ELb1ELi2EEvPKfS1_S1_iiiifPKiPfS4_S4_PiS4_10zm_gpu_qknii' /tmp/att.cubin >"$OUT/att.sass" 2>&1
    echo "$(el) sass: $(grep -c '/\*[0-9a-f]*\*/' "$OUT/att.sass") lines"
fi
wait
zm_att_traces "${1:--}"
if command -v ncu >/dev/null; then
    M=gpu__time_duration.sum,smsp__inst_executed.sum,smsp__cycles_active.avg
    for r in long_scoreboard short_scoreboard barrier membar wait lg_throttle mio_throttle math_pipe_throttle no_instruction \
        drain sleeping misc dispatch_stall not_selected selected branch_resolving imc_miss; do
        M="$M,smsp__average_warps_issue_stalled_${r}_per_issue_active.ratio"
    done
    timeout 150 ncu --clock-control none --graph-profiling node --metrics "$M" --csv -k regex:k_attn_decode \
        --launch-skip 2000 --launch-count 3 build/bench/cuda_decode -m /tmp/q4_0.gguf -n 64 --fused-only >"$OUT/ncu_att.csv" 2>"$OUT/ncu.err"
    echo "$(el) ncu exit $?"
    grep -E "stalled|inst_executed|duration|cycles_active" "$OUT/ncu_att.csv" | awk -F'","' '{print $(NF-2), $NF}' | sort | uniq | head -40
fi
echo "$(el) done"
