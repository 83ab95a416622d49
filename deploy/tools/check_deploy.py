#!/usr/bin/env python3
"""Offline checks of deploy/, driven by scripts/check-deploy.sh (which sets up the venv).

Each subcommand prints one line per check, "ok", "FAIL" or "skip" first, and exits 1 when any
check failed. Run from the repository root.

    k8s RENDERED --profile base|dev|production   a `kubectl kustomize` output: schemas (strict),
                                                 references, Secrets, the process contract,
                                                 PDBs, spread, NetworkPolicies, Ingress, KEDA
                                                 targets, the connection budget, monitoring
    compose FILE                                 docker-compose.yml, pgBouncer, its budget, and
                                                 scripts/check-services.sh's advice
    monitoring                                   rules file vs PrometheusRule, dashboard, metric
                                                 names against docs/metrics.md
    prometheusrule RULES                         print the PrometheusRule generated from RULES
    definitions / topology / dockerfile          RabbitMQ definitions, foxctl topology, Dockerfile
"""

from __future__ import annotations

import argparse
import base64
import configparser
import difflib
import hashlib
import json
import math
import re
import sys
from pathlib import Path
from urllib.parse import urlsplit

# Every variable a Foxflow process reads (docs/spec.md §2, plus logging and the client variables).
# A name outside this set in a manifest is a typo the services would silently ignore.
KNOWN_ENV = {
    "DATABASE_URL", "AMQP_URL", "FOX_NAMESPACE", "API_ADDR", "METRICS_ADDR",
    "MAX_IMPORT_FILE_BYTES", "MAX_IMPORT_ROWS", "IMPORT_RATE_LIMIT", "AI_RATE_LIMIT",
    "UPLOAD_THROTTLE", "IMPORT_MAX_RETRIES", "IMPORT_RETRY_DELAY", "AI_MAX_RETRIES",
    "AI_RETRY_DELAY", "IMPORT_SOFT_TIME_LIMIT", "IMPORT_TIME_LIMIT", "AI_PROVIDER",
    "OPENAI_BASE_URL", "OPENAI_API_KEY", "OPENAI_MODEL", "IMPORT_LOG_RETENTION",
    "IMPORT_FILE_RETENTION", "CLEANUP_SCHEDULE", "OTEL_EXPORTER_OTLP_ENDPOINT",
    "LOG_FORMAT", "RUST_LOG", "FOX_API_URL", "FOX_TOKEN",
    # Beyond docs/spec.md §2 (docs/configuration.md): tuning knobs the services also read.
    "OPENAI_CONNECT_TIMEOUT", "OPENAI_TIMEOUT", "UPLOAD_THROTTLE_EXEMPT_ADMINS", "IMPORT_BATCH_ROWS",
    "WORKER_PREFETCH", "DB_POOL_SIZE", "IMPORT_LEASE", "WEBHOOK_ALLOW_PRIVATE_NETWORKS",
    "EVENTS_STREAMS_PER_TOKEN", "EVENTS_STREAMS_TOTAL", "AI_MAX_PENDING_TASKS_PER_USER",
    "WEBHOOK_MAX_ATTEMPTS", "WEBHOOK_RETRY_BASE", "WEBHOOK_TIMEOUT", "DATABASE_POOLER",
    "CLAMD_ADDR", "CLAMD_CONNECT_TIMEOUT", "CLAMD_TIMEOUT", "CLAMD_FAIL_OPEN",
}
SECRET_ENV = {"DATABASE_URL", "AMQP_URL", "OPENAI_API_KEY"}
# The Secrets the manifests may reference, with the keys each must hold. The dev overlay ships
# examples of them; the base and the production overlay ship none and reference them by name.
SECRETS = {
    "foxflow-secrets": SECRET_ENV,
    "foxflow-postgres-direct": {"DATABASE_URL"},
    "foxflow-pgbouncer": {"userlist.txt"},
    "foxflow-keda-rabbitmq": {"host"},
    "foxflow-tls": {"tls.crt", "tls.key"},
}
BINARIES = {"api-gateway", "import-worker", "ai-worker", "foxctl"}
# Custom resources and the hand-written schema each is validated against (deploy/k8s/schemas).
CRD_KINDS = {"ScaledObject", "TriggerAuthentication", "PodMonitor", "PrometheusRule"}
# What each long-running process listens on, and how long it may take to stop (brief / docs/spec.md §6).
SERVICES = {
    "api-gateway": {"var": "API_ADDR", "port": 8080, "grace": 30},
    "import-worker": {"var": "METRICS_ADDR", "port": 9101, "grace": 60},
    "ai-worker": {"var": "METRICS_ADDR", "port": 9102, "grace": 120},
}
# Defaults of docs/spec.md §2 that scripts/check-services.sh and docker-compose must agree on.
DEFAULT_DATABASE_URL = "postgres://postgres@127.0.0.1:5432/foxflow"
DEFAULT_AMQP_URL = "amqp://guest:guest@127.0.0.1:5672/%2f"
DEFAULT_DB_POOL_SIZE = 8
# Metric families the brief asks the dashboards and alerts to cover (docs/metrics.md).
REQUIRED_METRICS = {
    "foxflow_queue_messages_ready", "foxflow_queue_messages_unacked", "foxflow_jobs_total",
    "foxflow_job_duration_seconds", "foxflow_import_rows_total",
    "foxflow_http_request_duration_seconds", "foxflow_ai_provider_latency_seconds",
    "foxflow_outbox_unsent_messages", "foxflow_outbox_failed_messages", "foxflow_jobs_past_lease",
    "foxflow_webhook_deliveries_total", "foxflow_db_pool_connections",
    "foxflow_db_pool_max_connections", "foxflow_db_pool_wait_seconds",
}

failures = 0


def report(ok: bool, name: str, detail: str = "") -> None:
    global failures
    if not ok:
        failures += 1
    print(f"{'ok  ' if ok else 'FAIL'} {name}{': ' + detail if detail else ''}", flush=True)


def report_problems(name: str, problems: list[str], ok_detail: str) -> None:
    report(not problems, name, ok_detail if not problems else "\n  " + "\n  ".join(problems))


def skip(name: str, detail: str) -> None:
    print(f"skip {name}: {detail}", flush=True)


# --------------------------------------------------------------------------------------------
# RabbitMQ topology


def expected_topology(ns: str = "fox", vhost: str = "/") -> dict:
    """The topology the services declare (docs/spec.md §6), written out independently of the JSON file."""

    def exchange(name):
        return {"name": name, "vhost": vhost, "type": "direct", "durable": True,
                "auto_delete": False, "internal": False, "arguments": {}}

    def queue(name, arguments):
        return {"name": name, "vhost": vhost, "durable": True, "auto_delete": False,
                "arguments": arguments}

    def binding(source, destination, key):
        return {"source": source, "vhost": vhost, "destination": destination,
                "destination_type": "queue", "routing_key": key, "arguments": {}}

    queues, bindings = [], []
    for kind, retry_ttl_ms in (("imports", 5000), ("ai_generation", 60000)):
        work, retry, dead = f"{ns}.{kind}", f"{ns}.{kind}.retry", f"{ns}.{kind}.dead"
        queues += [
            queue(work, {"x-queue-type": "quorum", "x-delivery-limit": 10,
                         "x-dead-letter-exchange": f"{ns}.dead",
                         "x-dead-letter-routing-key": kind}),
            queue(retry, {"x-queue-type": "classic", "x-message-ttl": retry_ttl_ms,
                          "x-dead-letter-exchange": f"{ns}.jobs",
                          "x-dead-letter-routing-key": kind}),
            queue(dead, {"x-queue-type": "quorum"}),
            # The dead-letter recorder's copy (docs/reliability.md, "The final-state rule").
            queue(f"{dead}.recorder", {"x-queue-type": "quorum"}),
        ]
        bindings += [binding(f"{ns}.jobs", work, kind), binding(f"{ns}.retry", retry, kind),
                     binding(f"{ns}.dead", dead, kind), binding(f"{ns}.dead", f"{dead}.recorder", kind)]
    return {"exchanges": [exchange(f"{ns}.{e}") for e in ("jobs", "retry", "dead")],
            "queues": queues, "bindings": bindings}


def normalise_topology(doc: dict) -> dict:
    """exchanges / queues / bindings only, in a canonical order, for comparison."""
    sort_keys = {
        "exchanges": lambda e: (e.get("vhost", ""), e.get("name", "")),
        "queues": lambda q: (q.get("vhost", ""), q.get("name", "")),
        "bindings": lambda b: (b.get("vhost", ""), b.get("source", ""), b.get("destination", ""),
                               b.get("routing_key", "")),
    }
    return {key: sorted(doc.get(key, []), key=order) for key, order in sort_keys.items()}


def strictly_typed(value):
    """JSON with booleans told apart from integers (True == 1 in Python)."""
    if isinstance(value, dict):
        return {k: strictly_typed(v) for k, v in value.items()}
    if isinstance(value, list):
        return [strictly_typed(v) for v in value]
    return (type(value).__name__, value)


