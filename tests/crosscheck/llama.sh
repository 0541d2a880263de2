#!/bin/sh
# Cross-check zmlx against llama.cpp on files written by `zmlx synth`.
#   sh tests/crosscheck/llama.sh [BUILD_DIR]        (default build)
# Fetches llama.cpp 0.5.0's prebuilt CPU libraries (npm
# @node-llama-cpp/linux-x64@3.22.1) and the matching headers (the llama.cpp
# git bundle inside node-llama-cpp@3.22.1) into $ZMLX_LLAMA_DIR (default
# BUILD_DIR/llama, git-ignored), builds tests/crosscheck/llama_decode.c
# against them and tests/crosscheck/zmlx_decode.c against libzmlx, then for
# each --type: writes the preset with `zmlx synth`, proves llama.cpp loads
# it, decodes XC_STEPS (32) greedy tokens from the same prompt ids in both
# engines and compares tokens and logits (llama.cpp with an F32 KV cache and
# without flash attention, i.e. exact F32 attention like zmlx).
# F32 must agree on every token and within XC_F32_TOL (1e-4) relative logit
# difference; F16/BF16/Q8_0/Q4_0 agreement is reported (llama.cpp rounds
# activations to the weight's vec-dot type, zmlx does not).
# Exit 0 pass, 1 fail, 77 skipped (prints "SKIPPED: why" when npm does not
# answer or a tool is missing: never a silent pass).
# Knobs: XC_PRESET (tiny), XC_TYPES ("f32 f16 q8_0 q4_0"), XC_STEPS (32),
# XC_PROMPT (ids), XC_THREADS (1), XC_SKIP=1 (skip), XC_NPM_TIMEOUT (120 s).
set -u
B=${1:-build}
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
case "$B" in /*) ;; *) B="$root/$B" ;; esac
L=${ZMLX_LLAMA_DIR:-$B/llama}
PRESET=${XC_PRESET:-tiny}
TYPES=${XC_TYPES:-"f32 f16 q8_0 q4_0"}
STEPS=${XC_STEPS:-32}
PROMPT=${XC_PROMPT:-"5,100,220,300,17,400,42,7"}
THREADS=${XC_THREADS:-1}
F32_TOL=${XC_F32_TOL:-1e-4}
skip() { echo "crosscheck: SKIPPED: $*"; exit 77; }
die() { echo "crosscheck: FAIL: $*"; exit 1; }

[ "${XC_SKIP:-0}" = 1 ] && skip "XC_SKIP=1"
[ -x "$B/zmlx" ] && [ -f "$B/libzmlx.so" ] || die "$B/zmlx or $B/libzmlx.so not built (make first)"
for tool in npm tar git cc timeout; do command -v $tool >/dev/null 2>&1 || skip "$tool not installed"; done

# ---- fetch llama.cpp once ---------------------------------------------------
if [ ! -f "$L/.ready" ]; then
    rm -rf "$L" && mkdir -p "$L/dl" || die "cannot create $L"
    echo "crosscheck: fetching llama.cpp 0.5.0 from npm into $L"
    ( cd "$L/dl" && timeout "${XC_NPM_TIMEOUT:-120}" npm pack --silent --fetch-retries=1 --fetch-timeout=30000 \
        @node-llama-cpp/linux-x64@3.22.1 node-llama-cpp@3.22.1 >npm.log 2>&1 ) ||
        { rm -rf "$L"; skip "npm did not answer (npm pack @node-llama-cpp/linux-x64@3.22.1)"; }
    ( cd "$L/dl" && mkdir bin main && tar xzf node-llama-cpp-linux-x64-3.22.1.tgz -C bin &&
      tar xzf node-llama-cpp-3.22.1.tgz -C main package/llama/gitRelease.bundle &&
      git clone -q main/package/llama/gitRelease.bundle src 2>/dev/null ) || die "unpacking the npm packages failed"
    mkdir -p "$L/include" && mv "$L/dl/bin/package/bins/linux-x64" "$L/lib" &&
        cp "$L/dl/src/include/llama.h" "$L/dl/src/ggml/include/"*.h "$L/include/" || die "llama.cpp layout not as expected"
    rm -rf "$L/dl"
    touch "$L/.ready"
fi

# ---- build both sides ---------------------------------------------------------
cc -O2 -std=c11 -D_GNU_SOURCE -w -I"$L/include" "$here/llama_decode.c" -o "$L/llama_decode" \
    -L"$L/lib" -l:libllama.v0.5.0.so -l:libggml.v0.5.0.so -l:libggml-base.so -Wl,-rpath,"$L/lib" ||
    die "cannot build llama_decode against llama.cpp's headers"
cc -O2 -std=c11 -D_GNU_SOURCE -Wall -I"$root/include" "$here/zmlx_decode.c" -o "$L/zmlx_decode" \
    -L"$B" -lzmlx -Wl,-rpath,"$B" -lm || die "cannot build zmlx_decode against $B/libzmlx.so"

# ---- compare --------------------------------------------------------------------
# field N of a comma list
nth() { echo "$1" | cut -d, -f"$2"; }
fail=0
for t in $TYPES; do
    f="$L/$PRESET-$t.gguf"
    "$B/zmlx" synth --preset "$PRESET" --type "$t" --seed 1 -o "$f" >/dev/null 2>&1 || { echo "crosscheck: FAIL: zmlx synth --type $t"; fail=1; continue; }
    lo=$("$L/llama_decode" -m "$f" --libdir "$L/lib" --prompt-ids "$PROMPT" -n "$STEPS" --threads "$THREADS" --logits "$f.logits" 2>&1)
    lids=$(echo "$lo" | sed -n 's/^ids: //p')
    if [ -z "$lids" ]; then echo "crosscheck: FAIL: $PRESET $t: llama.cpp did not load/decode: $(echo "$lo" | tail -3)"; fail=1; continue; fi
    zo=$("$L/zmlx_decode" -m "$f" --prompt-ids "$PROMPT" -n "$STEPS" --threads "$THREADS" --ref-logits "$f.logits" 2>&1)
    zids=$(echo "$zo" | sed -n 's/^ids: //p')
    if [ -z "$zids" ]; then echo "crosscheck: FAIL: $PRESET $t: zmlx did not decode: $(echo "$zo" | tail -3)"; fail=1; continue; fi
    agree=0 first=none i=1
    while [ "$i" -le "$STEPS" ]; do
        if [ "$(nth "$lids" $i)" = "$(nth "$zids" $i)" ]; then agree=$((agree + 1)); elif [ "$first" = none ]; then first=$((i - 1)); fi
        i=$((i + 1))
    done
    err=$(echo "$zo" | sed -n 's/^logit_rel_err: \([^ ]*\).*/\1/p')
    ltps=$(echo "$lo" | sed -n 's/.*decode_tok_s: \([0-9.]*\).*/\1/p')
    ztps=$(echo "$zo" | sed -n 's/.*decode_tok_s: \([0-9.]*\).*/\1/p')
    verdict=report
    if [ "$t" = f32 ]; then
        verdict=PASS
        [ "$agree" -eq "$STEPS" ] || verdict=FAIL
        awk -v e="$err" -v tol="$F32_TOL" 'BEGIN { exit !(e != "" && e + 0 <= tol + 0) }' || verdict=FAIL
        [ "$verdict" = FAIL ] && fail=1
    fi
    echo "crosscheck: $PRESET $t: loads in llama.cpp; greedy tokens agree $agree/$STEPS (first difference at step $first); max logit rel diff $err (steps before divergence); decode tok/s zmlx $ztps llama.cpp $ltps [$verdict]"
    [ "$verdict" = FAIL ] && { echo "  llama.cpp: $lids"; echo "  zmlx:      $zids"; }
done
[ "$fail" -eq 0 ] && echo "crosscheck: PASS" || echo "crosscheck: FAIL"
exit $fail
