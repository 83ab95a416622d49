#!/usr/bin/env python3
"""`make bench`: the docs/spec.md §14 measurements, side by side in one run,
against the real services (release build), written to docs/benchmarks.md.

Uses its own databases (foxflow_bench, foxflow_bench_ref) and a random
RabbitMQ namespace on the local servers; removes them at the end.
"""
import json
import os
import platform
import subprocess
import sys
import time
import urllib.request
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
BIN = Path(os.environ.get("CARGO_TARGET_DIR") or ROOT / "target") / "release"
WORK = ROOT / ".run" / "bench"
PG = os.environ.get("FOX_BENCH_PG", "postgres://postgres@127.0.0.1:5432")
API = "127.0.0.1:18080"
AI_METRICS = "127.0.0.1:19102"
# Pages of text for the AI path measurement: villes × their two kinds.
AI_VILLES = int(os.environ.get("FOX_BENCH_AI_VILLES", "5000"))
# The ai-worker's concurrency for that run ("limits lifted"): WORKER_PREFETCH.
AI_PREFETCH = os.environ.get("FOX_BENCH_AI_PREFETCH", "32")
NS = "bench" + uuid.uuid4().hex[:8]


def sh(*args, **kw):
    return subprocess.run(args, check=True, text=True, capture_output=True, **kw).stdout


def psql(db, sql):
    return sh("psql", f"{PG}/{db}", "-v", "ON_ERROR_STOP=1", "-qAtc", sql)


def env_for(db, **extra):
    e = dict(os.environ)
    e.update(DATABASE_URL=f"{PG}/{db}", FOX_NAMESPACE=NS, API_ADDR=API, METRICS_ADDR="127.0.0.1:0",
             IMPORT_RATE_LIMIT="off", AI_RATE_LIMIT="off", UPLOAD_THROTTLE="off",
             MAX_IMPORT_ROWS="2000000", MAX_IMPORT_FILE_BYTES=str(400 * 1024 * 1024), RUST_LOG="warn")
    e.update(extra)
    return e


def request(method, path, token, body=None, headers=None):
    req = urllib.request.Request(f"http://{API}{path}", data=body, method=method,
                                 headers={"Authorization": f"Bearer {token}", **(headers or {})})
    with urllib.request.urlopen(req, timeout=600) as r:
        return r.status, json.loads(r.read() or b"null")


def multipart(path, kind):
    boundary = uuid.uuid4().hex
    data = Path(path).read_bytes()
    head = (f"--{boundary}\r\nContent-Disposition: form-data; name=\"import_type\"\r\n\r\n{kind}\r\n"
            f"--{boundary}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"{Path(path).name}\"\r\n"
            "Content-Type: text/csv\r\n\r\n").encode()
    return head + data + f"\r\n--{boundary}--\r\n".encode(), {"Content-Type": f"multipart/form-data; boundary={boundary}"}


def import_file(token, path, kind="entreprises"):
    body, headers = multipart(path, kind)
    t0 = time.perf_counter()
    _, job = request("POST", "/api/v1/imports", token, body, headers)
    while True:
        _, job = request("GET", f"/api/v1/imports/{job['id']}", token)
        if job["status"] in ("success", "partial", "error"):
            return time.perf_counter() - t0, job
        time.sleep(0.05)


def wait_ready(addr=API, what="api-gateway"):
    for _ in range(300):
        try:
            urllib.request.urlopen(f"http://{addr}/readyz", timeout=1)
            return
        except Exception:
            time.sleep(0.1)
    sys.exit(f"{what} did not become ready")


def ai_path(token):
    """docs/spec.md §14's AI path overhead: one batch of AI_VILLES villes × 2 kinds through the
    offline `template` provider (no latency of its own), rate limit off, from the POST to the
    batch's `completed`: tasks per second end to end (outbox, relay, broker, ai-worker claim,
    provider, validator, store, ack)."""
    ids = [int(x) for x in psql("foxflow_bench", f"SELECT id FROM villes ORDER BY id LIMIT {AI_VILLES}").split()]
    body = json.dumps({"target": "ville", "ids": ids, "kinds": ["description", "meta_description"],
                       "force": True}).encode()
    t0 = time.perf_counter()
    _, batch = request("POST", "/api/v1/ai/generations", token, body, {"Content-Type": "application/json"})
    while batch["status"] != "completed":
        time.sleep(0.05)
        _, batch = request("GET", f"/api/v1/ai/generations/{batch['id']}", token)
    seconds = time.perf_counter() - t0
    assert batch["succeeded"] == batch["total"] == 2 * len(ids), batch
    return dict(tasks=batch["total"], seconds=seconds, rate=batch["total"] / seconds)