def diff_json(a: dict, b: dict, a_name: str, b_name: str) -> str:
    a_text = json.dumps(a, indent=2, sort_keys=True).splitlines()
    b_text = json.dumps(b, indent=2, sort_keys=True).splitlines()
    return "\n".join(difflib.unified_diff(a_text, b_text, a_name, b_name, lineterm=""))


def cmd_definitions(args) -> None:
    path = Path(args.definitions)
    try:
        doc = json.loads(path.read_text())
    except (OSError, ValueError) as e:
        report(False, "definitions-parse", f"{path}: {e}")
        return
    report(True, "definitions-parse", str(path))

    got, want = normalise_topology(doc), normalise_topology(expected_topology())
    same = strictly_typed(got) == strictly_typed(want)
    report(same, "definitions-topology",
           "exchanges, queues (with arguments, integers as integers) and bindings match docs/spec.md §6"
           if same else "differs from the declared topology:\n" +
           diff_json(want, got, "expected", str(path)))

    vhosts = [v.get("name") for v in doc.get("vhosts", [])]
    report(vhosts == ["/"], "definitions-vhost", f"vhosts {vhosts}")
    # Users come from the operator (Kubernetes) or from dev-users.json (compose), never from the
    # file shared by both; no policy is needed, and one could contradict the queue arguments.
    report(not doc.get("users") and not doc.get("permissions"), "definitions-no-users",
           "no users or permissions in the shared file")
    report(not doc.get("policies"), "definitions-no-policies", "policies empty")

    if args.dev_users:
        users_path = Path(args.dev_users)
        try:
            users = json.loads(users_path.read_text())
            guest = next(u for u in users["users"] if u["name"] == "guest")
            raw = base64.b64decode(guest["password_hash"])
            salt, digest = raw[:4], raw[4:]
            ok = (guest.get("hashing_algorithm") == "rabbit_password_hashing_sha256"
                  and hashlib.sha256(salt + b"guest").digest() == digest
                  and any(p["user"] == "guest" and p["vhost"] == "/"
                          for p in users.get("permissions", []))
                  and not set(users) - {"users", "permissions", "vhosts"})
            report(ok, "definitions-dev-users",
                   f"{users_path}: guest/guest with full rights on /, nothing else")
        except (OSError, ValueError, KeyError, StopIteration) as e:
            report(False, "definitions-dev-users", f"{users_path}: {e}")


def cmd_topology(args) -> None:
    try:
        exported = json.loads(Path(args.exported).read_text())
    except (OSError, ValueError) as e:
        report(False, "topology-vs-definitions", f"foxctl topology output is not JSON: {e}")
        return
    defs = json.loads(Path(args.definitions).read_text())
    got, want = normalise_topology(exported), normalise_topology(defs)
    same = strictly_typed(got) == strictly_typed(want)
    report(same, "topology-vs-definitions",
           "foxctl topology --namespace fox equals definitions.json" if same else
           "foxctl topology and definitions.json differ:\n" +
           diff_json(want, got, args.definitions, "foxctl topology --namespace fox"))


# --------------------------------------------------------------------------------------------
# Helpers shared by the Kubernetes and compose checks


def load_yaml_documents(path: str) -> list[dict]:
    import yaml

    with open(path) as f:
        return [d for d in yaml.safe_load_all(f) if d]


def pod_spec(obj: dict) -> dict | None:
    kind, spec = obj["kind"], obj.get("spec", {})
    if kind in ("Deployment", "Job", "StatefulSet", "DaemonSet"):
        return spec.get("template", {}).get("spec")
    if kind == "CronJob":
        return spec.get("jobTemplate", {}).get("spec", {}).get("template", {}).get("spec")
    return None


def pod_labels(obj: dict) -> dict:
    spec = obj.get("spec", {})
    if obj["kind"] == "CronJob":
        spec = spec.get("jobTemplate", {}).get("spec", {})
    return spec.get("template", {}).get("metadata", {}).get("labels", {}) or {}


def selector_matches(selector: dict | None, labels: dict) -> bool:
    """A Kubernetes label selector (matchLabels + matchExpressions) against a label set."""
    if selector is None:
        return False
    for k, v in (selector.get("matchLabels") or {}).items():
        if labels.get(k) != v:
            return False
    for e in selector.get("matchExpressions") or []:
        key, op, values = e["key"], e["operator"], e.get("values") or []
        if op == "In" and labels.get(key) not in values:
            return False
        if op == "NotIn" and labels.get(key) in values:
            return False
        if op == "Exists" and key not in labels:
            return False
        if op == "DoesNotExist" and key in labels:
            return False
    return True


def is_foxflow_image(image: str) -> bool:
    """foxflow, foxflow:dev, registry.example.com/team/foxflow@sha256:…"""
    repo = re.split(r"[@]", image)[0]
    repo = repo.rsplit("/", 1)[-1].split(":")[0]
    return repo == "foxflow"


def parse_pgbouncer_ini(text: str) -> configparser.ConfigParser:
    ini = configparser.ConfigParser(comment_prefixes=(";", "#"), inline_comment_prefixes=None,
                                    interpolation=None, strict=True)
    ini.read_string(text)
    return ini


def nginx_size(value: str) -> int | None:
    """nginx sizes: 11m, 512k, 1g, or bytes. Units are powers of 1024."""
    m = re.fullmatch(r"\s*(\d+)\s*([kKmMgG]?)\s*", value or "")
    if not m:
        return None
    return int(m.group(1)) * {"": 1, "k": 1024, "m": 1024 ** 2, "g": 1024 ** 3}[m.group(2).lower()]


def surge_pods(deployment: dict, replicas: int) -> int:
    """Extra pods a rolling update may create on top of `replicas` (maxSurge, default 25 %)."""
    strategy = deployment["spec"].get("strategy", {})
    if strategy.get("type") == "Recreate":
        return 0
    surge = strategy.get("rollingUpdate", {}).get("maxSurge", "25%")
    if isinstance(surge, str) and surge.endswith("%"):
        return math.ceil(replicas * int(surge[:-1]) / 100)
    return int(surge)


def pgbouncer_budget(ini: configparser.ConfigParser, instances: int, pg_max: int, pg_reserved: int,
                     clients: list[tuple[str, int, int]], pool_size: int, where: str) -> list[str]:
    """The connection budget (docs/operations.md): returns problems, prints the numbers.

    clients: (name, pods at the ceiling incl. surge, connections per pod).
    """
    problems = []
    pb = ini["pgbouncer"] if ini.has_section("pgbouncer") else {}
    if pb.get("pool_mode") != "transaction":
        problems.append(f"{where}: pool_mode is {pb.get('pool_mode')!r}, want transaction")
    try:
        max_client = int(pb.get("max_client_conn", "100"))
        default_pool = int(pb.get("default_pool_size", "20"))
        reserve_pool = int(pb.get("reserve_pool_size", "0"))
        max_db = int(pb.get("max_db_connections", "0"))
    except ValueError as e:
        return [f"{where}: {e}"]
    if max_db <= 0:
        problems.append(f"{where}: max_db_connections unset (unlimited): the server side has no bound")
        max_db = default_pool + reserve_pool
    if default_pool > max_db:
        problems.append(f"{where}: default_pool_size {default_pool} > max_db_connections {max_db}")
    # Through a transaction pooler the services send no session SET (it would stay behind on one
    # server connection): statement_timeout comes from each database entry's connect_query.
    databases = ini["databases"] if ini.has_section("databases") else {}
    for db, entry in databases.items():
        if "statement_timeout" not in entry.split("connect_query", 1)[-1] or "connect_query" not in entry:
            problems.append(f"{where}: [databases] {db} has no connect_query setting statement_timeout")
    total_clients = sum(pods * per for _, pods, per in clients)
    detail = " + ".join(f"{n} {pods}×{per}" for n, pods, per in clients)
    if total_clients > max_client:
        problems.append(f"{where}: clients at the ceilings {detail} = {total_clients} > "
                        f"max_client_conn {max_client} (one pgBouncer instance must hold them all)")
    servers = instances * max_db
    available = pg_max - pg_reserved
    if servers > available:
        problems.append(f"{where}: servers {instances} pgBouncer × max_db_connections {max_db} = {servers} > "
                        f"PostgreSQL max_connections {pg_max} − reserved {pg_reserved} = {available}")
    if not problems:
        print(f"     budget {where}: clients {detail} = {total_clients} ≤ max_client_conn {max_client}; "
              f"servers {instances} × {max_db} = {servers} ≤ {pg_max} − {pg_reserved} = {available} "
              f"(DB_POOL_SIZE {pool_size})", flush=True)
    return problems


# --------------------------------------------------------------------------------------------
# Kubernetes


