#!/bin/sh
# Stock vs patched decode on the CPU (issue 4's benchmark): synthesizes the
# tiny and small presets, runs `zmlx validate` on each (greedy, token ids
# compared exactly) and prints one markdown row per model from the capsules.
# Usage: sh bench/cpu_patch.sh [build] [threads] [tokens] [runs]
set -e
B=${1:-build}; T=${2:-1}; N=${3:-128}; R=${4:-5}
Z="$B/zmlx"; D="$B/bench"
mkdir -p "$D"
echo "CPU: $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //'), $(nproc) cores, load $(cut -d' ' -f1-3 /proc/loadavg)"
echo "zmlx $(git rev-parse --short HEAD 2>/dev/null), $(date -u '+%Y-%m-%d %H:%M UTC'), threads $T, $N generated tokens, median (min-max) of $R runs"
echo
echo "| preset | type | stock decode tok/s | patched decode tok/s | speedup | stock prefill | patched prefill | fidelity |"
echo "|---|---|---|---|---|---|---|---|"
for p in tiny small; do
    for t in q8_0 q4_0 f32; do
        f="$D/$p-$t.gguf"
        [ -f "$f" ] || "$Z" synth --arch qwen3moe --preset $p --type $t --seed 7 -o "$f" >/dev/null 2>&1
        "$Z" validate -m "$f" --threads "$T" --max-tokens "$N" --runs "$R" --device cpu --capsule "$D/$p-$t.json" >"$D/$p-$t.txt" || true
        python3 - "$D/$p-$t.json" "$p" "$t" <<'PY' 2>/dev/null || awk -v p=$p -v t=$t 'BEGIN{print "| " p " | " t " | see capsule | | | | | |"}'
import json,sys
c=json.load(open(sys.argv[1])); s=c["summary"]
print("| %s | %s | %.1f (%.1f-%.1f) | %.1f (%.1f-%.1f) | %.2fx | %.0f | %.0f | %s %d/%d |" % (sys.argv[2], sys.argv[3],
  s["stock_decode_tok_s"], s["stock_decode_min"], s["stock_decode_max"], s["patched_decode_tok_s"], s["patched_decode_min"],
  s["patched_decode_max"], s["decode_speedup"], s["stock_prefill_tok_s"], s["patched_prefill_tok_s"], s["fidelity"], s["matched"], s["total"]))
PY
    done
done
