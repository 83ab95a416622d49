#!/usr/bin/env bash
# API fuzzing (docs/spec.md §12, issue 9): schemathesis generates requests from the gateway's own
# /api/openapi.json and checks that no answer is a 5xx and that every answer matches the
# schema. It runs against the real api-gateway binary, with its own database and FOX_NAMESPACE,
# on a free port, with an admin token; everything is removed afterwards.
#
#   scripts/schemathesis.sh                  bounded run (ST_MAX_EXAMPLES=15 per operation)
#   ST_MAX_EXAMPLES=200 scripts/schemathesis.sh
#
# Needs the binaries (`cargo build --bins`; make test builds them first), PostgreSQL and
# RabbitMQ (make check-services), python3 with venv. schemathesis is installed once into
# .run/schemathesis/venv, pinned in scripts/requirements-schemathesis.txt. Without python3 or
# PyPI the script says why and exits 0 ("skipped: …"); a finding exits 1. The report (JUnit)
# and the gateway's log are left in .run/schemathesis/.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

dir=.run/schemathesis
venv="$dir/venv"
requirements=scripts/requirements-schemathesis.txt
max_examples="${ST_MAX_EXAMPLES:-15}"
pg_base="${FOX_TEST_PG:-postgres://postgres@127.0.0.1:5432}"
bin="${CARGO_TARGET_DIR:-$PWD/target}/debug"
mkdir -p "$dir"

skip() {
    echo "schemathesis: skipped: $*"
    exit 0
}

command -v python3 >/dev/null || skip "python3 is not installed"
pinned="$(grep -E '^schemathesis==' "$requirements" | cut -d= -f3)"
if [[ "$("$venv/bin/st" --version 2>/dev/null | awk '{print $NF}')" != "$pinned" ]]; then
    echo "schemathesis: installing schemathesis $pinned into $venv"
    python3 -m venv "$venv" || skip "python3 cannot create a venv (install python3-venv)"
    "$venv/bin/pip" install --quiet --disable-pip-version-check -r "$requirements" ||
        skip "schemathesis could not be installed from PyPI"
fi

for b in api-gateway foxctl; do
    [[ -x "$bin/$b" ]] || cargo build --bins -p api-gateway -p foxctl
done

suffix="$(python3 -c 'import uuid; print(uuid.uuid4().hex[:12])')"
db="foxflow_st_$suffix"
port="$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')"
export DATABASE_URL="$pg_base/$db"
export FOX_NAMESPACE="st$suffix"
export API_ADDR="127.0.0.1:$port"
# Generated requests come fast: the limits would answer 429s that say nothing about the schema.
export UPLOAD_THROTTLE=off IMPORT_RATE_LIMIT=off AI_RATE_LIMIT=off
base="http://$API_ADDR"

api_pid=""
cleanup() {
    local rc=$?
    if [[ -n "$api_pid" ]]; then
        kill -TERM "$api_pid" 2>/dev/null || true
        wait "$api_pid" 2>/dev/null || true
    fi
    # The namespace's queues and exchanges, as `foxctl topology` lists them.
    if "$bin/foxctl" topology --namespace "$FOX_NAMESPACE" >"$dir/topology.json" 2>/dev/null; then
        "$venv/bin/python" - "$dir/topology.json" "${AMQP_URL:-amqp://guest:guest@127.0.0.1:5672/%2f}" <<'PY' ||
import json, sys
import pika
definitions = json.load(open(sys.argv[1]))
connection = pika.BlockingConnection(pika.URLParameters(sys.argv[2]))
for kind in ("queues", "exchanges"):
    for item in definitions.get(kind, []):
        channel = connection.channel()
        try:
            (channel.queue_delete if kind == "queues" else channel.exchange_delete)(item["name"])
            channel.close()
        except pika.exceptions.ChannelClosed:
            pass
connection.close()
PY
            echo "schemathesis: could not delete the broker namespace $FOX_NAMESPACE" >&2
    fi
    psql "$pg_base/postgres" -qc "DROP DATABASE IF EXISTS \"$db\" WITH (FORCE)" >/dev/null 2>&1 ||
        echo "schemathesis: could not drop database $db (is psql installed?); drop it by hand" >&2
    exit "$rc"
}
trap cleanup EXIT INT TERM

"$bin/foxctl" migrate >"$dir/migrate.log" 2>&1
token="$("$bin/foxctl" token create --name schemathesis --role admin)"
"$bin/api-gateway" >"$dir/api-gateway.log" 2>&1 &
api_pid=$!

for _ in $(seq 1 200); do
    if curl -fsS "$base/readyz" >/dev/null 2>&1; then break; fi
    kill -0 "$api_pid" 2>/dev/null || {
        echo "schemathesis: api-gateway exited; see $dir/api-gateway.log" >&2
        exit 1
    }
    sleep 0.1
done
status="$(curl -s -o "$dir/openapi.json" -w '%{http_code}' "$base/api/openapi.json")"
if [[ "$status" != 200 ]]; then
    echo "schemathesis: $base/api/openapi.json answered $status: the gateway must serve its schema" >&2
    exit 1
fi

echo "schemathesis: $(python3 -c 'import json,sys; d=json.load(open(sys.argv[1])); print(sum(len(v) for v in d.get("paths",{}).values()), "operations,", d.get("openapi"))' "$dir/openapi.json"), $max_examples examples each"
# The upload is exercised with generated multipart bodies too, but fewer: each one is a
# stored file and a job. The checks: no 5xx, every answer in the schema (body and status).
"$venv/bin/st" run "$base/api/openapi.json" \
    --header "Authorization: Bearer $token" \
    --checks not_a_server_error,response_schema_conformance,status_code_conformance \
    --max-examples "$max_examples" \
    --phases examples,coverage,fuzzing \
    --workers 2 \
    --seed "${ST_SEED:-20261125}" \
    --request-timeout 30 \
    --suppress-health-check too_slow,filter_too_much \
    --report junit --report-dir "$dir" \
    --no-color
echo "schemathesis: no findings"