class Rendered:
    """One `kubectl kustomize` output, indexed by kind and name."""

    def __init__(self, docs: list[dict]):
        self.docs = docs
        self.by_kind: dict[str, dict[str, dict]] = {}
        for doc in docs:
            self.by_kind.setdefault(doc["kind"], {})[doc["metadata"]["name"]] = doc

    def kind(self, kind: str) -> dict[str, dict]:
        return self.by_kind.get(kind, {})

    def workloads(self) -> list[dict]:
        return [d for d in self.docs if pod_spec(d) is not None]

    def configmap(self, prefix: str) -> dict | None:
        """A ConfigMap by name, or by generated name (name-<hash>)."""
        cms = self.kind("ConfigMap")
        if prefix in cms:
            return cms[prefix]
        found = [cm for name, cm in cms.items() if re.fullmatch(re.escape(prefix) + r"-[a-z0-9]{10}", name)]
        return found[0] if len(found) == 1 else None


def validate_schemas(docs: list[dict], versions: list[str], schemas: Path) -> None:
    import jsonschema
    import kubernetes_validate

    versions = [kubernetes_validate.latest_version() if v == "latest" else v for v in versions]
    errors, kinds = [], {}
    crd_validators = {}
    for kind in CRD_KINDS:
        schema = json.loads((schemas / f"{kind}.schema.json").read_text())
        jsonschema.Draft202012Validator.check_schema(schema)
        crd_validators[kind] = jsonschema.Draft202012Validator(schema)
    for doc in docs:
        kind, name = doc.get("kind"), doc.get("metadata", {}).get("name")
        kinds[kind] = kinds.get(kind, 0) + 1
        if kind in crd_validators:
            for e in crd_validators[kind].iter_errors(doc):
                path = "/".join(str(p) for p in e.absolute_path)
                errors.append(f"{kind}/{name}: {path}: {e.message}")
            continue
        for version in versions:
            try:
                kubernetes_validate.validate(doc, version, strict=True)
            except Exception as e:  # ValidationError, SchemaNotFoundError, VersionNotSupportedError, ...
                msg = getattr(e, "message", None) or str(e)
                path = "/".join(str(p) for p in getattr(e, "path", []) or [])
                errors.append(f"{kind}/{name} (Kubernetes {version}): {path}: {type(e).__name__}: {msg}")
    summary = ", ".join(f"{n} {k}" for k, n in sorted(kinds.items()))
    report_problems("k8s-schemas", errors,
                    f"Kubernetes {' and '.join(versions)} strict, CRDs strict against "
                    f"deploy/k8s/schemas ({summary})")


def secret_references(r: Rendered) -> list[tuple[str, str, str | None]]:
    """(who, Secret name, key or None for "every key") for every Secret reference."""
    refs = []
    for w in r.workloads():
        who = f"{w['kind']}/{w['metadata']['name']}"
        spec = pod_spec(w)
        for c in spec.get("containers", []) + spec.get("initContainers", []):
            for src in c.get("envFrom", []):
                if "secretRef" in src:
                    refs.append((who, src["secretRef"]["name"], None))
            for env in c.get("env", []):
                ref = env.get("valueFrom", {}).get("secretKeyRef")
                if ref:
                    refs.append((who, ref["name"], ref["key"]))
        for vol in spec.get("volumes", []):
            sources = [vol] if "secret" in vol else [s for s in vol.get("projected", {}).get("sources", [])]
            for s in sources:
                sec = s.get("secret")
                if not sec:
                    continue
                name = sec.get("secretName") or sec.get("name")
                items = sec.get("items")
                if items:
                    refs += [(who, name, i["key"]) for i in items]
                else:
                    refs.append((who, name, None))
    for auth in r.kind("TriggerAuthentication").values():
        for s in auth["spec"].get("secretTargetRef", []):
            refs.append((f"TriggerAuthentication/{auth['metadata']['name']}", s["name"], s["key"]))
    for ing in r.kind("Ingress").values():
        for tls in ing["spec"].get("tls", []) or []:
            refs += [(f"Ingress/{ing['metadata']['name']}", tls["secretName"], k) for k in ("tls.crt", "tls.key")]
    return refs


def secret_data(secret: dict) -> dict[str, str]:
    data = {k: base64.b64decode(v).decode() for k, v in (secret.get("data") or {}).items()}
    data.update(secret.get("stringData") or {})
    return data


def check_secrets(r: Rendered, profile: str, text: str) -> None:
    problems = []
    secrets = r.kind("Secret")
    refs = secret_references(r)
    if profile in ("base", "production"):
        # Following the docs must never overwrite real Secrets: none here, no placeholder either.
        for name in secrets:
            problems.append(f"Secret {name} is rendered; {profile} must only reference Secrets by name")
        if "CHANGE-ME" in text:
            problems.append("a CHANGE-ME placeholder is in the render")
        for who, name, key in refs:
            if name not in SECRETS:
                problems.append(f"{who}: Secret {name} is not one of the documented {sorted(SECRETS)}")
            elif key is not None and key not in SECRETS[name]:
                problems.append(f"{who}: Secret {name} has no documented key {key}")
        detail = (f"no Secret rendered, no CHANGE-ME; {len({n for _, n, _ in refs})} Secrets referenced "
                  f"by name, all documented ({', '.join(sorted({n for _, n, _ in refs}))})")
    else:
        for who, name, key in refs:
            if name not in secrets:
                problems.append(f"{who}: Secret {name} missing")
            elif key is not None and key not in secret_data(secrets[name]):
                problems.append(f"{who}: Secret {name} has no key {key}")
        for name, secret in secrets.items():
            want = SECRETS.get(name)
            if want is None:
                problems.append(f"Secret {name} is not one of the documented {sorted(SECRETS)}")
            elif set(secret_data(secret)) != want:
                problems.append(f"Secret {name} keys {sorted(secret_data(secret))} != {sorted(want)}")
        # The example wiring agrees with itself: services through pgBouncer, migrate direct,
        # pgBouncer's userlist holds the services' user and password.
        pgb_svc = r.kind("Service").get("pgbouncer")
        app = secret_data(secrets.get("foxflow-secrets", {})).get("DATABASE_URL")
        direct = secret_data(secrets.get("foxflow-postgres-direct", {})).get("DATABASE_URL")
        userlist = secret_data(secrets.get("foxflow-pgbouncer", {})).get("userlist.txt", "")
        if app and pgb_svc:
            u = urlsplit(app)
            port = pgb_svc["spec"]["ports"][0]["port"]
            if (u.hostname, u.port) != ("pgbouncer", port):
                problems.append(f"foxflow-secrets DATABASE_URL goes to {u.hostname}:{u.port}, want pgbouncer:{port}")
            if f'"{u.username}" "{u.password}"' not in userlist:
                problems.append(f"foxflow-pgbouncer userlist.txt has no \"{u.username}\" with the DATABASE_URL password")
        if direct and urlsplit(direct).hostname == "pgbouncer":
            problems.append("foxflow-postgres-direct DATABASE_URL goes through pgbouncer")
        detail = ("every referenced Secret and key exists; example DATABASE_URL via pgbouncer, "
                  "migrate direct, userlist agrees")
    report_problems("k8s-secrets", problems, detail)


def check_references(r: Rendered, definitions_path: str) -> dict[str, tuple[str, dict]]:
    """env names, envFrom, Services, HPA and KEDA targets, queues. Returns the autoscalers."""
    problems = []
    configmaps = r.kind("ConfigMap")
    config = configmaps.get("foxflow-config")
    if config is None:
        problems.append("ConfigMap foxflow-config missing")
    for key in (config or {}).get("data", {}):
        if key not in KNOWN_ENV:
            problems.append(f"ConfigMap foxflow-config: unknown variable {key}")
        if key in SECRET_ENV:
            problems.append(f"ConfigMap foxflow-config: {key} is a secret")
    deployments = r.kind("Deployment")
    for w in r.workloads():
        ref = f"{w['kind']}/{w['metadata']['name']}"
        for c in pod_spec(w).get("containers", []):
            if not is_foxflow_image(c.get("image", "")):
                continue
            for src in c.get("envFrom", []):
                if "configMapRef" in src and src["configMapRef"]["name"] not in configmaps:
                    problems.append(f"{ref}: envFrom ConfigMap {src['configMapRef']['name']} missing")
            for env in c.get("env", []):
                if env["name"] not in KNOWN_ENV:
                    problems.append(f"{ref}: unknown variable {env['name']}")
            command = c.get("command", []) + c.get("args", [])
            if not command or command[0] not in BINARIES:
                problems.append(f"{ref}: runs {command}, not one of {sorted(BINARIES)}")
        for vol in pod_spec(w).get("volumes", []):
            sources = [vol] if "configMap" in vol else vol.get("projected", {}).get("sources", [])
            for s in sources:
                cm = s.get("configMap")
                if cm and cm["name"] not in configmaps:
                    problems.append(f"{ref}: volume ConfigMap {cm['name']} missing")
    for svc in r.kind("Service").values():
        selector = svc["spec"].get("selector", {})
        matched = [d for d in deployments.values() if selector.items() <= pod_labels(d).items()]
        if not matched:
            problems.append(f"Service/{svc['metadata']['name']}: selector {selector} matches no Deployment")
        for port in svc["spec"].get("ports", []):
            target = port.get("targetPort", port["port"])
            for d in matched:
                names = {p.get("name"): p["containerPort"] for c in pod_spec(d)["containers"]
                         for p in c.get("ports", [])}
                if target not in names and target not in names.values():
                    problems.append(f"Service/{svc['metadata']['name']}: targetPort {target} not a port "
                                    f"of Deployment {d['metadata']['name']}")
    scaled: dict[str, tuple[str, dict]] = {}
    for hpa in r.kind("HorizontalPodAutoscaler").values():
        scaled[hpa["spec"]["scaleTargetRef"]["name"]] = (f"HPA/{hpa['metadata']['name']}", hpa)
    definitions = json.loads(Path(definitions_path).read_text())
    queue_names = {q["name"] for q in definitions.get("queues", [])}
    auths = r.kind("TriggerAuthentication")
    for so in r.kind("ScaledObject").values():
        ref = f"ScaledObject/{so['metadata']['name']}"
        target = so["spec"]["scaleTargetRef"]["name"]
        if target in scaled:
            problems.append(f"{ref}: {target} is also scaled by {scaled[target][0]}")
        scaled[target] = (ref, so)
        for t in so["spec"]["triggers"]:
            if t["metadata"]["queueName"] not in queue_names:
                problems.append(f"{ref}: queue {t['metadata']['queueName']} not in definitions.json")
            if t["authenticationRef"]["name"] not in auths:
                problems.append(f"{ref}: TriggerAuthentication {t['authenticationRef']['name']} missing")
    for target, (ref, _) in scaled.items():
        if target not in deployments:
            problems.append(f"{ref}: Deployment {target} missing")
    if "rabbitmq-definitions" not in configmaps:
        problems.append("ConfigMap rabbitmq-definitions missing")
    elif json.loads(configmaps["rabbitmq-definitions"]["data"]["definitions.json"]) != definitions:
        problems.append("ConfigMap rabbitmq-definitions differs from definitions.json")
    report_problems("k8s-references", problems,
                    "env names, envFrom, volumes, Service selectors and ports, HPA and KEDA targets, "
                    "queues, rabbitmq-definitions resolve")
    return scaled


