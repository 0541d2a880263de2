#!/bin/sh
# Builds the llama.cpp side of the tokenizer cross-check.
#   sh tests/crosscheck/llama_tok/run.sh [BUILD_DIR]     (default build)
# Fetches llama.cpp 0.5.0's prebuilt CPU libraries (npm
# @node-llama-cpp/linux-x64@3.22.1) and its headers (the git bundle in
# node-llama-cpp@3.22.1) into BUILD_DIR/llama, the same folder and layout as
# tests/crosscheck/llama.sh, so one download serves both; then compiles
# llama_tokenize.c there. Exit 0 ready, 77 unavailable (npm does not answer or
# a tool is missing: the caller reports SKIPPED), 1 failure.
set -u
B=${1:-build}
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../../.." && pwd)
case "$B" in /*) ;; *) B="$root/$B" ;; esac
L=${ZMLX_LLAMA_DIR:-$B/llama}
skip() { echo "llama_tok: SKIPPED: $*"; exit 77; }
for tool in npm tar git cc timeout; do command -v $tool >/dev/null 2>&1 || skip "$tool not installed"; done
if [ ! -f "$L/.ready" ]; then
    rm -rf "$L.tok.$$" && mkdir -p "$L.tok.$$/dl" || exit 1
    T="$L.tok.$$"
    ( cd "$T/dl" && timeout "${XC_NPM_TIMEOUT:-120}" npm pack --silent --fetch-retries=1 --fetch-timeout=30000 \
        @node-llama-cpp/linux-x64@3.22.1 node-llama-cpp@3.22.1 >npm.log 2>&1 ) ||
        { rm -rf "$T"; skip "npm did not answer (npm pack @node-llama-cpp/linux-x64@3.22.1)"; }
    ( cd "$T/dl" && mkdir bin main && tar xzf node-llama-cpp-linux-x64-3.22.1.tgz -C bin &&
      tar xzf node-llama-cpp-3.22.1.tgz -C main package/llama/gitRelease.bundle &&
      git clone -q main/package/llama/gitRelease.bundle src 2>/dev/null ) || { rm -rf "$T"; echo "llama_tok: unpacking failed"; exit 1; }
    mkdir -p "$T/include" && mv "$T/dl/bin/package/bins/linux-x64" "$T/lib" &&
        cp "$T/dl/src/include/llama.h" "$T/dl/src/ggml/include/"*.h "$T/include/" || { rm -rf "$T"; exit 1; }
    rm -rf "$T/dl"
    touch "$T/.ready"
    # another run may have finished first: keep whichever is complete
    [ -f "$L/.ready" ] && rm -rf "$T" || { rm -rf "$L"; mv "$T" "$L"; }
fi
[ -x "$L/llama_tokenize" ] && [ "$L/llama_tokenize" -nt "$here/llama_tokenize.c" ] && exit 0
cc -O2 -std=c11 -D_GNU_SOURCE -w -I"$L/include" "$here/llama_tokenize.c" -o "$L/llama_tokenize" \
    -L"$L/lib" -l:libllama.v0.5.0.so -l:libggml.v0.5.0.so -l:libggml-base.so -Wl,-rpath,"$L/lib" ||
    { echo "llama_tok: cannot build llama_tokenize against llama.cpp's headers"; exit 1; }
