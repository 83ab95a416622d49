#!/usr/bin/env bash
# Installs what `make bench` drives besides our own binaries: `wrk` (the upload
# load generator) and `psql` (the reference import), from Debian's packages,
# and psycopg (the upload reference's 32 PostgreSQL clients), from PyPI.
# Idempotent: does nothing when all are there.
set -euo pipefail

if ! python3 -c 'import psycopg' 2>/dev/null; then
    echo "install-bench-tools: installing psycopg…"
    python3 -m pip install --quiet --disable-pip-version-check 'psycopg[binary]>=3.2,<4'
fi

missing=()
command -v wrk >/dev/null 2>&1 || missing+=(wrk)
command -v psql >/dev/null 2>&1 || missing+=(postgresql-client)
[ ${#missing[@]} -eq 0 ] && exit 0

if ! command -v apt-get >/dev/null 2>&1; then
    echo "install-bench-tools: apt-get not found; install ${missing[*]} yourself" >&2
    exit 1
fi
# apt needs root: sudo only when we are not root already.
if [ "$(id -u)" -eq 0 ]; then
    as_root=()
elif command -v sudo >/dev/null 2>&1; then
    as_root=(sudo)
else
    echo "install-bench-tools: not root and no sudo; run as root: apt-get install -y ${missing[*]}" >&2
    exit 1
fi
echo "install-bench-tools: installing ${missing[*]}…"
export DEBIAN_FRONTEND=noninteractive
if ! "${as_root[@]}" apt-get install -y --no-install-recommends "${missing[@]}"; then
    # A stale package index is the usual reason; refresh it once and retry.
    "${as_root[@]}" apt-get update
    "${as_root[@]}" apt-get install -y --no-install-recommends "${missing[@]}"
fi