def check_contract(r: Rendered, scaled: dict) -> None:
    """The process contract: listen address, probes, grace, resources, autoscaling, Job, CronJob."""
    problems = []
    deployments = r.kind("Deployment")
    for name, want in SERVICES.items():
        d = deployments.get(name)
        if d is None:
            problems.append(f"Deployment {name} missing")
            continue
        spec = d["spec"]["template"]["spec"]
        c = spec["containers"][0]
        env = {e["name"]: e.get("value") for e in c.get("env", [])}
        if env.get(want["var"]) != f"0.0.0.0:{want['port']}":
            problems.append(f"{name}: {want['var']}={env.get(want['var'])}, want 0.0.0.0:{want['port']}")
        ports = {p.get("name"): p["containerPort"] for p in c.get("ports", [])}
        for probe, path in (("readinessProbe", "/readyz"), ("livenessProbe", "/healthz")):
            get = c.get(probe, {}).get("httpGet", {})
            port = ports.get(get.get("port"), get.get("port"))
            if get.get("path") != path or port != want["port"]:
                problems.append(f"{name}: {probe} is {get}, want {path} on {want['port']}")
        if spec.get("terminationGracePeriodSeconds") != want["grace"]:
            problems.append(f"{name}: terminationGracePeriodSeconds "
                            f"{spec.get('terminationGracePeriodSeconds')}, want {want['grace']}")
        if "replicas" in d["spec"] and name in scaled:
            problems.append(f"{name}: sets replicas although {scaled[name][0]} owns the count")
        if name not in scaled:
            problems.append(f"{name}: no HPA or ScaledObject")
    for w in r.workloads():
        for c in pod_spec(w)["containers"]:
            limits = c.get("resources", {}).get("limits", {})
            requests = c.get("resources", {}).get("requests", {})
            if "memory" not in limits or "cpu" not in requests:
                problems.append(f"{w['kind']}/{w['metadata']['name']}/{c['name']}: needs a memory limit and a CPU request")
            sc = c.get("securityContext", {})
            if not (sc.get("readOnlyRootFilesystem") and sc.get("allowPrivilegeEscalation") is False):
                problems.append(f"{w['kind']}/{w['metadata']['name']}/{c['name']}: read-only root, no privilege escalation")
    # The always-on duties (outbox relay, webhook delivery, cleanup) live in the API: never < 2.
    api = scaled.get("api-gateway", (None, {}))[1]
    if api.get("kind") != "HorizontalPodAutoscaler" or api["spec"].get("minReplicas", 1) < 2:
        problems.append("api-gateway: needs an HPA with minReplicas >= 2 (it runs the relay, webhooks, cleanup)")
    cron = r.kind("CronJob").get("foxflow-cleanup", {}).get("spec", {})
    if (cron.get("schedule"), cron.get("timeZone"), cron.get("concurrencyPolicy")) != (
            "0 3 * * 0", "Europe/Paris", "Forbid"):
        problems.append(f"CronJob foxflow-cleanup: {cron.get('schedule')!r} "
                        f"{cron.get('timeZone')!r} {cron.get('concurrencyPolicy')!r}")
    job = r.kind("Job").get("foxflow-migrate")
    if job is None or job["spec"]["template"]["spec"]["containers"][0].get("args") != ["foxctl", "migrate"]:
        problems.append("Job foxflow-migrate must run foxctl migrate")
    report_problems("k8s-contract", problems,
                    "addresses, probes, grace periods, resources, security contexts, autoscaling "
                    "(API min 2), Job, CronJob")


def check_availability(r: Rendered) -> None:
    """Every Deployment: a PodDisruptionBudget and topology spread constraints that select it."""
    problems = []
    pdbs = list(r.kind("PodDisruptionBudget").values())
    for name, d in r.kind("Deployment").items():
        labels = pod_labels(d)
        mine = [p for p in pdbs if selector_matches(p["spec"].get("selector"), labels)]
        if len(mine) != 1:
            problems.append(f"Deployment {name}: {len(mine)} PodDisruptionBudgets select it, want 1")
        tsc = d["spec"]["template"]["spec"].get("topologySpreadConstraints", [])
        keys = {t["topologyKey"] for t in tsc}
        if "kubernetes.io/hostname" not in keys:
            problems.append(f"Deployment {name}: no topologySpreadConstraint over kubernetes.io/hostname")
        for t in tsc:
            if not selector_matches(t.get("labelSelector"), labels):
                problems.append(f"Deployment {name}: spread constraint on {t['topologyKey']} does not select its pods")
    report_problems("k8s-availability", problems,
                    f"{len(r.kind('Deployment'))} Deployments, each with one PDB and hostname/zone spread selecting its pods")


class Policies:
    """Enough of NetworkPolicy semantics to ask "may A talk to B on port P" within one namespace."""

    def __init__(self, r: Rendered):
        self.policies = list(r.kind("NetworkPolicy").values())

    def _applying(self, labels: dict, direction: str) -> list[dict]:
        return [p for p in self.policies
                if selector_matches(p["spec"]["podSelector"], labels)
                and direction in p["spec"].get("policyTypes", ["Ingress"])]

    @staticmethod
    def _port_ok(rule: dict, port: int, proto: str, names: dict) -> bool:
        ports = rule.get("ports")
        if not ports:
            return True
        for p in ports:
            if p.get("protocol", "TCP") != proto:
                continue
            want = p.get("port")
            if want is None or want == port or names.get(want) == port:
                return True
        return False

    def ingress_peers(self, labels: dict, port: int, names: dict, proto: str = "TCP") -> list[dict]:
        """The `from` peers allowed to reach pods with `labels` on `port` ([{}] = anyone)."""
        peers = []
        for p in self._applying(labels, "Ingress"):
            for rule in p["spec"].get("ingress", []) or []:
                if self._port_ok(rule, port, proto, names):
                    peers += rule.get("from") or [{}]
        return peers

    def egress_allowed(self, labels: dict, port: int, proto: str = "TCP", dest: dict | None = None) -> bool:
        """May pods with `labels` open `port`; dest = labels of an in-namespace destination pod,
        None for a destination outside the namespace (anywhere)."""
        applying = self._applying(labels, "Egress")
        if not applying:
            return True
        for p in applying:
            for rule in p["spec"].get("egress", []) or []:
                if not self._port_ok(rule, port, proto, {}):
                    continue
                to = rule.get("to")
                if not to:
                    return True
                for peer in to:
                    if dest is not None and "podSelector" in peer and "namespaceSelector" not in peer \
                            and selector_matches(peer["podSelector"], dest):
                        return True
                    if dest is None and "ipBlock" in peer and peer["ipBlock"]["cidr"] in ("0.0.0.0/0",):
                        return True
        return False

    def egress_to_namespace(self, labels: dict, port: int, namespace: str, proto: str = "TCP") -> bool:
        """May pods with `labels` open `port` to pods of namespace `namespace` (named by its
        `kubernetes.io/metadata.name` label)."""
        for p in self._applying(labels, "Egress"):
            for rule in p["spec"].get("egress", []) or []:
                if self._port_ok(rule, port, proto, {}) and any(
                        namespace_of(peer) == namespace for peer in rule.get("to") or []):
                    return True
        return False


