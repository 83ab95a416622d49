#!/usr/bin/env python3
"""Offline checks of deploy/, driven by scripts/check-deploy.sh (which sets up the venv).

Each subcommand prints one line per check, "ok", "FAIL" or "skip" first, and exits 1 when any
check failed. Run from the repository root.
"""

from __future__ import annotations

import argparse
import base64
import difflib
import hashlib
import json
import re
import sys
from pathlib import Path

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
    "WORKER_PREFETCH", "DB_POOL_SIZE",
    "WEBHOOK_MAX_ATTEMPTS", "WEBHOOK_RETRY_BASE", "WEBHOOK_TIMEOUT",
}
SECRET_ENV = {"DATABASE_URL", "AMQP_URL", "OPENAI_API_KEY"}
BINARIES = {"api-gateway", "import-worker", "ai-worker", "foxctl"}
KEDA_KINDS = {"ScaledObject", "TriggerAuthentication"}
# What each long-running process listens on, and how long it may take to stop (brief / docs/spec.md §6).
SERVICES = {
    "api-gateway": {"var": "API_ADDR", "port": 8080, "grace": 30},
    "import-worker": {"var": "METRICS_ADDR", "port": 9101, "grace": 60},
    "ai-worker": {"var": "METRICS_ADDR", "port": 9102, "grace": 120},
}

failures = 0


def report(ok: bool, name: str, detail: str = "") -> None:
    global failures
    if not ok:
        failures += 1
    print(f"{'ok  ' if ok else 'FAIL'} {name}{': ' + detail if detail else ''}", flush=True)


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
        ]
        bindings += [binding(f"{ns}.jobs", work, kind), binding(f"{ns}.retry", retry, kind),
                     binding(f"{ns}.dead", dead, kind)]
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
# Kubernetes


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


