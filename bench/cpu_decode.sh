#!/bin/sh
# CPU decode benchmark: zmlx beside llama.cpp on the same GGUF files, in the
# same run, same prompt, same thread count, alternating engines per repeat.
#   sh bench/cpu_decode.sh [BUILD_DIR]             (default build)
# For each preset (tiny, small) x type (f32, q8_0, q4_0): writes the file with
# `zmlx synth`, runs `zmlx run` and llama.cpp's tests/crosscheck/llama_decode
# REPS times, and prints the median (min-max) decode and prefill tok/s and the
# decode GB/s counted from the bytes a token must read (dense weights, one
# embedding row, the active experts only; `zmlx run` reports it).
# llama.cpp comes from tests/crosscheck/llama.sh (npm, fetched once into
# BUILD_DIR/llama); without it the llama.cpp column says "skipped".
# Knobs: PRESETS ("tiny small"), TYPES ("f32 q8_0 q4_0"), THREADS (1), N (128
# generated tokens), REPS (5), PROMPT (8 ids).
set -u
B=${1:-build}
root=$(cd "$(dirname "$0")/.." && pwd)
case "$B" in /*) ;; *) B="$root/$B" ;; esac
L=${ZMLX_LLAMA_DIR:-$B/llama}
PRESETS=${PRESETS:-"tiny small"}
TYPES=${TYPES:-"f32 q8_0 q4_0"}
THREADS=${THREADS:-1}
N=${N:-128}
REPS=${REPS:-5}
PROMPT=${PROMPT:-"5,100,220,300,17,400,42,7"}
W=$(mktemp -d)
trap 'rm -rf "$W"' EXIT

[ -x "$B/zmlx" ] || { echo "bench: $B/zmlx not built (make first)"; exit 1; }
if [ ! -x "$L/llama_decode" ] && [ -f "$root/tests/crosscheck/llama.sh" ]; then
    echo "bench: building llama.cpp's side through tests/crosscheck/llama.sh"
    XC_TYPES=f32 XC_STEPS=4 sh "$root/tests/crosscheck/llama.sh" "$B" >"$W/xc.log" 2>&1 || true
fi
have_llama=0
[ -x "$L/llama_decode" ] && have_llama=1

# median and range of a list of numbers (one per line)
stats() { sort -g | awk '{ v[NR] = $1 } END { if (NR == 0) { print "n/a"; exit }
    m = (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2
    printf "%.1f (%.1f-%.1f)", m, v[1], v[NR] }'; }
median() { sort -g | awk '{ v[NR] = $1 } END { if (NR == 0) print 0; else print (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2 }'; }

cpu=$(sed -n 's/^model name[[:space:]]*: //p' /proc/cpuinfo | head -1)
echo "# CPU decode, $(date -u '+%Y-%m-%d %H:%M UTC'), $cpu, $(nproc) cores, load $(cut -d' ' -f1-3 /proc/loadavg)"
echo "# zmlx $(git -C "$root" rev-parse --short HEAD 2>/dev/null), threads $THREADS, prompt 8 ids, $N generated, median (min-max) of $REPS"
printf '| preset | type | MB/token | zmlx decode tok/s | zmlx GB/s | llama.cpp decode tok/s | llama.cpp GB/s | zmlx/llama.cpp | zmlx prefill tok/s | llama.cpp prefill tok/s | tokens agree |\n'
printf '|---|---|---|---|---|---|---|---|---|---|---|\n'
for p in $PRESETS; do
    for t in $TYPES; do
        f="$W/$p-$t.gguf"
        "$B/zmlx" synth --preset "$p" --type "$t" --seed 1 -o "$f" >/dev/null 2>&1 || { echo "| $p | $t | synth failed |"; continue; }
        : >"$W/zd"; : >"$W/zp"; : >"$W/ld"; : >"$W/lp"
        mb=0 zids="" lids=""
        r=0
        while [ "$r" -lt "$REPS" ]; do
            zo=$("$B/zmlx" run -m "$f" --prompt-ids "$PROMPT" -n "$((N + 1))" --threads "$THREADS" 2>&1)
            echo "$zo" | sed -n 's/^decode: .*, \([0-9.]*\) tok\/s,.*/\1/p' >>"$W/zd"
            echo "$zo" | sed -n 's/^prefill: .*, \([0-9.]*\) tok\/s/\1/p' >>"$W/zp"
            mb=$(echo "$zo" | sed -n 's/.*(\([0-9.]*\) MB read per token).*/\1/p')
            zids=$(echo "$zo" | sed -n 's/^generated: //p' | tr ' ' ',')
            if [ "$have_llama" = 1 ]; then
                lo=$("$L/llama_decode" -m "$f" --libdir "$L/lib" --prompt-ids "$PROMPT" -n "$((N + 1))" --threads "$THREADS" 2>&1)
                echo "$lo" | sed -n 's/.*decode_tok_s: \([0-9.]*\).*/\1/p' >>"$W/ld"
                echo "$lo" | sed -n 's/.*prefill_tok_s: \([0-9.]*\).*/\1/p' >>"$W/lp"
                lids=$(echo "$lo" | sed -n 's/^ids: //p')
            fi
            r=$((r + 1))
        done
        zmed=$(median <"$W/zd")
        zgb=$(awk -v t="$zmed" -v m="$mb" 'BEGIN { printf "%.2f", t * m / 1e3 }')
        if [ "$have_llama" = 1 ] && [ -s "$W/ld" ]; then
            lmed=$(median <"$W/ld")
            lgb=$(awk -v t="$lmed" -v m="$mb" 'BEGIN { printf "%.2f", t * m / 1e3 }')
            ratio=$(awk -v a="$zmed" -v b="$lmed" 'BEGIN { printf "%.2fx", (b > 0) ? a / b : 0 }')
            agree=$(awk -v a="$zids" -v b="$lids" 'BEGIN { n = split(a, x, ","); split(b, y, ","); s = 0
                for (i = 1; i <= n; i++) if (x[i] == y[i]) s++; printf "%d/%d", s, n }')
            lcol="$(stats <"$W/ld") | $lgb | $ratio | $(stats <"$W/zp") | $(stats <"$W/lp") | $agree"
        else
            lcol="skipped | - | - | $(stats <"$W/zp") | skipped | -"
        fi
        echo "| $p | $t | $mb | $(stats <"$W/zd") | $zgb | $lcol |"
    done
done
[ "$have_llama" = 1 ] || echo "# llama.cpp skipped: tests/crosscheck/llama.sh could not fetch it (see its SKIPPED line)"