def namespace_of(peer: dict) -> str | None:
    ns = peer.get("namespaceSelector", {}).get("matchLabels", {})
    return ns.get("kubernetes.io/metadata.name")


def check_network(r: Rendered) -> None:
    problems = []
    pol = Policies(r)
    if not any(p["spec"]["podSelector"] == {} and set(p["spec"].get("policyTypes", [])) == {"Ingress", "Egress"}
               and not p["spec"].get("ingress") and not p["spec"].get("egress") for p in pol.policies):
        problems.append("no default-deny NetworkPolicy (podSelector {}, Ingress and Egress, no rules)")
    deployments = r.kind("Deployment")
    pgb = deployments.get("pgbouncer")
    pgb_labels = pod_labels(pgb) if pgb else {}
    for w in r.workloads():
        name, labels = w["metadata"]["name"], pod_labels(w)
        spec = pod_spec(w)
        names = {p["name"]: p["containerPort"] for c in spec["containers"] for p in c.get("ports", []) if "name" in p}
        if not pol.egress_allowed(labels, 53, "UDP"):
            problems.append(f"{name}: no DNS egress")
        foxflow = any(is_foxflow_image(c.get("image", "")) for c in spec["containers"])
        db_via_bouncer = any(src.get("secretRef", {}).get("name") == "foxflow-secrets"
                             for c in spec["containers"] for src in c.get("envFrom", []))
        if db_via_bouncer and pgb and not pol.egress_allowed(labels, 6432, dest=pgb_labels):
            problems.append(f"{name}: cannot reach pgbouncer:6432")
        direct = name in ("pgbouncer", "foxflow-migrate")
        if direct and not pol.egress_allowed(labels, 5432):
            problems.append(f"{name}: cannot reach PostgreSQL (5432)")
        if not direct and pol.egress_allowed(labels, 5432):
            problems.append(f"{name}: may reach PostgreSQL directly, around pgBouncer and its budget")
        if name in SERVICES and not pol.egress_allowed(labels, 5672):
            problems.append(f"{name}: cannot reach RabbitMQ (5672)")
        # CLAMD_ADDR (virus scanning of uploads): clamd in namespace clamav.
        if name == "api-gateway" and not pol.egress_to_namespace(labels, 3310, "clamav"):
            problems.append("api-gateway: cannot reach clamd (3310) in namespace clamav")
        # Ingress: only the API from outside, /metrics only from the monitoring namespace.
        for port_name, port in names.items():
            for peer in pol.ingress_peers(labels, port, names):
                ns = namespace_of(peer)
                if peer == {} or "ipBlock" in peer:
                    problems.append(f"{name}:{port} open to anyone")
                elif ns == "ingress-nginx" and name != "api-gateway":
                    problems.append(f"{name}:{port} reachable from the ingress controller")
                elif "namespaceSelector" in peer and ns not in ("ingress-nginx", "monitoring"):
                    problems.append(f"{name}:{port} reachable from namespace {ns or peer['namespaceSelector']}")
        if name in SERVICES:
            port = SERVICES[name]["port"]
            if not any(namespace_of(p) == "monitoring" for p in pol.ingress_peers(labels, port, names)):
                problems.append(f"{name}: /metrics ({port}) not reachable from namespace monitoring")
        if name == "api-gateway" and not any(
                namespace_of(p) == "ingress-nginx" for p in pol.ingress_peers(labels, 8080, names)):
            problems.append("api-gateway: not reachable from the ingress controller")
        if name == "pgbouncer":
            peers = pol.ingress_peers(labels, 6432, names)
            clients = [n for n, d in deployments.items() if n != "pgbouncer"]
            for n in clients:
                if not any("podSelector" in p and selector_matches(p["podSelector"], pod_labels(deployments[n]))
                           for p in peers) and n in SERVICES:
                    problems.append(f"pgbouncer: does not admit {n}")
        if not foxflow and name != "pgbouncer":
            problems.append(f"{name}: unexpected workload")
    report_problems("k8s-network", problems,
                    f"{len(pol.policies)} NetworkPolicies: default deny; API only from ingress-nginx; "
                    "/metrics only from monitoring; DNS everywhere; PostgreSQL only via pgBouncer "
                    "(and migrate); RabbitMQ for the services; clamd for the API")


def check_ingress(r: Rendered, profile: str) -> None:
    problems = []
    ingresses = r.kind("Ingress")
    config = r.kind("ConfigMap").get("foxflow-config", {}).get("data", {})
    max_bytes = int(config.get("MAX_IMPORT_FILE_BYTES", "10485760"))
    if set(ingresses) != {"api-gateway"}:
        problems.append(f"Ingresses {sorted(ingresses)}, want exactly api-gateway")
    for name, ing in ingresses.items():
        ann = ing["metadata"].get("annotations", {})
        body = nginx_size(ann.get("nginx.ingress.kubernetes.io/proxy-body-size", ""))
        floor = max(11 * 1024 ** 2, max_bytes + 512 * 1024)
        if body is None or body < floor:
            problems.append(f"{name}: proxy-body-size {ann.get('nginx.ingress.kubernetes.io/proxy-body-size')!r} "
                            f"< {floor} bytes (MAX_IMPORT_FILE_BYTES {max_bytes} + multipart envelope, 11m at least)")
        for key in ("proxy-read-timeout", "proxy-send-timeout"):
            value = ann.get(f"nginx.ingress.kubernetes.io/{key}", "")
            if not value.isdigit() or int(value) < 60:
                problems.append(f"{name}: {key} {value!r}, want >= 60 s (uploads, the events stream's 15 s keep-alive)")
        if ann.get("nginx.ingress.kubernetes.io/proxy-request-buffering") != "off":
            problems.append(f"{name}: proxy-request-buffering should be off (the API streams uploads)")
        if ing["spec"].get("ingressClassName") != "nginx":
            problems.append(f"{name}: ingressClassName {ing['spec'].get('ingressClassName')!r}, want nginx")
        paths = []
        for rule in ing["spec"].get("rules", []):
            for p in rule.get("http", {}).get("paths", []):
                svc = p["backend"]["service"]
                if svc["name"] != "api-gateway" or svc["port"].get("name", svc["port"].get("number")) not in ("http", 80):
                    problems.append(f"{name}: path {p['path']} goes to {svc}, want api-gateway:http")
                paths.append((p["path"], p["pathType"]))

        def routed(url: str) -> bool:
            for path, kind in paths:
                if kind == "Exact" and url == path:
                    return True
                if kind == "Prefix" and (path == "/" or url == path or url.startswith(path.rstrip("/") + "/")):
                    return True
            return False

        for private in ("/metrics", "/healthz", "/readyz"):
            if routed(private):
                problems.append(f"{name}: {private} is routed to the outside")
        for public in ("/", "/api/v1/imports", "/api/openapi.json", "/docs", "/assets/app.js"):
            if not routed(public):
                problems.append(f"{name}: {public} is not routed")
        if profile == "production" and not ing["spec"].get("tls"):
            problems.append(f"{name}: no TLS in production")
    report_problems("k8s-ingress", problems,
                    "API only (no /metrics, probes), body size fits MAX_IMPORT_FILE_BYTES, "
                    "unbuffered uploads, timeouts" + (", TLS" if profile == "production" else ""))


def check_keda(r: Rendered) -> None:
    problems = []
    config = r.kind("ConfigMap").get("foxflow-config", {}).get("data", {})
    prefetch = config.get("WORKER_PREFETCH")
    if prefetch is None:
        problems.append("ConfigMap foxflow-config does not state WORKER_PREFETCH")
    for name, so in r.kind("ScaledObject").items():
        for t in so["spec"]["triggers"]:
            if t["metadata"]["value"] != prefetch:
                problems.append(f"ScaledObject/{name}: target {t['metadata']['value']} messages per replica, "
                                f"want WORKER_PREFETCH = {prefetch}")
        if so["spec"]["minReplicaCount"] != 0:
            problems.append(f"ScaledObject/{name}: minReplicaCount {so['spec']['minReplicaCount']}, "
                            "want 0 (the always-on duties run in the api-gateway)")
    report_problems("k8s-keda", problems,
                    f"ScaledObject targets = WORKER_PREFETCH ({prefetch}), workers scale from 0")


