#!/bin/sh
# CPU decode throughput, zmlx vs llama.cpp 0.5.0, on the same `zmlx synth`
# files in the same run (not a test: numbers for docs/BENCHMARKS.md).
#   sh tests/crosscheck/bench.sh [BUILD_DIR]
# Uses the llama.cpp that tests/crosscheck/llama.sh fetches (it is run first
# with no types to fetch and build both decode programs). For each preset
# and type: XB_REPS runs of each engine, alternating, XB_STEPS greedy tokens
# after an 8-token prompt, XB_THREADS threads; prints the median decode tok/s
# and GB/s from the bytes one token must read (dense weights, one embedding
# row, only the used experts: zm_model_decode_bytes), plus the spread.
# llama.cpp runs in its default configuration (F16 KV cache, flash attention
# auto). Knobs: XB_PRESETS ("tiny small"), XB_TYPES ("f32 q8_0 q4_0"),
# XB_STEPS (64), XB_REPS (5), XB_THREADS (1: on a shared, oversubscribed
# machine spinning thread pools of 2+ threads stall and the spread is 100x).
set -u
B=${1:-build}
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
case "$B" in /*) ;; *) B="$root/$B" ;; esac
L=${ZMLX_LLAMA_DIR:-$B/llama}
XC_TYPES="" sh "$here/llama.sh" "$B" >/dev/null; rc=$?
[ "$rc" -eq 77 ] && { echo "bench: SKIPPED: llama.cpp could not be fetched"; exit 77; }
[ "$rc" -eq 0 ] || { echo "bench: llama.sh failed"; exit 1; }
STEPS=${XB_STEPS:-64}
REPS=${XB_REPS:-5}
T=${XB_THREADS:-1}
P="5,100,220,300,17,400,42,7"
med() { sort -n | awk '{ v[NR] = $1 } END { if (NR == 0) { print "nan nan nan"; exit } printf "%s %s %s\n", v[int((NR + 1) / 2)], v[1], v[NR] }'; }
echo "bench: $(date -u +%Y-%m-%dT%H:%MZ), $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //'), $(nproc) cores, $T threads, $STEPS tokens, median of $REPS (min-max)"
printf '%-8s %-5s %12s | %-26s %8s | %-26s %8s | %s\n' preset type "MB/token" "zmlx tok/s" "GB/s" "llama.cpp tok/s" "GB/s" "zmlx/llama"
for preset in ${XB_PRESETS:-tiny small}; do
    for t in ${XB_TYPES:-f32 q8_0 q4_0}; do
        f="$L/bench-$preset-$t.gguf"
        "$B/zmlx" synth --preset "$preset" --type "$t" --seed 1 -o "$f" >/dev/null 2>&1 || { echo "bench: synth $preset $t failed"; exit 1; }
        zs="" ls="" bytes=0 r=0
        while [ "$r" -lt "$REPS" ]; do
            zo=$("$L/zmlx_decode" -m "$f" --prompt-ids "$P" -n "$STEPS" --threads "$T" 2>&1)
            lo=$("$L/llama_decode" -m "$f" --libdir "$L/lib" --prompt-ids "$P" -n "$STEPS" --threads "$T" --kv-f16 --fa 2>&1)
            zs="$zs $(echo "$zo" | sed -n 's/.*decode_tok_s: \([0-9.]*\).*/\1/p')"
            ls="$ls $(echo "$lo" | sed -n 's/.*decode_tok_s: \([0-9.]*\).*/\1/p')"
            bytes=$(echo "$zo" | sed -n 's/^decode_bytes_per_token: //p')
            r=$((r + 1))
        done
        set -- $(for v in $zs; do echo "$v"; done | med); zm=$1 zlo=$2 zhi=$3
        set -- $(for v in $ls; do echo "$v"; done | med); lm=$1 llo=$2 lhi=$3
        awk -v p="$preset" -v t="$t" -v b="${bytes:-0}" -v zm="$zm" -v zlo="$zlo" -v zhi="$zhi" -v lm="$lm" -v llo="$llo" -v lhi="$lhi" 'BEGIN {
            printf "%-8s %-5s %12.3f | %8.1f (%8.1f-%8.1f) %8.2f | %8.1f (%8.1f-%8.1f) %8.2f | %.2fx\n",
                p, t, b / 1e6, zm, zlo, zhi, zm * b / 1e9, lm, llo, lhi, lm * b / 1e9, (lm > 0 ? zm / lm : 0) }'
    done
done
