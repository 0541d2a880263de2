#!/bin/sh
# The main job of `make demo`: synthesize a tiny Qwen3-MoE model, decode it
# with the stock graph and the patched graph, prove the tokens identical,
# print the speed, write a repro capsule and read it back; then show a
# kernel written in one line of math.
set -e
B=${1:-build}
Z="$B/zmlx"
echo "== zmlx validate (tiny qwen3moe preset, stock vs patched)"
"$Z" validate --max-tokens 200 --runs 3 --capsule "$B/demo-capsule.json"
echo
echo "== zmlx report $B/demo-capsule.json"
"$Z" report "$B/demo-capsule.json"
if "$Z" kernel --help >/dev/null 2>&1; then
    echo
    echo "== zmlx kernel: mish(x) = x * tanh(log1p(exp(x)))"
    "$Z" kernel "x * tanh(log1p(exp(x)))" --emit c
    "$Z" kernel "x * tanh(log1p(exp(x)))" --eval x=0.5 --grad x
fi
