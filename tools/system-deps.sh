#!/usr/bin/env bash
# Debian packages the test tiers run for real (DESIGN §13: real Prometheus, real Chromium).
# Installs what tools/system-packages.txt lists and is missing; a no-op when all are present.
# Needs root (CI runs as root); without it, prints what is missing and leaves it to the tests,
# which fail with CI=true rather than skip.
set -euo pipefail
cd "$(dirname "$0")"
mapfile -t wanted < <(grep -v '^\s*#' system-packages.txt | awk 'NF {print $1}')
missing=()
for pkg in "${wanted[@]}"; do
    dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" \
        || missing+=("$pkg")
done
[ ${#missing[@]} -eq 0 ] && exit 0
if [ "$(id -u)" != 0 ]; then
    echo "WARNING: not root, cannot install: ${missing[*]}" >&2
    exit 0
fi
echo "installing Debian packages: ${missing[*]}" >&2
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq >/dev/null
apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