def check_budget(r: Rendered, scaled: dict) -> None:
    problems = []
    config = r.kind("ConfigMap").get("foxflow-config", {}).get("data", {})
    pool = int(config.get("DB_POOL_SIZE", DEFAULT_DB_POOL_SIZE))
    if "DB_POOL_SIZE" not in config:
        problems.append("ConfigMap foxflow-config does not state DB_POOL_SIZE")
    cm = r.configmap("pgbouncer-config")
    pgb = r.kind("Deployment").get("pgbouncer")
    if cm is None or pgb is None:
        report(False, "k8s-connection-budget", "pgbouncer Deployment or pgbouncer-config ConfigMap missing")
        return
    ini = parse_pgbouncer_ini(cm["data"]["pgbouncer.ini"])
    ann = cm["metadata"].get("annotations", {})
    try:
        pg_max = int(ann["foxflow.io/postgres-max-connections"])
        pg_reserved = int(ann["foxflow.io/postgres-reserved-connections"])
    except (KeyError, ValueError):
        report(False, "k8s-connection-budget", "pgbouncer-config needs annotations "
               "foxflow.io/postgres-max-connections and foxflow.io/postgres-reserved-connections")
        return
    if "pgbouncer" in scaled:
        instances = scaled["pgbouncer"][1]["spec"].get("maxReplicas") or scaled["pgbouncer"][1]["spec"]["maxReplicaCount"]
    else:
        instances = pgb["spec"].get("replicas", 1)
    instances += surge_pods(pgb, instances)
    clients = []
    for w in r.workloads():
        spec = pod_spec(w)
        through_bouncer = any(src.get("secretRef", {}).get("name") == "foxflow-secrets"
                              and not any(e["name"] == "DATABASE_URL" for e in c.get("env", []))
                              for c in spec["containers"] for src in c.get("envFrom", []))
        if not through_bouncer:
            continue
        name = w["metadata"]["name"]
        if config.get("DATABASE_POOLER") != "transaction":
            problems.append(f"{name}: reaches PostgreSQL through pgBouncer (transaction mode) but "
                            "ConfigMap foxflow-config does not set DATABASE_POOLER=transaction")
        if w["kind"] == "Deployment":
            if name not in scaled:
                problems.append(f"{name}: no autoscaler, so no ceiling for the budget")
                continue
            obj = scaled[name][1]
            ceiling = obj["spec"].get("maxReplicas") or obj["spec"].get("maxReplicaCount")
            pods = ceiling + surge_pods(w, ceiling)
        elif w["kind"] == "CronJob":
            if w["spec"].get("concurrencyPolicy") != "Forbid":
                problems.append(f"CronJob {name}: concurrencyPolicy must be Forbid for a bounded budget")
            pods = w["spec"]["jobTemplate"]["spec"].get("parallelism", 1)
        else:
            pods = w["spec"].get("parallelism", 1)
        clients.append((name, pods, pool))
    problems += pgbouncer_budget(ini, instances, pg_max, pg_reserved, clients, pool, "kubernetes")
    report_problems("k8s-connection-budget", problems,
                    "autoscaler ceilings × DB_POOL_SIZE fit max_client_conn; pgBouncer pools fit "
                    "PostgreSQL max_connections − reserved")


def up_alert_jobs(groups: list[dict]) -> dict[str, set[str]]:
    """alert name -> the job names its `up{job…}` selector matches (literal alternatives)."""
    found = {}
    for g in groups:
        for rule in g["rules"]:
            expr = str(rule.get("expr", ""))
            for m in re.finditer(r"\bup\{([^}]*)\}", expr):
                jm = re.search(r'job\s*(=~|=)\s*"([^"]*)"', m.group(1))
                if jm and "alert" in rule:
                    found.setdefault(rule["alert"], set()).update(jm.group(2).split("|"))
    return found


def check_monitoring_objects(r: Rendered, rules_path: str, dashboard_path: str) -> None:
    import yaml

    problems = []
    rules = yaml.safe_load(Path(rules_path).read_text())
    prs = r.kind("PrometheusRule")
    if len(prs) != 1:
        problems.append(f"{len(prs)} PrometheusRules rendered, want 1")
    for name, pr in prs.items():
        if pr["spec"]["groups"] != rules["groups"]:
            problems.append(f"PrometheusRule/{name}: groups differ from {rules_path}")
    # The job names PodMonitor foxflow gives to the three services, vs those the `up` alerts use.
    jobs = set()
    monitors = r.kind("PodMonitor")
    if not monitors:
        problems.append("no PodMonitor rendered")
    for pm in monitors.values():
        ports = {e.get("port") for e in pm["spec"]["podMetricsEndpoints"]}
        job_label = pm["spec"].get("jobLabel")
        if not job_label:
            problems.append(f"PodMonitor/{pm['metadata']['name']}: no jobLabel: job would be "
                            f"{pm['metadata'].get('namespace')}/{pm['metadata']['name']}, set it explicitly")
        for name, d in r.kind("Deployment").items():
            labels = pod_labels(d)
            if not selector_matches(pm["spec"]["selector"], labels):
                continue
            names = {p.get("name") for c in pod_spec(d)["containers"] for p in c.get("ports", [])}
            if not names & ports:
                problems.append(f"PodMonitor selects {name}, which has none of the ports {sorted(ports)}")
            jobs.add(labels.get(job_label, f"{pm['metadata'].get('namespace')}/{pm['metadata']['name']}"))
    if jobs != set(SERVICES):
        problems.append(f"PodMonitor scrapes jobs {sorted(jobs)}, want {sorted(SERVICES)}")
    alerts = up_alert_jobs(rules["groups"])
    if not alerts:
        problems.append("no alert on `up{job=…}`")
    for alert, names in alerts.items():
        if not names <= jobs:
            problems.append(f"alert {alert} matches up{{job}} {sorted(names)}, but the PodMonitor produces {sorted(jobs)}")
    if not any(names == jobs for names in alerts.values()):
        problems.append(f"no `up` alert covers every scraped job {sorted(jobs)}")
    dashboards = [cm for cm in r.kind("ConfigMap").values()
                  if cm["metadata"].get("labels", {}).get("grafana_dashboard") == "1"]
    if len(dashboards) != 1:
        problems.append(f"{len(dashboards)} Grafana dashboard ConfigMaps, want 1")
    else:
        data = dashboards[0]["data"]
        if [json.loads(v) for v in data.values()] != [json.loads(Path(dashboard_path).read_text())]:
            problems.append(f"dashboard ConfigMap differs from {dashboard_path}")
    report_problems("k8s-monitoring", problems,
                    f"PodMonitor jobs {sorted(jobs)} = the `up` alert's; PrometheusRule = "
                    f"{rules_path}; dashboard ConfigMap = {dashboard_path}")


def check_images(r: Rendered, profile: str) -> None:
    problems = []
    for w in r.workloads():
        for c in pod_spec(w)["containers"]:
            image = c.get("image", "")
            name, _, digest = image.partition("@")
            tag = name.rsplit(":", 1)[1] if ":" in name.rsplit("/", 1)[-1] else ""
            if digest:
                if not re.fullmatch(r"sha256:[0-9a-f]{64}", digest):
                    problems.append(f"{w['metadata']['name']}: bad digest in {image}")
            elif profile == "base" and image == "foxflow":
                pass  # the placeholder every overlay maps to a real image (`images:`)
            elif not tag or tag == "latest":
                problems.append(f"{w['metadata']['name']}: {image} is not pinned (no tag, or latest)")
            if profile == "production" and is_foxflow_image(image):
                if "/" not in name:
                    problems.append(f"{w['metadata']['name']}: {image} has no registry")
                if tag == "dev":
                    problems.append(f"{w['metadata']['name']}: {image} is the dev tag")
    images = sorted({c["image"] for w in r.workloads() for c in pod_spec(w)["containers"]})
    report_problems("k8s-images", problems, "pinned by tag or digest: " + ", ".join(images))


def cmd_k8s(args) -> None:
    text = Path(args.rendered).read_text()
    docs = load_yaml_documents(args.rendered)
    if not docs:
        report(False, "k8s-render", "kustomize rendered nothing")
        return
    r = Rendered(docs)
    print(f"---- profile {args.profile}", flush=True)
    validate_schemas(docs, args.kube_version, Path(args.schemas))
    check_secrets(r, args.profile, text)
    scaled = check_references(r, args.definitions)
    check_contract(r, scaled)
    check_images(r, args.profile)
    check_availability(r)
    check_network(r)
    check_ingress(r, args.profile)
    check_keda(r)
    check_budget(r, scaled)
    if args.profile == "production":
        check_monitoring_objects(r, args.rules, args.dashboard)
    elif r.kind("PodMonitor") or r.kind("PrometheusRule"):
        report(False, "k8s-monitoring", "monitoring CRDs belong to the production overlay only")


# --------------------------------------------------------------------------------------------
# Monitoring files


def generate_prometheusrule(rules_path: str) -> str:
    import yaml

    rules = yaml.safe_load(Path(rules_path).read_text())
    doc = {
        "apiVersion": "monitoring.coreos.com/v1",
        "kind": "PrometheusRule",
        "metadata": {"name": "foxflow", "labels": {"app.kubernetes.io/name": "foxflow-monitoring"}},
        "spec": {"groups": rules["groups"]},
    }

    class Literal(str):
        pass

    def literal(dumper, value):
        return dumper.represent_scalar("tag:yaml.org,2002:str", value, style="|" if "\n" in value else None)

    yaml.add_representer(Literal, literal, Dumper=yaml.SafeDumper)

    def mark(v):
        if isinstance(v, dict):
            return {k: mark(x) for k, x in v.items()}
        if isinstance(v, list):
            return [mark(x) for x in v]
        return Literal(v) if isinstance(v, str) and "\n" in v else v

    body = yaml.safe_dump(mark(doc), sort_keys=False, width=1000, allow_unicode=True)
    return (f"# GENERATED from {rules_path} — do not edit; edit the rules file and run\n"
            f"#   python3 deploy/tools/check_deploy.py prometheusrule {rules_path} \\\n"
            f"#       > deploy/monitoring/prometheusrule.yaml\n"
            f"# (scripts/check-deploy.sh fails when this file and the rules file disagree.)\n" + body)


