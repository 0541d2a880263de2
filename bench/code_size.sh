#!/bin/sh
# The machine code size (bytes of .text, 16 a SASS instruction) of the
# decode kernels, largest first - needs nvcc, no GPU
# (there is no disassembler here; the cubin's section sizes say enough).
# Each launch starts with a cold instruction cache: session 12's attention
# variant with a second copy of its row loop lost 4 % and slowed every
# phase after the loop (docs/PROFILE.md). Usage: sh bench/code_size.sh [FILTER]
NVCC="${NVCC:-nvcc}"
CUARCH="${CUARCH:-90}"
T=$(mktemp -d) || exit 1
for f in src/kernels/cuda/*.cu; do
    b=$(basename "$f" .cu)
    "$NVCC" -O3 -std=c++17 -DZM_HAVE_CUDA=1 -Iinclude -Isrc -arch=sm_$CUARCH -cubin "$f" -o "$T/$b.cubin" || exit 1
    readelf -SW "$T/$b.cubin" 2>/dev/null | awk -v f="$b" '$2 ~ /^\.text\./ {sub(/^\.text\./, "", $2); print $6, f ": " $2}' |
        while read -r hex name; do echo "$(printf '%d' "0x$hex") $name"; done
done | sort -rn | grep -e "${1:-.}" | head -40
rm -rf "$T"
