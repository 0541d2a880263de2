#!/bin/sh
# The main job of `make demo`. Until the model pipeline lands this shows the
# one-line kernel: source, evaluation, gradient and a benchmark.
set -e
B=${1:-build}
Z="$B/zmlx"
if "$Z" validate --help >/dev/null 2>&1; then
    exec "$Z" validate --max-tokens 64 --runs 3
fi
echo "== zmlx kernel: mish(x) = x * tanh(log1p(exp(x)))"
"$Z" kernel "x * tanh(log1p(exp(x)))" --emit c
"$Z" kernel "x * tanh(log1p(exp(x)))" --eval x=0.5 --grad x
"$Z" kernel "x * tanh(log1p(exp(x)))" --bench