def cmd_prometheusrule(args) -> None:
    sys.stdout.write(generate_prometheusrule(args.rules))


def metric_names(text: str) -> set[str]:
    names = set()
    for m in re.findall(r"\b(foxflow_[a-z0-9_]+|pg_[a-z0-9_]+)\b", text):
        names.add(re.sub(r"_(bucket|count|sum)$", "", m) if not m.endswith("_total") else m)
    return names


def dashboard_exprs(dashboard: dict) -> list[tuple[str, str]]:
    out = []

    def walk(panels):
        for p in panels:
            for t in p.get("targets", []):
                out.append((p.get("title", "?"), t.get("expr", "")))
            walk(p.get("panels", []))

    walk(dashboard.get("panels", []))
    return out


def cmd_monitoring(args) -> None:
    import yaml

    # 1. One source: the PrometheusRule is the rules file, wrapped.
    generated = generate_prometheusrule(args.rules)
    current = Path(args.prometheusrule).read_text()
    report(generated == current, "monitoring-prometheusrule-generated",
           f"{args.prometheusrule} is generated from {args.rules}" if generated == current else
           "out of date, regenerate it:\n" + "\n".join(difflib.unified_diff(
               current.splitlines(), generated.splitlines(), args.prometheusrule, "generated", lineterm="")))

    # 2. The dashboard: valid JSON, a Prometheus datasource variable, every panel queried, no
    #    overlap; its expressions become recording rules for `promtool check rules`.
    problems = []
    try:
        dash = json.loads(Path(args.dashboard).read_text())
    except (OSError, ValueError) as e:
        report(False, "monitoring-dashboard", f"{args.dashboard}: {e}")
        return
    if not dash.get("uid") or not dash.get("title"):
        problems.append("uid and title required")
    variables = {v["name"]: v for v in dash.get("templating", {}).get("list", [])}
    if variables.get("datasource", {}).get("query") != "prometheus":
        problems.append("needs a `datasource` variable of type prometheus")
    ids, cells = set(), {}
    for p in dash.get("panels", []):
        if p["id"] in ids:
            problems.append(f"panel id {p['id']} twice")
        ids.add(p["id"])
        g = p["gridPos"]
        if g["x"] + g["w"] > 24:
            problems.append(f"panel {p['title']!r} wider than the grid")
        for x in range(g["x"], g["x"] + g["w"]):
            for y in range(g["y"], g["y"] + g["h"]):
                if (x, y) in cells:
                    problems.append(f"panel {p['title']!r} overlaps {cells[(x, y)]!r}")
                    break
                cells[(x, y)] = p["title"]
            else:
                continue
            break
        if p["type"] != "row":
            if not p.get("targets") or not all(t.get("expr") for t in p["targets"]):
                problems.append(f"panel {p['title']!r} has no query")
            if p.get("datasource", {}).get("uid") != "${datasource}":
                problems.append(f"panel {p['title']!r} does not use the datasource variable")
    exprs = dashboard_exprs(dash)
    record_rules = [{"record": f"foxflow_dashboard:panel_{i}",
                     "expr": e.replace("$__rate_interval", "5m").replace("$__interval", "1m")}
                    for i, (_, e) in enumerate(exprs)]
    Path(args.promql_out).write_text(yaml.safe_dump({"groups": [{"name": "dashboard", "rules": record_rules}]}))
    report_problems("monitoring-dashboard", problems,
                    f"{len(dash.get('panels', []))} panels, {len(exprs)} queries (PromQL checked by promtool next)")

    # 3. Every foxflow_* family the alerts and the dashboard use is documented, and the families
    #    the brief asks for are all watched.
    rules_text = Path(args.rules).read_text()
    used = metric_names(rules_text) | metric_names(" ".join(e for _, e in exprs))
    doc = Path(args.metrics_doc).read_text()
    documented = metric_names(doc)
    problems = [f"{m} is used but not documented in {args.metrics_doc}"
                for m in sorted(used) if m.startswith("foxflow_") and m not in documented]
    problems += [f"{m} is watched by neither the alerts nor the dashboard"
                 for m in sorted(REQUIRED_METRICS - used)]
    for m in ("pg_stat_database_blks_hit", "pg_stat_database_numbackends", "pg_settings_max_connections"):
        if m not in used:
            problems.append(f"postgres_exporter's {m} is not used")
    report_problems("monitoring-metric-names", problems,
                    f"{len([m for m in used if m.startswith('foxflow_')])} foxflow_ families used, all in "
                    f"{args.metrics_doc}; every required family watched")


# --------------------------------------------------------------------------------------------
# docker-compose


def published(svc: dict) -> set[tuple[str, int, int]]:
    """(host address, host port, container port) for each single-port mapping."""
    out = set()
    for port in svc.get("ports", []):
        m = re.fullmatch(r"(?:(\d+\.\d+\.\d+\.\d+):)?(\d+):(\d+)(?:/tcp)?", str(port))
        if m:
            out.add((m.group(1) or "0.0.0.0", int(m.group(2)), int(m.group(3))))
    return out


def check_services_script(path: Path, services: dict) -> list[str]:
    """scripts/check-services.sh: its defaults are docs/spec.md's, and its advice works as written."""
    problems = []
    text = path.read_text()
    defaults = dict(re.findall(r'(\w+)="\$\{\w+:-([^}]*)\}"', text))
    if defaults.get("db_url") != DEFAULT_DATABASE_URL:
        problems.append(f"{path}: default DATABASE_URL {defaults.get('db_url')!r} != {DEFAULT_DATABASE_URL}")
    if defaults.get("amqp_url") != DEFAULT_AMQP_URL:
        problems.append(f"{path}: default AMQP_URL {defaults.get('amqp_url')!r} != {DEFAULT_AMQP_URL}")
    advice = re.findall(r"docker compose -f deploy/docker-compose\.yml up -d ([\w -]+?)\s*$", text, re.M)
    if not advice:
        problems.append(f"{path}: no `docker compose … up -d <service>` advice found")
    wanted = {"postgres": urlsplit(DEFAULT_DATABASE_URL), "rabbitmq": urlsplit(DEFAULT_AMQP_URL)}
    for names in advice:
        for name in names.split():
            if name not in services:
                problems.append(f"{path}: advises starting {name}, which compose does not have")
                continue
            url = wanted.get(name)
            if url and (url.hostname, url.port, url.port) not in published(services[name]):
                problems.append(f"{path}: advises `up -d {name}`, but compose does not publish "
                                f"{url.hostname}:{url.port} for it (the default URL would not reach it)")
    # The default DATABASE_URL's credentials: user postgres, no password -> trust.
    pg_env = services.get("postgres", {}).get("environment", {}) or {}
    url = urlsplit(DEFAULT_DATABASE_URL)
    if pg_env.get("POSTGRES_USER", "postgres") != url.username:
        problems.append(f"compose postgres: POSTGRES_USER {pg_env.get('POSTGRES_USER')} != {url.username} of the default DATABASE_URL")
    if url.password is None and pg_env.get("POSTGRES_HOST_AUTH_METHOD") != "trust":
        problems.append("compose postgres: the default DATABASE_URL has no password, so POSTGRES_HOST_AUTH_METHOD must be trust")
    if pg_env.get("POSTGRES_DB") != url.path.lstrip("/"):
        problems.append(f"compose postgres: POSTGRES_DB {pg_env.get('POSTGRES_DB')} != {url.path.lstrip('/')}")
    return problems


