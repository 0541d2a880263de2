#!/bin/sh
# Pack the binaries a device call runs (built here with `make`) into
# .carry/bins.tar.gz (git-ignored; name .carry in the call's carry).
set -e
mkdir -p .carry
if [ -n "$SUITE" ]; then # every test binary, for the whole suite on the device
    T="$(ls -d build/tests/test_* | grep -v '\.[od]$') build/libzmlx.so"
else
    T="build/tests/test_cuda_ops build/tests/test_cuda_graph"
fi
tar czf .carry/bins.tar.gz $T build/bench/cuda_decode build/zmlx ${EXTRA:-}
ls -la .carry/bins.tar.gz