def cmd_k8s(args) -> None:
    import jsonschema
    import kubernetes_validate

    docs = load_yaml_documents(args.rendered)
    if not docs:
        report(False, "k8s-render", "kustomize rendered nothing")
        return

    # 1. Schemas: Kubernetes' own (offline, shipped in kubernetes-validate) and ours for KEDA.
    version = args.kube_version
    errors, kinds = [], {}
    for doc in docs:
        kind, name = doc.get("kind"), doc.get("metadata", {}).get("name")
        kinds[kind] = kinds.get(kind, 0) + 1
        try:
            if kind in KEDA_KINDS:
                schema = json.loads((Path(args.schemas) / f"{kind}.schema.json").read_text())
                jsonschema.Draft202012Validator.check_schema(schema)
                for e in jsonschema.Draft202012Validator(schema).iter_errors(doc):
                    path = "/".join(str(p) for p in e.absolute_path)
                    errors.append(f"{kind}/{name}: {path}: {e.message}")
            else:
                kubernetes_validate.validate(doc, version, strict=True)
        except jsonschema.ValidationError as e:
            path = "/".join(str(p) for p in e.absolute_path)
            errors.append(f"{kind}/{name}: {path}: {e.message}")
        except Exception as e:  # SchemaNotFoundError, VersionNotSupportedError, ...
            errors.append(f"{kind}/{name}: {type(e).__name__}: {e}")
    summary = ", ".join(f"{n} {k}" for k, n in sorted(kinds.items()))
    report(not errors, "k8s-schemas",
           f"Kubernetes {version} strict + KEDA schemas ({summary})" if not errors
           else "\n  " + "\n  ".join(errors))

    by_kind: dict[str, dict[str, dict]] = {}
    for doc in docs:
        by_kind.setdefault(doc["kind"], {})[doc["metadata"]["name"]] = doc
    configmaps, secrets = by_kind.get("ConfigMap", {}), by_kind.get("Secret", {})
    deployments = by_kind.get("Deployment", {})

    # 2. Every environment variable is one the services read; secrets only in Secrets.
    problems = []
    for name in ("foxflow-config",):
        if name not in configmaps:
            problems.append(f"ConfigMap {name} missing")
    for key in configmaps.get("foxflow-config", {}).get("data", {}):
        if key not in KNOWN_ENV:
            problems.append(f"ConfigMap foxflow-config: unknown variable {key}")
        if key in SECRET_ENV:
            problems.append(f"ConfigMap foxflow-config: {key} is a secret")
    secret_keys = set(secrets.get("foxflow-secrets", {}).get("stringData", {})) | set(
        secrets.get("foxflow-secrets", {}).get("data", {}))
    if secret_keys != SECRET_ENV:
        problems.append(f"Secret foxflow-secrets keys {sorted(secret_keys)} != {sorted(SECRET_ENV)}")

    # 3. References resolve: envFrom, Services, HPA, KEDA.
    workloads = [d for d in docs if pod_spec(d) is not None]
    for w in workloads:
        ref = f"{w['kind']}/{w['metadata']['name']}"
        for c in pod_spec(w).get("containers", []):
            for src in c.get("envFrom", []):
                if "configMapRef" in src and src["configMapRef"]["name"] not in configmaps:
                    problems.append(f"{ref}: envFrom ConfigMap {src['configMapRef']['name']} missing")
                if "secretRef" in src and src["secretRef"]["name"] not in secrets:
                    problems.append(f"{ref}: envFrom Secret {src['secretRef']['name']} missing")
            for env in c.get("env", []):
                if env["name"] not in KNOWN_ENV:
                    problems.append(f"{ref}: unknown variable {env['name']}")
            command = c.get("command", []) + c.get("args", [])
            if not command or command[0] not in BINARIES:
                problems.append(f"{ref}: runs {command}, not one of {sorted(BINARIES)}")
    for svc in by_kind.get("Service", {}).values():
        selector = svc["spec"].get("selector", {})
        if not any(selector.items() <= d["spec"]["template"]["metadata"]["labels"].items()
                   for d in deployments.values()):
            problems.append(f"Service/{svc['metadata']['name']}: selector {selector} matches no Deployment")
    scaled = {}
    for hpa in by_kind.get("HorizontalPodAutoscaler", {}).values():
        scaled[hpa["spec"]["scaleTargetRef"]["name"]] = f"HPA/{hpa['metadata']['name']}"
    definitions = json.loads(Path(args.definitions).read_text())
    queue_names = {q["name"] for q in definitions.get("queues", [])}
    auths = by_kind.get("TriggerAuthentication", {})
    for so in by_kind.get("ScaledObject", {}).values():
        ref = f"ScaledObject/{so['metadata']['name']}"
        target = so["spec"]["scaleTargetRef"]["name"]
        if target in scaled:
            problems.append(f"{ref}: {target} is also scaled by {scaled[target]}")
        scaled[target] = ref
        for t in so["spec"]["triggers"]:
            if t["metadata"]["queueName"] not in queue_names:
                problems.append(f"{ref}: queue {t['metadata']['queueName']} not in definitions.json")
            auth = auths.get(t["authenticationRef"]["name"])
            if auth is None:
                problems.append(f"{ref}: TriggerAuthentication {t['authenticationRef']['name']} missing")
                continue
            for s in auth["spec"]["secretTargetRef"]:
                sec = secrets.get(s["name"], {})
                if s["key"] not in set(sec.get("stringData", {})) | set(sec.get("data", {})):
                    problems.append(f"TriggerAuthentication/{auth['metadata']['name']}: "
                                    f"Secret {s['name']} has no key {s['key']}")
    for target in scaled:
        if target not in deployments:
            problems.append(f"{scaled[target]}: Deployment {target} missing")
    report(not problems, "k8s-references",
           "env names, envFrom, Service selectors, HPA and KEDA targets, queues, secrets resolve"
           if not problems else "\n  " + "\n  ".join(problems))

    # 4. The process contract: listen address, probes on that port, grace period, resources,
    #    and no `replicas` where an autoscaler owns the count.
    problems = []
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
        limits = c.get("resources", {}).get("limits", {})
        requests = c.get("resources", {}).get("requests", {})
        if "memory" not in limits or "cpu" not in requests:
            problems.append(f"{name}: needs a memory limit and a CPU request")
        if "replicas" in d["spec"] and name in scaled:
            problems.append(f"{name}: sets replicas although {scaled[name]} owns the count")
        if name not in scaled:
            problems.append(f"{name}: no HPA or ScaledObject")
    cron = by_kind.get("CronJob", {}).get("foxflow-cleanup", {}).get("spec", {})
    if (cron.get("schedule"), cron.get("timeZone"), cron.get("concurrencyPolicy")) != (
            "0 3 * * 0", "Europe/Paris", "Forbid"):
        problems.append(f"CronJob foxflow-cleanup: {cron.get('schedule')!r} "
                        f"{cron.get('timeZone')!r} {cron.get('concurrencyPolicy')!r}")
    job = by_kind.get("Job", {}).get("foxflow-migrate")
    if job is None or job["spec"]["template"]["spec"]["containers"][0].get("args") != ["foxctl", "migrate"]:
        problems.append("Job foxflow-migrate must run foxctl migrate")
    if "rabbitmq-definitions" not in configmaps:
        problems.append("ConfigMap rabbitmq-definitions missing")
    else:
        embedded = json.loads(configmaps["rabbitmq-definitions"]["data"]["definitions.json"])
        if embedded != definitions:
            problems.append("ConfigMap rabbitmq-definitions differs from definitions.json")
    report(not problems, "k8s-contract",
           "addresses, probes, grace periods, resources, autoscaling, Job, CronJob"
           if not problems else "\n  " + "\n  ".join(problems))


