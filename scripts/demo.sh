#!/bin/sh
# The main job of `make demo`. Until the model pipeline lands this shows the
# one-line kernel: generated source, evaluation with its symbolic gradient,
# the disk cache, and a benchmark against a same-run memcpy (CUDA too when a
# GPU answers).
set -e
B=${1:-build}
Z="$B/zmlx"
if "$Z" validate --help >/dev/null 2>&1; then
    exec "$Z" validate --max-tokens 64 --runs 3
fi
MISH="x * tanh(log1p(exp(x)))"
echo "== zmlx kernel: mish(x) = $MISH"
echo
echo "-- 1. one line of math becomes C that the compiler vectorises (zmlx kernel \"...\" --emit c):"
"$Z" kernel "$MISH" --emit c | sed -n '/^void zm_ew/,/^}/p'
echo
echo "-- 2. evaluate it through the compiled kernel, with the symbolic gradient (--eval, --grad):"
"$Z" kernel "$MISH" --eval x=0.5 --grad x
"$Z" kernel "gelu(x) * y" --eval x=1,y=2 --grad y
"$Z" kernel "where(x > 0, x, 0.01 * x)" --eval x=-3 --grad x
echo
echo "-- 3. bad input is a message, not a crash:"
"$Z" kernel "exp(x" --eval x=1 || true
echo
echo "-- 4. compiled kernels live in the disk cache: ${ZMLX_CACHE:-$HOME/.cache/zmlx}"
t0=$(date +%s%N); "$Z" kernel "$MISH * 1.0001" --eval x=1 >/dev/null; t1=$(date +%s%N)
"$Z" kernel "$MISH * 1.0001" --eval x=1 >/dev/null; t2=$(date +%s%N)
echo "   first process $(( (t1 - t0) / 1000000 )) ms, second process $(( (t2 - t1) / 1000000 )) ms (cache hit, no compile)"
echo
echo "-- 5. benchmark on all CPU cores against memcpy of the same bytes (--bench):"
"$Z" kernel "$MISH" --bench --n 8388608
if "$Z" kernel "x" --eval x=1 --device cuda >/dev/null 2>&1; then
    echo
    echo "-- 6. the same kernel on the GPU (NVRTC, 2^28 elements) against cudaMemcpy device-to-device:"
    "$Z" kernel "$MISH" --bench --device cuda
fi
