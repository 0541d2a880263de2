#!/bin/sh
# Runs every libFuzzer target in $1 (default build/fuzz) for $2 seconds each
# (default 60), each on its own corpus folder $1/corpus/<name> (name = the
# binary's name without "fuzz_"), seeded from fuzz/corpus/<name>/ when that
# exists. Exits non-zero if any target crashes, leaks or times out.
# Used by `make fuzz` (FUZZ_SECONDS=N); a crash input is kept as
# $1/crash-<name>-* for replay: $1/fuzz_<name> <file>.
B=${1:-build/fuzz}
S=${2:-60}
[ -n "$S" ] || S=60
here=$(cd "$(dirname "$0")" && pwd)
failed=0 ran=0
for t in "$B"/fuzz_*; do
    [ -f "$t" ] && [ -x "$t" ] || continue
    case "$t" in *.o|*.d) continue;; esac
    name=$(basename "$t" | sed 's/^fuzz_//')
    corpus="$B/corpus/$name"
    mkdir -p "$corpus"
    [ -d "$here/corpus/$name" ] && cp -n "$here/corpus/$name"/* "$corpus"/ 2>/dev/null
    log="$B/$name.log"
    echo "fuzz: $name for ${S}s (corpus $corpus, log $log)"
    # -timeout: one input taking longer than 10 s counts as a hang;
    # -rss_limit_mb: a runaway allocation counts as a failure.
    "$t" "$corpus" -max_total_time="$S" -timeout=10 -rss_limit_mb=2048 \
        -artifact_prefix="$B/crash-$name-" -print_final_stats=1 >"$log" 2>&1
    rc=$?
    ran=$((ran + 1))
    if [ "$rc" -ne 0 ]; then
        echo "fuzz: $name FAILED (exit $rc); last lines of $log:"
        tail -n 30 "$log"
        failed=$((failed + 1))
    else
        runs=$(grep -o 'stat::number_of_executed_units: *[0-9]*' "$log" | grep -o '[0-9]*$')
        echo "fuzz: $name ok (${runs:-?} runs)"
    fi
done
[ "$ran" -gt 0 ] || { echo "fuzz: no targets in $B"; exit 1; }
echo "fuzz: $ran targets, $failed failed"
[ "$failed" -eq 0 ]