# --------------------------------------------------------------------------------------------
# docker-compose


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
    want_services = {"postgres", "rabbitmq", "migrate", "api-gateway", "import-worker", "ai-worker"}
    if set(services) != want_services:
        problems.append(f"services {sorted(services)} != {sorted(want_services)}")
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
        if name in SERVICES:
            want = SERVICES[name]
            if env.get(want["var"]) != f"0.0.0.0:{want['port']}":
                problems.append(f"{name}: {want['var']} should be 0.0.0.0:{want['port']}")
            test = " ".join(svc.get("healthcheck", {}).get("test", []))
            if f":{want['port']}/" not in test:
                problems.append(f"{name}: healthcheck does not probe port {want['port']}")
            if "migrate" not in (svc.get("depends_on") or {}):
                problems.append(f"{name}: does not wait for migrate")
    replicas = {n: services.get(n, {}).get("deploy", {}).get("replicas")
                for n in ("api-gateway", "import-worker", "ai-worker")}
    if replicas != {"api-gateway": 3, "import-worker": 5, "ai-worker": 2}:
        problems.append(f"replicas {replicas}")
    report(not problems, "compose-structure",
           "services, depends_on, healthchecks, mounts, ports, limits, env names, replicas"
           if not problems else "\n  " + "\n  ".join(problems))


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
    for b in sorted(BINARIES):
        if f"target/release/{b}" not in text:
            problems.append(f"binary {b} not copied")
    user = re.findall(r"^USER\s+(\S+)", text, re.M)
    if not user or user[-1].split(":")[0] in ("root", "0"):
        problems.append("final USER must be non-root")
    if 'ENTRYPOINT ["/usr/bin/tini", "--"]' not in text:
        problems.append("tini must be the entrypoint")
    report(not problems, "dockerfile-static",
           "two stages, locked release build with cache mounts, 4 binaries, tini, non-root"
           if not problems else "; ".join(problems))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("k8s")
    p.add_argument("rendered")
    p.add_argument("--kube-version", required=True)
    p.add_argument("--schemas", required=True)
    p.add_argument("--definitions", required=True)
    p.set_defaults(run=cmd_k8s)
    p = sub.add_parser("compose")
    p.add_argument("compose")
    p.set_defaults(run=cmd_compose)
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
