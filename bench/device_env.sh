# Source this first in every device-machine command (bench/*.sh do):
#   . bench/device_env.sh
# The GPU machine reaches no package registry: the Debian packages the build
# needs travel in .debs/ (git-ignored; fill it here with
#   mkdir -p .debs && cd .debs && apt-get download libcjson1 libcjson-dev libpcre2-8-0 libpcre2-dev
# and name .debs in the device call's carry) and are unpacked into .deps/.
if [ -d .debs ]; then
    mkdir -p .deps
    for f in .debs/*.deb; do dpkg -x "$f" .deps; done
fi
export DEPS_PREFIX="$PWD/.deps" SKIP_DEPS=1
export PATH="/usr/local/cuda/bin:$PATH"
export OUT="${OUT:-/tmp/out}"
mkdir -p "$OUT"

# Shared by the device scripts: elapsed seconds, the CUDA build, GPU tests.
S=$(date +%s)
el() { echo "[$(($(date +%s) - S)) s]"; }
# Build everything with CUDA; on failure print the log's tail and stop.
zm_build() { make -j16 all >"$OUT/build.log" 2>&1 || { tail -30 "$OUT/build.log"; exit 1; }; }
# The binaries built here and carried (bench/pack.sh -> .carry/bins.tar.gz),
# unpacked, with the carried libraries on the loader's path.
zm_carried() {
    tar xzf .carry/bins.tar.gz || exit 1
    export LD_LIBRARY_PATH="$DEPS_PREFIX/usr/lib/x86_64-linux-gnu:$LD_LIBRARY_PATH"
}
# Run the named test binaries: a log each in $OUT, a line each, failures.
zm_gpu_tests() {
    for t in "$@"; do
        timeout 300 build/tests/$t >"$OUT/$t.log" 2>&1
        rc=$?
        echo "$(el) $t: exit $rc $(grep -E '^RESULT' "$OUT/$t.log" | tail -1)"
        grep -E 'FAIL' "$OUT/$t.log" | head -20
    done
}
# The attention phase trace (ZMLX_ATT_TRACE=1) of /tmp/q4_0.gguf under each
# setting of $1 (';'-separated, ','-joined VAR=V, "-" the defaults).
zm_att_traces() {
    echo "$1" | tr ';' '\n' | while read -r v; do
        echo "$(el) trace $v"
        (for kv in $(echo "$v" | tr ',' ' '); do case "$kv" in *=*) export "$kv" ;; esac; done
         ZMLX_ATT_TRACE=1 timeout 120 build/bench/cuda_decode -m /tmp/q4_0.gguf -n ${N:-256} --fused-only) >"$OUT/trace.log" 2>&1
        grep -E "fused decode|->|entry" "$OUT/trace.log"
    done
}
