#!/usr/bin/env bash
# Offline checks of deploy/: the kustomize render against the Kubernetes schemas (and our KEDA
# schemas), the compose file, the RabbitMQ definitions against the topology the services
# declare, and the Dockerfile. One line per check; exit status 1 if any failed.
#
#   scripts/check-deploy.sh            # from the repository root
#
# Needs kubectl (for `kubectl kustomize`; a standalone kustomize also does) and python3. The first run creates a venv under
# ${FOX_TOOLS_DIR:-.run/tools}/venv and installs the validators from PyPI (the Kubernetes
# schemas ship inside kubernetes-validate); later runs reuse it and need no network.
#
#   KUBE_VERSION   Kubernetes version to validate against (default 1.30.0)
#   FOXCTL         foxctl binary for the optional topology comparison (default target/debug/foxctl)
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."

KUBE_VERSION="${KUBE_VERSION:-1.30.0}"
TOOLS_DIR="${FOX_TOOLS_DIR:-.run/tools}"
VENV="$TOOLS_DIR/venv"
FOXCTL="${FOXCTL:-target/debug/foxctl}"
CHECKER=deploy/tools/check_deploy.py
DEFINITIONS=deploy/rabbitmq/definitions.json
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

# --- (a) kustomize render -------------------------------------------------------------------
# kubectl's built-in kustomize, or a standalone kustomize binary.
if command -v kubectl >/dev/null 2>&1; then
    render=(kubectl kustomize deploy/k8s)
elif command -v kustomize >/dev/null 2>&1; then
    render=(kustomize build deploy/k8s)
else
    render=()
fi
if [ "${#render[@]}" -eq 0 ]; then
    fail "kustomize: neither kubectl nor kustomize is installed"
elif "${render[@]}" >"$work/rendered.yaml" 2>"$work/kustomize.err"; then
    ok "kustomize: ${render[*]} ($(grep -c '^kind:' "$work/rendered.yaml") objects)"
    # (b) schemas, references and the process contract
    run_checker k8s "$work/rendered.yaml" --kube-version "$KUBE_VERSION" \
        --schemas deploy/k8s/schemas --definitions "$DEFINITIONS"
else
    fail "kustomize: ${render[*]}"; cat "$work/kustomize.err"
fi

# --- (c) docker-compose ---------------------------------------------------------------------
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
run_checker compose deploy/docker-compose.yml

# --- (d) RabbitMQ definitions -----------------------------------------------------------------
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
