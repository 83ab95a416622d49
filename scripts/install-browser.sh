#!/usr/bin/env bash
# Installs the headless browser the dashboard end-to-end test drives (Debian packages
# `chromium` and `chromium-driver`). Idempotent: does nothing when chromedriver is already there.
# The test itself fails with a clear message when the browser is missing, so a failure here is
# reported but does not hide the reason later.
set -euo pipefail

if command -v chromedriver >/dev/null 2>&1 && { command -v chromium >/dev/null 2>&1 || command -v chromium-browser >/dev/null 2>&1; }; then
    exit 0
fi

if ! command -v apt-get >/dev/null 2>&1; then
    echo "install-browser: apt-get not found; install chromium and chromedriver yourself" \
        "(or set CHROMEDRIVER / CHROMIUM to their paths)" >&2
    exit 1
fi

# apt needs root: use sudo only when we are not root already (CI containers usually are).
if [ "$(id -u)" -eq 0 ]; then
    as_root=()
elif command -v sudo >/dev/null 2>&1; then
    as_root=(sudo)
else
    echo "install-browser: not root and no sudo; run as root: apt-get install -y chromium chromium-driver" >&2
    exit 1
fi

echo "install-browser: installing chromium and chromium-driver (once, this takes a while)…"
export DEBIAN_FRONTEND=noninteractive
if ! "${as_root[@]}" apt-get install -y --no-install-recommends chromium chromium-driver; then
    # A stale package index is the usual reason; refresh it once and retry.
    "${as_root[@]}" apt-get update
    "${as_root[@]}" apt-get install -y --no-install-recommends chromium chromium-driver
fi
command -v chromedriver >/dev/null
