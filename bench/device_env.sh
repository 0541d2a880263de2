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
