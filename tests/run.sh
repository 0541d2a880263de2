#!/bin/sh
# Runs every test binary in $1/tests and prints "N passed, N failed, N skipped".
# A binary that crashes or times out counts as one failure.
B=${1:-build}
pass=0 fail=0 skip=0
for t in "$B"/tests/test_*; do
    [ -x "$t" ] || continue
    case "$t" in *.o|*.d) continue;; esac
    name=$(basename "$t")
    out=$(timeout "${ZT_TIMEOUT:-900}" "$t" 2>&1); rc=$?
    printf '%s\n' "$out" | grep -v '^RESULT ' | sed "s/^/[$name] /"
    res=$(printf '%s\n' "$out" | grep '^RESULT ' | tail -n 1)
    if [ -n "$res" ]; then
        set -- $res
        pass=$((pass + $2)); fail=$((fail + $3)); skip=$((skip + $4))
        [ "$rc" -ne 0 ] && [ "$3" -eq 0 ] && { echo "[$name] exited $rc"; fail=$((fail + 1)); }
    else
        echo "[$name] CRASHED or timed out (exit $rc)"; fail=$((fail + 1))
    fi
done
echo "$pass passed, $fail failed, $skip skipped"
[ "$fail" -eq 0 ]