def psql_reference(csv_path):
    """psql \\copy into a staging table + one INSERT … ON CONFLICT DO UPDATE."""
    sql = f"""
\\timing off
CREATE TEMP TABLE staging (siren text, siret text, nom text, nom_commercial text, adresse text, code_postal text,
  ville_nom text, naf_code text, telephone text, email_contact text, site_web text);
\\copy staging FROM '{csv_path}' WITH (FORMAT csv, HEADER true)
INSERT INTO entreprises (siren, siret, nom, nom_commercial, adresse, code_postal, ville_nom, naf_code, telephone,
                         email_contact, site_web)
SELECT siren, siret, nom, nom_commercial, adresse, code_postal, ville_nom, naf_code, telephone, email_contact, site_web
FROM staging
ON CONFLICT (siren) DO UPDATE SET siret = EXCLUDED.siret, nom = EXCLUDED.nom,
  nom_commercial = EXCLUDED.nom_commercial, adresse = EXCLUDED.adresse, code_postal = EXCLUDED.code_postal,
  ville_nom = EXCLUDED.ville_nom, naf_code = EXCLUDED.naf_code, telephone = EXCLUDED.telephone,
  email_contact = EXCLUDED.email_contact, site_web = EXCLUDED.site_web
WHERE (entreprises.siret, entreprises.nom, entreprises.adresse) IS DISTINCT FROM (EXCLUDED.siret, EXCLUDED.nom, EXCLUDED.adresse);
"""
    t0 = time.perf_counter()
    subprocess.run(["psql", f"{PG}/foxflow_bench_ref", "-v", "ON_ERROR_STOP=1", "-q"], input=sql, text=True,
                   check=True, capture_output=True)
    return time.perf_counter() - t0


ROUNDS = int(os.environ.get("FOX_BENCH_ROUNDS", "2"))


def upload_latency(token, path, clients=32):
    body, headers = multipart(path, "entreprises")
    body_file = WORK / "upload_body.bin"
    body_file.write_bytes(body)
    boundary = headers["Content-Type"].split("boundary=")[1]
    env = dict(os.environ, FOX_BENCH_BODY=str(body_file), FOX_BENCH_TOKEN=token, FOX_BENCH_BOUNDARY=boundary)
    args = ["wrk", "-t", str(min(2, clients)), "-c", str(clients), "-s", str(ROOT / "bench" / "upload.lua"), f"http://{API}/api/v1/imports"]
    subprocess.run(args + ["-d", "3s"], env=env, check=True, capture_output=True)  # warm-up
    out = subprocess.run(args + ["-d", "15s", "--timeout", "10s"], env=env, check=True, capture_output=True, text=True).stdout
    stats = json.loads(out.strip().splitlines()[-1])
    assert stats["errors"] == 0, out
    return dict(p50=stats["p50_us"] / 1e6, p90=stats["p90_us"] / 1e6, p99=stats["p99_us"] / 1e6,
                n=stats["requests"], rate=stats["requests"] / stats["seconds"])


def peak_rss_kb(pid):
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1])
    return 0


TICK = os.sysconf("SC_CLK_TCK")


