#!/bin/sh
# The main job of `make demo`: synthesize a tiny Qwen3-MoE model, decode it
# with the stock graph and the patched graph, prove the tokens identical,
# print the speed, write a repro capsule and read it back; then show a
# kernel written in one line of math: its generated C, evaluation with its
# symbolic gradient, the disk cache, and a benchmark against memcpy.
set -e
B=${1:-build}
Z="$B/zmlx"
echo "== zmlx validate (tiny qwen3moe preset, stock vs patched)"
"$Z" validate --max-tokens 200 --runs 3 --capsule "$B/demo-capsule.json"
echo
echo "== zmlx report $B/demo-capsule.json"
"$Z" report "$B/demo-capsule.json"
if "$Z" generate --help >/dev/null 2>&1; then
    echo
    echo "== zmlx generate: text in, text out (random weights, so the text is noise; the pipeline is real)"
    "$Z" synth --preset tiny -o "$B/demo-tiny.gguf" >/dev/null 2>&1
    "$Z" tokenize -m "$B/demo-tiny.gguf" -p "Hello, world! 12345 <|im_end|>" --pieces
    "$Z" generate -m "$B/demo-tiny.gguf" -p "Tell me a story." --chat -n 40 --temp 0.8 --top-p 0.95 --seed 1
fi
if "$Z" kernel --help >/dev/null 2>&1; then
    MISH="x * tanh(log1p(exp(x)))"
    echo
    echo "== zmlx kernel: mish(x) = $MISH"
    echo "-- one line of math becomes C that the compiler vectorises (--emit c; --emit cuda for NVRTC):"
    "$Z" kernel "$MISH" --emit c | sed -n '/^void zm_ew/,/^}/p'
    echo "-- evaluated through the compiled kernel, with the symbolic gradient (--eval, --grad):"
    "$Z" kernel "$MISH" --eval x=0.5 --grad x
    "$Z" kernel "gelu(x) * y" --eval x=1,y=2 --grad y
    echo "-- bad input is a message, not a crash:"
    "$Z" kernel "exp(x" --eval x=1 || true
    echo "-- compiled kernels live in the disk cache (${ZMLX_CACHE:-$HOME/.cache/zmlx}):"
    t0=$(date +%s%N); "$Z" kernel "$MISH * 1.0001" --eval x=1 >/dev/null; t1=$(date +%s%N)
    "$Z" kernel "$MISH * 1.0001" --eval x=1 >/dev/null; t2=$(date +%s%N)
    echo "   first process $(( (t1 - t0) / 1000000 )) ms, second process $(( (t2 - t1) / 1000000 )) ms (no compile)"
    # 2^28 elements (2 GiB of buffers, past any cache) where memory allows
    N=8388608
    AVAIL_KB=$(awk '/^MemAvailable:/ {print $2}' /proc/meminfo 2>/dev/null || echo 0)
    if [ "${AVAIL_KB:-0}" -gt 6000000 ]; then N=268435456; fi
    echo "-- on all CPU cores against memcpy of the same bytes (--bench, $N elements):"
    "$Z" kernel "$MISH" --bench --n "$N"
    if "$Z" kernel "x" --eval x=1 --device cuda >/dev/null 2>&1; then
        echo "-- on the GPU (NVRTC, 2^28 elements) against cudaMemcpy device-to-device:"
        "$Z" kernel "$MISH" --bench --device cuda
    fi
fi
