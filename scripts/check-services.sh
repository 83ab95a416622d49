#!/usr/bin/env bash
# Checks that PostgreSQL and RabbitMQ answer where the configuration says,
# and says how to start them when they do not. The compose advice below must work as written:
# deploy/tools/check_deploy.py compose (make deploy-check) checks that compose publishes the
# ports of the default URLs on 127.0.0.1 with matching credentials.
set -uo pipefail

db_url="${DATABASE_URL:-postgres://postgres@127.0.0.1:5432/foxflow}"
amqp_url="${AMQP_URL:-amqp://guest:guest@127.0.0.1:5672/%2f}"

hostport() { # URL -> host port (default port $2)
    local rest="${1#*://}"; rest="${rest#*@}"; rest="${rest%%/*}"
    local host="${rest%%:*}" port="${rest##*:}"
    [ "$port" = "$rest" ] && port="$2"
    echo "$host $port"
}

reachable() { timeout 2 bash -c "exec 3<>/dev/tcp/$1/$2" 2>/dev/null; }

missing=0
read -r pg_host pg_port < <(hostport "$db_url" 5432)
if ! reachable "$pg_host" "$pg_port"; then
    missing=1
    cat >&2 <<MSG
PostgreSQL is not reachable at $pg_host:$pg_port (DATABASE_URL).
  Start it with the compose file:   docker compose -f deploy/docker-compose.yml up -d postgres
    (published on 127.0.0.1:5432, user postgres without a password, database foxflow: the
    default DATABASE_URL reaches it as it is)
  or your distribution's package:   sudo pg_ctlcluster 15 main start   (Debian/Ubuntu)
  or point DATABASE_URL at a running server.
MSG
fi
read -r mq_host mq_port < <(hostport "$amqp_url" 5672)
if ! reachable "$mq_host" "$mq_port"; then
    missing=1
    cat >&2 <<MSG
RabbitMQ is not reachable at $mq_host:$mq_port (AMQP_URL).
  Start it with the compose file:   docker compose -f deploy/docker-compose.yml up -d rabbitmq
    (published on 127.0.0.1:5672, guest/guest; management console on 127.0.0.1:15672)
  or your distribution's package:   sudo rabbitmq-server -detached
  or point AMQP_URL at a running broker.
MSG
fi
exit $missing
