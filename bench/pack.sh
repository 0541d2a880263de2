#!/bin/sh
# Pack the binaries a device call runs (built here with `make`) into
# .carry/bins.tar.gz (git-ignored; name .carry in the call's carry).
set -e
mkdir -p .carry
tar czf .carry/bins.tar.gz build/tests/test_cuda_ops build/tests/test_cuda_graph build/bench/cuda_decode build/zmlx ${EXTRA:-}
ls -la .carry/bins.tar.gz