def cpu_of(pid):
    """CPU seconds (user + system) of a process and of the children it has
    waited for: the import-worker's count includes its sandboxed readers."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return sum(int(x) for x in fields[11:15]) / TICK


def postgres_cpu():
    """CPU seconds of every `postgres` process, plus the backends the
    postmaster has reaped (its children's time): deltas of this are the
    server's CPU over an interval, background writers included."""
    total = 0.0
    for d in Path("/proc").iterdir():
        if not d.name.isdigit():
            continue
        try:
            stat = (d / "stat").read_text()
        except OSError:
            continue
        if stat[stat.index("(") + 1:stat.rindex(")")] == "postgres":
            fields = stat.rsplit(")", 1)[1].split()
            total += sum(int(x) for x in fields[11:15]) / TICK
    return total


class Cpu:
    """CPU seconds spent by named processes (and PostgreSQL) between its
    creation and `done()`."""

    def __init__(self, **procs):
        self.procs = {name: [p] if not isinstance(p, list) else p for name, p in procs.items()}
        self.start = self._read()

    def _read(self):
        out = {name: sum(cpu_of(p.pid) for p in ps) for name, ps in self.procs.items()}
        out["postgres"] = postgres_cpu()
        return out

    def done(self):
        end = self._read()
        return {k: end[k] - self.start[k] for k in end}


def measured(fn, settle=0.0, **procs):
    """Runs fn(); returns (wall seconds, fn's result, CPU seconds per process).
    `settle`: seconds to wait before reading the CPU, so that a backend that
    just exited has been reaped and its time counted in the postmaster's."""
    cpu = Cpu(**procs)
    t0 = time.perf_counter()
    out = fn()
    wall = time.perf_counter() - t0
    time.sleep(settle)
    return wall, out, cpu.done()


def upload_reference(data, clients=32, seconds=15, warmup=3):
    """PostgreSQL's own write rate for uploads: `clients` connections, each
    committing the same bytes as one `bytea` row (stored uncompressed, as
    Foxflow stores its chunks), one after the other, synchronous commit as
    configured: the least work that stores an upload durably."""
    import psycopg  # installed by scripts/install-bench-tools.sh
    import threading
    url = f"{PG}/foxflow_bench_ref"
    with psycopg.connect(url, autocommit=True) as c:
        c.execute("DROP TABLE IF EXISTS upload_ref")
        c.execute("CREATE TABLE upload_ref (id bigserial PRIMARY KEY, body bytea NOT NULL)")
        c.execute("ALTER TABLE upload_ref ALTER body SET STORAGE EXTERNAL")
    start = time.monotonic() + warmup
    stop = start + seconds
    latencies, lock = [], threading.Lock()

    def client():
        mine = []
        with psycopg.connect(url, autocommit=True) as c:
            while True:
                t0 = time.monotonic()
                if t0 >= stop:
                    break
                c.execute("INSERT INTO upload_ref (body) VALUES (%b)", (data,))
                if t0 >= start:
                    mine.append(time.monotonic() - t0)
        with lock:
            latencies.extend(mine)

    threads = [threading.Thread(target=client) for _ in range(clients)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    with psycopg.connect(url, autocommit=True) as c:
        c.execute("DROP TABLE upload_ref")
    latencies.sort()
    pct = lambda q: latencies[min(len(latencies) - 1, int(q * len(latencies)))]
    return dict(n=len(latencies), rate=len(latencies) / seconds, p50=pct(0.5), p90=pct(0.9), p99=pct(0.99))


ONLY = set(filter(None, os.environ.get("FOX_BENCH_ONLY", "").split(",")))  # e.g. "throughput,ai": a partial run, not written to the docs
SCALING = [int(n) for n in os.environ.get("FOX_BENCH_SCALING", "1,2,4").split(",")]
AI_ROUNDS = int(os.environ.get("FOX_BENCH_AI_ROUNDS", "2"))


def wanted(part):
    return not ONLY or part in ONLY


# Every process the run starts, stopped at its end whatever happens (a
# worker left running would hold its metrics port for the next run).
SPAWNED = []


def spawn(binary, env):
    p = subprocess.Popen([str(BIN / binary)], env=env)
    SPAWNED.append(p)
    return p


def start_worker(db="foxflow_bench", metrics=None, **extra):
    if metrics:
        extra["METRICS_ADDR"] = metrics
    p = spawn("import-worker", env_for(db, **extra))
    if metrics:
        wait_ready(metrics, "import-worker")
        if p.poll() is not None:  # another process answered on that address
            sys.exit(f"import-worker exited ({p.returncode}); is {metrics} taken?")
    return p


def stop(*procs):
    for p in procs:
        p.terminate()
    for p in procs:
        p.wait(timeout=60)


def import_files(token, paths):
    """Uploads the files at once, one thread each; returns (seconds from the
    first upload to the last job's end, the jobs)."""
    import concurrent.futures
    t0 = time.perf_counter()
    with concurrent.futures.ThreadPoolExecutor(len(paths)) as ex:
        done = list(ex.map(lambda p: import_file(token, p), paths))
    return time.perf_counter() - t0, [job for _, job in done]


def main():
    WORK.mkdir(parents=True, exist_ok=True)
    if not os.environ.get("FOX_BENCH_NO_BUILD"):  # set it to reuse binaries built just before
        print("building release binaries…", flush=True)
        subprocess.run(["cargo", "build", "--release", "--bins", "--locked", "-q"], cwd=ROOT, check=True)
    gen = ROOT / "bench" / "gen_entreprises.py"
    e100k, e1m = WORK / "entreprises_100k.csv", WORK / "entreprises_1m.csv"
    if not e100k.exists():
        sh(sys.executable, str(gen), "100000", str(e100k))
    if not e1m.exists() and wanted("memory"):
        sh(sys.executable, str(gen), "1000000", str(e1m), "--seed", "7")
    # The scaling run's files: 100,000 rows each, no siren in common.
    scale_files = [WORK / f"entreprises_100k_part{k}.csv" for k in range(max(SCALING))]
    for k, f in enumerate(scale_files):
        if not f.exists() and wanted("scaling"):
            sh(sys.executable, str(gen), "100000", str(f), "--seed", str(100 + k), "--first-siren", str(20_000_000 + k * 1_000_000))
    mb1 = WORK / "upload_1mb.csv"
    with open(e100k, encoding="utf-8") as src, open(mb1, "w", encoding="utf-8") as dst:
        size = 0
        for line in src:
            dst.write(line)
            size += len(line.encode())
            if size >= 1024 * 1024:
                break

    for db in ("foxflow_bench", "foxflow_bench_ref"):
        psql("postgres", f"DROP DATABASE IF EXISTS {db} WITH (FORCE)")
        sh(str(BIN / "foxctl"), "migrate", env=env_for(db))
    token = sh(str(BIN / "foxctl"), "token", "create", "--name", "bench", "--role", "admin", env=env_for("foxflow_bench")).strip()
    api = spawn("api-gateway", env_for("foxflow_bench"))
    worker = start_worker()
    results = {"load": [os.getloadavg()[0]], "partial": bool(ONLY)}

    def empty():
        for db in ("foxflow_bench", "foxflow_bench_ref"):
            psql(db, "TRUNCATE entreprises CASCADE")
            psql(db, "VACUUM ANALYZE entreprises")
        psql("foxflow_bench", "TRUNCATE import_changes")

    try:
        wait_ready()
        if wanted("throughput"):
            # 1. Throughput, fresh and re-import, against psql on the same
            # server. ROUNDS rounds, Foxflow and psql alternating so that both
            # see the same background load; the best round of each side is
            # kept, with the CPU its processes spent in that round. Each round
            # also imports with the undo capture (the triggers that keep what
            # an import changed, for a revert) switched off: its cost is the
            # difference, measured side by side.
            runs = {"fresh": [], "again": [], "ref_fresh": [], "ref_again": [], "fresh_nocapture": [], "again_nocapture": []}
            cpus = {k: [] for k in runs}
            capture = "ALTER TABLE entreprises {} TRIGGER entreprises_capture_insert, {} TRIGGER entreprises_capture_update"

            def ours(kind, expect):
                t, job, cpu = measured(lambda: import_file(token, e100k)[1], worker=worker, api=api)
                assert job["status"] == "success" and job[expect] == 100000, job
                runs[kind].append(t)
                cpus[kind].append(cpu)

            def reference(kind):
                t, _, cpu = measured(lambda: psql_reference(e100k), settle=0.5)
                runs[kind].append(t)
                cpus[kind].append(cpu)

            for rnd in range(ROUNDS):
                if rnd:
                    empty()
                ours("fresh", "created_rows")
                reference("ref_fresh")
                ours("again", "unchanged_rows")
                reference("ref_again")
                empty()
                psql("foxflow_bench", capture.replace("{}", "DISABLE"))
                ours("fresh_nocapture", "created_rows")
                ours("again_nocapture", "unchanged_rows")
                psql("foxflow_bench", capture.replace("{}", "ENABLE"))
                results["load"].append(os.getloadavg()[0])
            best = {k: min(range(len(v)), key=v.__getitem__) for k, v in runs.items()}
            results["throughput"] = {k: runs[k][i] for k, i in best.items()}
            results["cpu"] = {k: cpus[k][i] for k, i in best.items()}
            results["throughput_runs"] = runs

        if wanted("scaling"):
            # 2. Scaling: N import-workers on N concurrent 100,000-row files
            # (disjoint sirens, into an empty table), aggregate rows/s from
            # the first upload to the last job's end.
            stop(worker)
            results["scaling"] = []
            for n in SCALING:
                empty()
                workers = [start_worker(metrics=f"127.0.0.1:{19110 + i}") for i in range(n)]
                t, jobs, cpu = measured(lambda: import_files(token, scale_files[:n])[1], workers=workers, api=api)
                for job in jobs:
                    assert job["status"] == "success" and job["created_rows"] == 100000, job
                stop(*workers)
                results["scaling"].append(dict(workers=n, seconds=t, rate=n * 100000 / t, cpu=cpu))
                results["load"].append(os.getloadavg()[0])
            empty()
            worker = start_worker()

        if wanted("upload"):
            # 3. Uploads against PostgreSQL's own write rate: 32 connections
            # committing 1 MB each, then Foxflow's 1 MB uploads with 32
            # concurrent clients (wrk: each sends its next upload as soon as
            # the last is acknowledged), then one client alone. The worker is
            # stopped meanwhile: the acknowledgement path is measured, not its
            # competition for these cores with the imports it queues
            # (separate hosts in production).
            # Each run starts from a checkpoint, and the one-client runs
            # from tables emptied of the 32-client runs' gigabytes: their
            # tail is then the upload's, not the flushing of earlier writes.
            stop(worker)
            psql("foxflow_bench", "CHECKPOINT")
            results["upload_ref"] = upload_reference(mb1.read_bytes())
            psql("foxflow_bench", "CHECKPOINT")
            results["upload"] = upload_latency(token, mb1)
            # wrk stops with uploads in flight: let the API finish them
            # before their files are emptied under them.
            for _ in range(300):
                busy = psql("foxflow_bench", "SELECT count(*) FROM pg_stat_activity WHERE application_name = "
                            "'api-gateway' AND state IN ('active', 'idle in transaction')")
                if busy.strip() == "0":
                    break
                time.sleep(0.1)
            psql("foxflow_bench", "TRUNCATE import_jobs, stored_files, file_chunks, outbox CASCADE")
            psql("foxflow_bench", "CHECKPOINT")
            results["upload_ref_one"] = upload_reference(mb1.read_bytes(), clients=1)
            psql("foxflow_bench", "CHECKPOINT")
            results["upload_one"] = upload_latency(token, mb1, clients=1)
            results["load"].append(os.getloadavg()[0])
            # Those jobs are not imported: the next runs start from an idle worker.
            psql("foxflow_bench", "UPDATE import_jobs SET status = 'error' WHERE status IN ('pending', 'processing')")
            worker = start_worker()

        if wanted("memory"):
            # 4. Peak RSS of a fresh worker on a 1,000,000-row file.
            stop(worker)
            worker = start_worker(IMPORT_BATCH_ROWS="5000")
            t_1m, job = import_file(token, e1m)
            results["memory"] = dict(rows=job["total_rows"], status=job["status"], seconds=t_1m, peak_kb=peak_rss_kb(worker.pid))

        if wanted("fix_names"):
            # 5. fix-sous-categorie-names on 732 placeholders.
            psql("foxflow_bench", """
                INSERT INTO categories (nom, slug) VALUES ('Bench', 'bench') ON CONFLICT DO NOTHING;
                INSERT INTO sous_categories (categorie_id, nom, slug)
                SELECT (SELECT id FROM categories WHERE nom = 'Bench'), 'Activité ' || code, 'activite-' || lower(replace(code, '.', '-'))
                FROM naf_codes ON CONFLICT DO NOTHING;""")
            t0 = time.perf_counter()
            sh(str(BIN / "foxctl"), "fix-sous-categorie-names", env=env_for("foxflow_bench"))
            results["fix_names"] = time.perf_counter() - t0

        if wanted("ai"):
            # 6. The AI path with a zero-latency provider, on the real town
            # list, AI_ROUNDS times: the target holds for every run.
            _, job = import_file(token, ROOT / "docs" / "samples" / "villes_france.csv", "villes")
            assert job["status"] == "success", job
            stop(worker)
            ai = spawn("ai-worker", env_for(
                "foxflow_bench", METRICS_ADDR=AI_METRICS, AI_PROVIDER="template", WORKER_PREFETCH=AI_PREFETCH))
            wait_ready(AI_METRICS, "ai-worker")
            results["ai"] = []
            for _ in range(AI_ROUNDS):
                _, run, cpu = measured(lambda: ai_path(token), ai=ai, api=api)
                run["cpu"] = cpu
                results["ai"].append(run)
                results["load"].append(os.getloadavg()[0])
    finally:
        running = [p for p in SPAWNED if p.poll() is None]
        for p in running:
            p.terminate()
        for p in running:
            try:
                p.wait(timeout=30)
            except Exception:
                p.kill()
        for db in ("foxflow_bench", "foxflow_bench_ref"):
            psql("postgres", f"DROP DATABASE IF EXISTS {db} WITH (FORCE)")
        # Every queue of the run's namespace (the dead-letter recorders' too).
        listed = subprocess.run(["rabbitmqctl", "-q", "list_queues", "name"], capture_output=True, text=True).stdout
        for q in listed.split():
            if q.startswith(f"{NS}."):
                subprocess.run(["rabbitmqctl", "delete_queue", q], capture_output=True, stdin=subprocess.DEVNULL)
    report(results)


def us_per_row(seconds, rows=100000):
    return seconds / rows * 1e6


def report(r):
    lines = ["| measurement | Foxflow | reference / target | ratio or verdict |", "|---|---|---|---|"]
    if "throughput" in r:
        t, c = r["throughput"], r["cpu"]
        ratio_fresh, ratio_again = t["ref_fresh"] / t["fresh"], t["ref_again"] / t["again"]
        lines += [
            f"| 100,000 rows, fresh (upload → success) | {t['fresh']:.2f} s ({100000 / t['fresh']:,.0f} rows/s) | psql \\copy + INSERT … ON CONFLICT: {t['ref_fresh']:.2f} s | {ratio_fresh:.2f} (target ≥ 0.8) |",
            f"| 100,000 rows, re-import | {t['again']:.2f} s ({100000 / t['again']:,.0f} rows/s) | psql: {t['ref_again']:.2f} s | {ratio_again:.2f} (target ≥ 0.8) |",
            f"| import-worker CPU per row (reader child included), fresh / re-import | {us_per_row(c['fresh']['worker']):.1f} / {us_per_row(c['again']['worker']):.1f} µs | ≤ 2 µs | {'met' if us_per_row(c['again']['worker']) <= 2 else 'missed'} |",
            f"| PostgreSQL CPU per row, fresh / re-import | {us_per_row(c['fresh']['postgres']):.1f} / {us_per_row(c['again']['postgres']):.1f} µs | psql's: {us_per_row(c['ref_fresh']['postgres']):.1f} / {us_per_row(c['ref_again']['postgres']):.1f} µs | {c['ref_fresh']['postgres'] / c['fresh']['postgres']:.2f} / {c['ref_again']['postgres'] / c['again']['postgres']:.2f} |",
            f"| api-gateway CPU per row (the upload), fresh | {us_per_row(c['fresh']['api']):.1f} µs | | |",
            f"| undo capture (revert data), 100,000 rows fresh | {t['fresh']:.2f} s with, {t['fresh_nocapture']:.2f} s without | ≤ +10 % | {(t['fresh'] / t['fresh_nocapture'] - 1) * 100:+.0f} % |",
            f"| undo capture, re-import (nothing changes: nothing captured) | {t['again']:.2f} s with, {t['again_nocapture']:.2f} s without | ≤ +10 % | {(t['again'] / t['again_nocapture'] - 1) * 100:+.0f} % |",
        ]
    if "upload" in r:
        ref, up, one = r["upload_ref"], r["upload"], r["upload_one"]
        lines += [
            f"| uploads of 1 MB, 32 clients (wrk, {up['n']} uploads) | {up['rate']:.0f} uploads/s (p50 {up['p50'] * 1000:.0f} ms, p99 {up['p99'] * 1000:.0f} ms) | PostgreSQL, 32 connections committing 1 MB `bytea` rows: {ref['rate']:.0f}/s (p50 {ref['p50'] * 1000:.0f} ms, p99 {ref['p99'] * 1000:.0f} ms) | {up['rate'] / ref['rate']:.2f} (target ≥ 0.8) |",
            f"| upload ack, 1 MB, one client ({one['n']} uploads, {one['rate']:.0f}/s) | p50 {one['p50'] * 1000:.1f} ms, p90 {one['p90'] * 1000:.1f} ms, p99 {one['p99'] * 1000:.1f} ms | p99 ≤ 25 ms; PostgreSQL, one connection committing 1 MB rows: p50 {r['upload_ref_one']['p50'] * 1000:.1f} ms, p99 {r['upload_ref_one']['p99'] * 1000:.1f} ms ({r['upload_ref_one']['rate']:.0f}/s) | {'met' if one['p99'] <= 0.025 else 'missed'} |",
        ]
    if "memory" in r:
        rss_mb = r["memory"]["peak_kb"] / 1024
        lines.append(f"| import-worker peak RSS, 1,000,000 rows | {rss_mb:.0f} MB ({r['memory']['status']}, {r['memory']['seconds']:.0f} s) | ≤ 150 MB | {'met' if rss_mb <= 150 else 'missed'} |")
    if "fix_names" in r:
        lines.append(f"| fix-sous-categorie-names, 732 rows (whole foxctl run) | {r['fix_names']:.3f} s | ≤ 0.3 s | {'met' if r['fix_names'] <= 0.3 else 'missed'} |")
    if "ai" in r:
        rates = [a["rate"] for a in r["ai"]]
        cpu = r["ai"][0]["cpu"]
        lines.append(
            f"| AI path, template provider, {r['ai'][0]['tasks']:,} tasks (WORKER_PREFETCH={AI_PREFETCH}), {len(rates)} runs | "
            f"{', '.join(f'{x:,.0f}' for x in rates)} tasks/s (CPU per task: PostgreSQL {cpu['postgres'] / r['ai'][0]['tasks'] * 1e6:.0f} µs, "
            f"ai-worker {cpu['ai'] / r['ai'][0]['tasks'] * 1e6:.0f} µs) | ≥ 500 tasks/s in every run | {'met' if min(rates) >= 500 else 'missed'} |")
    if "scaling" in r:
        s1 = r["scaling"][0]
        lines += ["", "Scaling: N import-workers, N concurrent 100,000-row files (fresh, disjoint sirens), from the first "
                  "upload to the last job's end:", "",
                  "| workers | files | seconds | rows/s | × one worker | workers' CPU per row | PostgreSQL CPU per row | CPU busy (of 2 cores) |",
                  "|---|---|---|---|---|---|---|---|"]
        for s in r["scaling"]:
            rows = s["workers"] * 100000
            busy = (s["cpu"]["workers"] + s["cpu"]["postgres"] + s["cpu"]["api"]) / s["seconds"]
            lines.append(f"| {s['workers']} | {s['workers']} | {s['seconds']:.2f} | {s['rate']:,.0f} | {s['rate'] / s1['rate']:.2f} | "
                         f"{us_per_row(s['cpu']['workers'], rows):.1f} µs | {us_per_row(s['cpu']['postgres'], rows):.1f} µs | {busy:.2f} |")
    if "throughput" in r:
        runs = r["throughput_runs"]
        lines += ["", "Every throughput round (seconds; the table keeps the best of each column, and that round's CPU): "
                  + "; ".join(f"{k} {', '.join(f'{x:.2f}' for x in v)}" for k, v in runs.items()) + "."]
    lines += ["1-minute load average (2 cores) at the start and after each part: " + ", ".join(f"{x:.1f}" for x in r["load"]) + "."]
    table = "\n".join(lines)
    print(table)
    if r["partial"]:
        print("(FOX_BENCH_ONLY: a partial run, docs/benchmarks.md left as it is)")
        return
    machine = f"{platform.machine()}, {os.cpu_count()} cores, {platform.platform()}, " + sh("psql", "--version").strip()
    doc = ROOT / "docs" / "benchmarks.md"
    text = doc.read_text() if doc.exists() else ""
    marker = "<!-- bench:results -->"
    block = f"{marker}\nRun of {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())} on {machine}:\n\n{table}\n{marker}"
    if marker in text:
        start = text.index(marker)
        end = text.index(marker, start + len(marker)) + len(marker)
        text = text[:start] + block + text[end:]
    else:
        text += "\n" + block + "\n"
    doc.write_text(text)


if __name__ == "__main__":
    main()
