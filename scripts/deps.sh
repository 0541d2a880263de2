#!/bin/sh
# Installs the Debian packages zmlx needs that this machine lacks.
#   sh scripts/deps.sh        build + test needs
#   sh scripts/deps.sh fuzz   also clang and its sanitizer/libFuzzer runtime
# Does nothing when everything is there; needs root (or sudo) otherwise.
set -e
need="gcc make libc6-dev libcjson-dev libpcre2-dev pkg-config"
[ "$1" = fuzz ] && need="$need clang libclang-rt-dev"
missing=""
for p in $need; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing="$missing $p"
done
[ -z "$missing" ] && exit 0
echo "deps: installing$missing"
SUDO=""
[ "$(id -u)" = 0 ] || SUDO=sudo
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get install -y -q --no-install-recommends $missing >/dev/null 2>&1 || {
    $SUDO apt-get update -q >/dev/null 2>&1
    $SUDO apt-get install -y -q --no-install-recommends $missing
}
