#!/usr/bin/env bash
# Installs the real servers some tests start for themselves, from Debian's packages:
#   pgbouncer       — the pgBouncer (transaction mode) tests
#   clamav-daemon   — the virus-scan tests (a clamd loaded with a signature database the test makes)
#   postgresql      — the server binaries (initdb, postgres) of the TLS-only PostgreSQL tests
# Idempotent: installs only what is missing. The tests fail with a clear message when a server is
# still missing, so a failure here is reported but does not hide the reason later.
set -euo pipefail

need=()
command -v pgbouncer >/dev/null 2>&1 || [ -x /usr/sbin/pgbouncer ] || need+=(pgbouncer)
[ -x /usr/sbin/clamd ] || command -v clamd >/dev/null 2>&1 || need+=(clamav-daemon)
compgen -G '/usr/lib/postgresql/*/bin/initdb' >/dev/null || need+=(postgresql)
if [ ${#need[@]} -eq 0 ]; then
    exit 0
fi

if ! command -v apt-get >/dev/null 2>&1; then
    echo "install-test-servers: apt-get not found; install ${need[*]} yourself" >&2
    exit 1
fi
if [ "$(id -u)" -eq 0 ]; then
    as_root=()
elif command -v sudo >/dev/null 2>&1; then
    as_root=(sudo)
else
    echo "install-test-servers: not root and no sudo; run as root: apt-get install -y ${need[*]}" >&2
    exit 1
fi

echo "install-test-servers: installing ${need[*]}…"
export DEBIAN_FRONTEND=noninteractive
# Installing a package must not start (or enable) its service: the tests start their own
# instances on their own ports, and the machine's running servers are left as they are.
policy=/usr/sbin/policy-rc.d
created_policy=0
if [ ! -e "$policy" ]; then
    printf '#!/bin/sh\nexit 101\n' | "${as_root[@]}" tee "$policy" >/dev/null
    "${as_root[@]}" chmod +x "$policy"
    created_policy=1
fi
trap '[ "$created_policy" = 1 ] && "${as_root[@]}" rm -f "$policy"' EXIT
if ! "${as_root[@]}" apt-get install -y --no-install-recommends "${need[@]}"; then
    "${as_root[@]}" apt-get update
    "${as_root[@]}" apt-get install -y --no-install-recommends "${need[@]}"
fi