def cmd_compose(args) -> None:
    import yaml

    path = Path(args.compose)
    try:
        doc = yaml.safe_load(path.read_text())  # resolves anchors and << merge keys
    except (OSError, yaml.YAMLError) as e:
        report(False, "compose-parse", f"{path}: {e}")
        return
    report(isinstance(doc, dict), "compose-parse", f"{path} (anchors and merge keys resolved)")

    base = path.parent
    problems = []
    allowed_top = {"name", "services", "volumes", "networks", "configs", "secrets"}
    for key in doc:
        if key not in allowed_top and not key.startswith("x-"):
            problems.append(f"unknown top-level key {key}")
    services = doc.get("services", {})
    volumes = doc.get("volumes") or {}
    want_services = {"postgres", "pgbouncer", "rabbitmq", "migrate", "api-gateway", "import-worker", "ai-worker"}
    # Started only with their compose profile (clamav: the virus scanning of uploads).
    optional_services = {"clamav"}
    if not want_services <= set(services) <= want_services | optional_services:
        problems.append(f"services {sorted(services)} != {sorted(want_services)} (+ optional {sorted(optional_services)})")
    conditions = {"service_started", "service_healthy", "service_completed_successfully"}
    for name, svc in services.items():
        if "image" not in svc and "build" not in svc:
            problems.append(f"{name}: neither image nor build")
        build = svc.get("build")
        if build:
            context = base / build["context"]
            if not (context / build.get("dockerfile", "Dockerfile")).is_file():
                problems.append(f"{name}: no {build.get('dockerfile')} in build context {context}")
        for dep, how in (svc.get("depends_on") or {}).items():
            if dep not in services:
                problems.append(f"{name}: depends on unknown service {dep}")
            elif how.get("condition") not in conditions:
                problems.append(f"{name}: depends_on {dep} with condition {how.get('condition')}")
            elif how["condition"] == "service_healthy" and "healthcheck" not in services[dep]:
                problems.append(f"{name}: waits for {dep} healthy, but {dep} has no healthcheck")
        for vol in svc.get("volumes", []):
            source = vol.split(":")[0]
            if source.startswith((".", "/")):
                if not (base / source).exists():
                    problems.append(f"{name}: bind mount {source} does not exist")
            elif source not in volumes:
                problems.append(f"{name}: volume {source} not declared")
        for port in svc.get("ports", []):
            if not re.fullmatch(r"(\d+\.\d+\.\d+\.\d+:)?\d+(-\d+)?:\d+(/tcp|/udp)?", str(port)):
                problems.append(f"{name}: port {port!r} is not HOST:CONTAINER")
        if "memory" not in svc.get("deploy", {}).get("resources", {}).get("limits", {}):
            problems.append(f"{name}: no memory limit")
        env = svc.get("environment", {})
        if not isinstance(env, dict):
            problems.append(f"{name}: environment should be a mapping")
            env = {}
        command = svc.get("command") or []
        if name in SERVICES or name == "migrate":
            for key, value in env.items():
                if key not in KNOWN_ENV:
                    problems.append(f"{name}: unknown variable {key}")
                if not isinstance(value, str):
                    problems.append(f"{name}: {key} should be a string, is {value!r}")
            if not command or command[0] not in BINARIES:
                problems.append(f"{name}: command {command} is not one of the binaries")
            db = urlsplit(env.get("DATABASE_URL", ""))
            want = ("postgres", 5432) if name == "migrate" else ("pgbouncer", 6432)
            if (db.hostname, db.port) != want:
                problems.append(f"{name}: DATABASE_URL goes to {db.hostname}:{db.port}, want {want[0]}:{want[1]}")
            if name != "migrate" and env.get("DATABASE_POOLER") != "transaction":
                problems.append(f"{name}: goes through pgBouncer (transaction mode), want DATABASE_POOLER=transaction")
        if name in SERVICES:
            want = SERVICES[name]
            if env.get(want["var"]) != f"0.0.0.0:{want['port']}":
                problems.append(f"{name}: {want['var']} should be 0.0.0.0:{want['port']}")
            test = " ".join(svc.get("healthcheck", {}).get("test", []))
            if f":{want['port']}/" not in test:
                problems.append(f"{name}: healthcheck does not probe port {want['port']}")
            for dep in ("migrate", "pgbouncer"):
                if dep not in (svc.get("depends_on") or {}):
                    problems.append(f"{name}: does not wait for {dep}")
    for name in ("postgres", "rabbitmq", "pgbouncer"):
        for host, _, _ in published(services.get(name, {})):
            if host != "127.0.0.1":
                problems.append(f"{name}: published on {host}, want 127.0.0.1 only")
    replicas = {n: services.get(n, {}).get("deploy", {}).get("replicas")
                for n in ("api-gateway", "import-worker", "ai-worker")}
    if replicas != {"api-gateway": 3, "import-worker": 5, "ai-worker": 2}:
        problems.append(f"replicas {replicas}")
    report_problems("compose-structure", problems,
                    "services, depends_on, healthchecks, mounts, ports, limits, env names, replicas, "
                    "DATABASE_URL via pgbouncer with DATABASE_POOLER=transaction (migrate direct)")

    if args.check_services:
        problems = check_services_script(Path(args.check_services), services)
        report_problems("compose-local-servers", problems,
                        f"{args.check_services}'s advice works as written: postgres published on "
                        "127.0.0.1:5432 (user postgres, trust, db foxflow), rabbitmq on 127.0.0.1:5672")

    # The compose stack's connection budget.
    problems = []
    pgb = services.get("pgbouncer", {})
    ini_mount = [v.split(":")[0] for v in pgb.get("volumes", []) if v.split(":")[1].endswith("pgbouncer.ini")]
    if not ini_mount:
        report(False, "compose-connection-budget", "pgbouncer has no pgbouncer.ini mounted")
        return
    ini = parse_pgbouncer_ini((base / ini_mount[0]).read_text())
    pg_cmd = " ".join(services.get("postgres", {}).get("command", []) or [])
    m = re.search(r"max_connections=(\d+)", pg_cmd)
    pg_max = int(m.group(1)) if m else 100
    reserved = (pgb.get("labels") or {}).get("foxflow.io/postgres-reserved-connections")
    if reserved is None:
        problems.append("pgbouncer: label foxflow.io/postgres-reserved-connections missing")
        reserved = 0
    shared = doc.get("x-fox-env", {})
    pool = int(shared.get("DB_POOL_SIZE", DEFAULT_DB_POOL_SIZE))
    clients = [(n, r, pool) for n, r in replicas.items() if r]
    problems += pgbouncer_budget(ini, pgb.get("deploy", {}).get("replicas", 1), pg_max, int(reserved),
                                 clients, pool, "compose")
    report_problems("compose-connection-budget", problems,
                    f"replicas × DB_POOL_SIZE fit {ini_mount[0]}; its pools fit PostgreSQL")


# --------------------------------------------------------------------------------------------
# Dockerfile (static: there is no engine to build it here)


def cmd_dockerfile(args) -> None:
    text = Path(args.dockerfile).read_text()
    problems = []
    froms = re.findall(r"^FROM\s+(\S+)", text, re.M)
    if froms != ["rust:1.95-bookworm", "debian:bookworm-slim"]:
        problems.append(f"stages {froms}")
    if "cargo build --release --locked --bins" not in text:
        problems.append("missing cargo build --release --locked --bins")
    if text.count("--mount=type=cache") < 3:
        problems.append("registry, git and target should be BuildKit cache mounts")
    # The import-worker's file reader is a helper binary, not a command of its own.
    for b in sorted(BINARIES | {"foxflow-sheet-reader"}):
        if f"target/release/{b}" not in text:
            problems.append(f"binary {b} not copied")
    user = re.findall(r"^USER\s+(\S+)", text, re.M)
    if not user or user[-1].split(":")[0] in ("root", "0"):
        problems.append("final USER must be non-root")
    if 'ENTRYPOINT ["/usr/bin/tini", "--"]' not in text:
        problems.append("tini must be the entrypoint")
    report(not problems, "dockerfile-static",
           "two stages, locked release build with cache mounts, 4 binaries and the file reader, tini, non-root"
           if not problems else "; ".join(problems))




def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("k8s")
    p.add_argument("rendered")
    p.add_argument("--profile", choices=["base", "dev", "production"], required=True)
    p.add_argument("--kube-version", action="append", required=True,
                   help="Kubernetes version(s) to validate against; 'latest' = newest shipped")
    p.add_argument("--schemas", required=True)
    p.add_argument("--definitions", required=True)
    p.add_argument("--rules", default="deploy/monitoring/rules/foxflow.rules.yml")
    p.add_argument("--dashboard", default="deploy/monitoring/grafana/foxflow.json")
    p.set_defaults(run=cmd_k8s)
    p = sub.add_parser("compose")
    p.add_argument("compose")
    p.add_argument("--check-services", help="scripts/check-services.sh, whose advice must work")
    p.set_defaults(run=cmd_compose)
    p = sub.add_parser("monitoring")
    p.add_argument("--rules", required=True)
    p.add_argument("--prometheusrule", required=True)
    p.add_argument("--dashboard", required=True)
    p.add_argument("--metrics-doc", required=True)
    p.add_argument("--promql-out", required=True, help="where to write the dashboard's queries as rules")
    p.set_defaults(run=cmd_monitoring)
    p = sub.add_parser("prometheusrule")
    p.add_argument("rules")
    p.set_defaults(run=cmd_prometheusrule)
    p = sub.add_parser("definitions")
    p.add_argument("definitions")
    p.add_argument("--dev-users")
    p.set_defaults(run=cmd_definitions)
    p = sub.add_parser("topology")
    p.add_argument("exported")
    p.add_argument("definitions")
    p.set_defaults(run=cmd_topology)
    p = sub.add_parser("dockerfile")
    p.add_argument("dockerfile")
    p.set_defaults(run=cmd_dockerfile)
    args = parser.parse_args()
    args.run(args)
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
