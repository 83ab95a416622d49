#!/usr/bin/env bash
# `make run`: build, migrate, start the three services against the local
# PostgreSQL and RabbitMQ, print where to go and an admin token. Ctrl-C stops
# everything.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

cargo build --workspace --bins --locked
bin=target/debug
mkdir -p .run/logs

"$bin/foxctl" migrate
token="$("$bin/foxctl" token create --name "${FOX_ADMIN_NAME:-admin}" --role admin --rotate)"
api_addr="${API_ADDR:-127.0.0.1:8080}"

pids=()
stop() {
    trap - INT TERM EXIT
    echo
    echo "stopping…"
    kill -TERM "${pids[@]}" 2>/dev/null || true
    wait "${pids[@]}" 2>/dev/null || true
}
trap stop INT TERM EXIT

for svc in api-gateway import-worker ai-worker; do
    "$bin/$svc" >".run/logs/$svc.log" 2>&1 &
    pids+=($!)
done

for _ in $(seq 1 100); do
    if curl -fsS "http://$api_addr/readyz" >/dev/null 2>&1; then break; fi
    sleep 0.1
done

cat <<MSG

  Foxflow is running.
    Dashboard:          http://$api_addr/   (open it, paste the admin token to sign in)
    API reference:      http://$api_addr/docs   (OpenAPI: http://$api_addr/api/openapi.json)
    Admin token:        $token
    Logs:               .run/logs/{api-gateway,import-worker,ai-worker}.log

  Try it:
    curl -H "Authorization: Bearer $token" -F import_type=entreprises \\
         -F file=@docs/samples/entreprises.csv http://$api_addr/api/v1/imports
    FOX_API_URL=http://$api_addr FOX_TOKEN=$token \\
         $bin/foxctl import docs/samples/villes_france.csv --type villes --wait

  Ctrl-C stops everything.
MSG
wait -n "${pids[@]}" || true
echo "a service exited; see .run/logs/" >&2
