#!/usr/bin/env bash
# Offline checks of deploy/: the kustomize base and both overlays against the Kubernetes schemas
# (and our CRD schemas), the connection budget, the monitoring rules (promtool) and dashboard,
# the compose file, the RabbitMQ definitions against the topology the services declare, and the
# Dockerfile. One line per check; exit status 1 if any failed.
#
#   scripts/check-deploy.sh            # from the repository root (make deploy-check)
#
# Needs kubectl (for `kubectl kustomize`; a standalone kustomize also does), python3 and promtool.
# The first run creates a venv under ${FOX_TOOLS_DIR:-.run/tools}/venv and installs the
# validators from PyPI (the Kubernetes schemas ship inside kubernetes-validate), and installs
# promtool from Debian's `prometheus` package when it is missing (as root; otherwise it says how);
# later runs reuse both and need no network.
#
#   KUBE_VERSIONS  Kubernetes versions to validate against (default "1.30.0 latest": the oldest
#                  we support and the newest kubernetes-validate ships)
#   FOXCTL         foxctl binary for the optional topology comparison (default target/debug/foxctl)
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."

KUBE_VERSIONS="${KUBE_VERSIONS:-1.30.0 latest}"
TOOLS_DIR="${FOX_TOOLS_DIR:-.run/tools}"
VENV="$TOOLS_DIR/venv"
FOXCTL="${FOXCTL:-target/debug/foxctl}"
CHECKER=deploy/tools/check_deploy.py
DEFINITIONS=deploy/rabbitmq/definitions.json
RULES=deploy/monitoring/rules/foxflow.rules.yml
RULE_TESTS=(deploy/monitoring/rules/tests/*.test.yml)
PROMETHEUSRULE=deploy/monitoring/prometheusrule.yaml
DASHBOARD=deploy/monitoring/grafana/foxflow.json
# Pinned so that a run today and a run next month validate alike.
PY_REQUIREMENTS=(kubernetes-validate==1.37.0 jsonschema==4.26.0 pyyaml==6.0.3)

failed=0
ok() { printf 'ok   %s\n' "$*"; }
fail() { printf 'FAIL %s\n' "$*"; failed=1; }
skip() { printf 'skip %s\n' "$*"; }
# Runs a checker subcommand; it prints its own lines, a non-zero exit marks the run failed.
run_checker() { "$VENV/bin/python" "$CHECKER" "$@" || failed=1; }

work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT

# --- tools ----------------------------------------------------------------------------------
if ! "$VENV/bin/python" -c 'import kubernetes_validate, jsonschema, yaml' 2>/dev/null; then
    mkdir -p "$TOOLS_DIR"
    [ -x "$VENV/bin/python" ] || python3 -m venv "$VENV"
    if "$VENV/bin/pip" install --quiet --disable-pip-version-check "${PY_REQUIREMENTS[@]}" \
        >"$work/pip.log" 2>&1; then
        ok "tools: installed ${PY_REQUIREMENTS[*]} into $VENV"
    else
        fail "tools: pip install failed"; cat "$work/pip.log"; exit 1
    fi
else
    ok "tools: $VENV reused"
fi

# promtool: Debian's `prometheus` package ships it (Debian 12: Prometheus 2.42).
if ! command -v promtool >/dev/null 2>&1; then
    if [ "$(id -u)" -eq 0 ] && command -v apt-get >/dev/null 2>&1; then
        if { apt-get update && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends prometheus; } \
            >"$work/apt.log" 2>&1 && command -v promtool >/dev/null 2>&1; then
            ok "tools: installed promtool from Debian's prometheus package ($(promtool --version 2>&1 | head -1))"
        else
            fail "tools: apt-get install prometheus failed, so the rules cannot be checked"
            tail -20 "$work/apt.log"
        fi
    else
        fail "tools: promtool missing; install it as root with 'apt-get update && apt-get install -y prometheus' (Debian/Ubuntu), then run again"
    fi
else
    ok "tools: promtool reused ($(promtool --version 2>&1 | head -1))"
fi

# --- (a) kustomize: the base and every overlay ----------------------------------------------
# kubectl's built-in kustomize, or a standalone kustomize binary.
if command -v kubectl >/dev/null 2>&1; then
    render=(kubectl kustomize)
elif command -v kustomize >/dev/null 2>&1; then
    render=(kustomize build)
else
    render=()
fi
kube_args=()
for v in $KUBE_VERSIONS; do kube_args+=(--kube-version "$v"); done
for tree in base overlays/dev overlays/production; do
    profile="${tree#overlays/}"
    out="$work/rendered-$profile.yaml"
    if [ "${#render[@]}" -eq 0 ]; then
        fail "kustomize: neither kubectl nor kustomize is installed"
        break
    elif "${render[@]}" "deploy/k8s/$tree" >"$out" 2>"$work/kustomize.err"; then
        ok "kustomize: ${render[*]} deploy/k8s/$tree ($(grep -c '^kind:' "$out") objects)"
        # (b) schemas, Secrets, references, contract, availability, network, Ingress, KEDA,
        #     connection budget, and (production) the monitoring objects
        run_checker k8s "$out" --profile "$profile" "${kube_args[@]}" \
            --schemas deploy/k8s/schemas --definitions "$DEFINITIONS" \
            --rules "$RULES" --dashboard "$DASHBOARD"
    else
        fail "kustomize: ${render[*]} deploy/k8s/$tree"; cat "$work/kustomize.err"
    fi
done

# --- (c) monitoring: rules, their unit tests, the PrometheusRule, the dashboard ---------------
run_checker monitoring --rules "$RULES" --prometheusrule "$PROMETHEUSRULE" \
    --dashboard "$DASHBOARD" --metrics-doc docs/metrics.md --promql-out "$work/dashboard.rules.yml"
if command -v promtool >/dev/null 2>&1; then
    if promtool check rules "$RULES" >"$work/promtool.log" 2>&1; then
        ok "promtool-check-rules: $RULES ($(grep -o '[0-9]* rules found' "$work/promtool.log"))"
    else
        fail "promtool-check-rules: $RULES"; cat "$work/promtool.log"
    fi
    if promtool test rules "${RULE_TESTS[@]}" >"$work/promtool-test.log" 2>&1; then
        ok "promtool-test-rules: ${#RULE_TESTS[@]} files, $(grep -c 'alertname:' "${RULE_TESTS[@]}" | awk -F: '{s+=$NF} END {print s}') alert expectations"
    else
        fail "promtool-test-rules"; cat "$work/promtool-test.log"
    fi
    if [ -s "$work/dashboard.rules.yml" ]; then
        if promtool check rules "$work/dashboard.rules.yml" >"$work/promtool-dash.log" 2>&1; then
            ok "promtool-dashboard-queries: every query of $DASHBOARD parses"
        else
            fail "promtool-dashboard-queries: $DASHBOARD"; cat "$work/promtool-dash.log"
        fi
    fi
else
    fail "promtool: not installed (above), rules not checked"
fi

# --- (d) docker-compose ---------------------------------------------------------------------
# `docker compose config` needs no engine, only the compose plugin, which may be missing.
if docker compose version >/dev/null 2>&1; then
    if docker compose -f deploy/docker-compose.yml config -q 2>"$work/compose.err"; then
        ok "compose-config: docker compose config -q"
    else
        fail "compose-config: docker compose config -q"; cat "$work/compose.err"
    fi
else
    skip "compose-config: no docker compose plugin here; structural check only"
fi
run_checker compose deploy/docker-compose.yml --check-services scripts/check-services.sh

# --- (e) RabbitMQ definitions -----------------------------------------------------------------
run_checker definitions "$DEFINITIONS" --dev-users deploy/rabbitmq/dev-users.json

# --- optional: the services' own topology -----------------------------------------------------
# `foxctl topology --namespace fox` prints {"exchanges": [...], "queues": [...], "bindings":
# [...]} in the shape of definitions.json; it must equal the file, or a broker that imported the
# file would refuse the services' declarations (PRECONDITION_FAILED).
if [ -x "$FOXCTL" ]; then
    if "$FOXCTL" topology --namespace fox >"$work/topology.json" 2>"$work/topology.err"; then
        run_checker topology "$work/topology.json" "$DEFINITIONS"
    else
        fail "topology-vs-definitions: $FOXCTL topology --namespace fox failed"
        cat "$work/topology.err"
    fi
else
    skip "topology-vs-definitions: $FOXCTL not built"
fi

# --- Dockerfile -------------------------------------------------------------------------------
run_checker dockerfile deploy/Dockerfile

if [ "$failed" -ne 0 ]; then
    echo "check-deploy: FAILED"
    exit 1
fi
echo "check-deploy: all checks passed"
