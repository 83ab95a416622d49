//! Issue 15: the chaos soak. Sixty imports of all four types (most small, four of 20,000 to
//! 50,000 rows; with repeated keys, bad rows, dry runs and an empty file) and AI batches (the
//! hand-over of imports with `generate_ai`, and batches posted to the API) run twice on the real
//! binaries — two `import-worker`s and an `ai-worker` as child processes, reaching RabbitMQ
//! through a proxy the test owns: once cleanly, then while a seeded driver kills workers
//! (`kill -9` and SIGTERM, each restarted), severs every broker connection and terminates the
//! workers' database backends, each fault aimed at a moment its target holds a job or a task.
//! The faulty run must end exactly like the clean one: every job final with the same status and
//! counts (both runs are also checked against the counts the files were built to give), the
//! same stored rows, no entreprise twice, every AI batch complete with the same outcome and one
//! stored text per task, no unsent outbox row, nothing left in the work, wait or dead queues.
//!
//! Bounded, because `make test` runs it (about a minute and a half on two cores): about 200,000
//! rows in all, the faulty run's uploads spread over [`UPLOAD_SPREAD`], faults for at most
//! [`FAULT_WINDOW`], a deadline on every wait. The driver never disturbs one job more than
//! [`MAX_JOB_HITS`] times (an AI task [`MAX_TASK_HITS`]), inside the default retry and
//! lost-worker budgets (`IMPORT_MAX_RETRIES` 3, `AI_MAX_RETRIES` 2), so a job that ends `error`
//! or differs from the clean run is a finding, not bad luck. The seed is printed;
//! `FOX_SOAK_SEED=<seed>` replays the driver's choices (not their timing).
//!
//! One long file on purpose: the corpus, the driver and the verdict share the file specs and the
//! outcome shapes, and a soak read top to bottom is easier to trust than one spread out.

use foxflow_domain::messages::QueueKind;
use foxflow_messaging::Topology;
use foxflow_testkit::chaos::{ChaosProxy, ServiceProcess};
use foxflow_testkit::data::{NAF_CODES, TOWNS, siren_from, siret_for};
use foxflow_testkit::{TestApp, TestOptions};
use lapin::options::QueueDeclareOptions;
use lapin::types::FieldTable;
use serde_json::{Value, json};
use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// How long a fault waits for its target to hold a job or task before it is injected anyway.
const AIM: Duration = Duration::from_secs(2);
/// How long the driver injects faults at most (it stops earlier once all work has ended).
const FAULT_WINDOW: Duration = Duration::from_secs(60);
/// In the chaos run the uploads are spread over this long, so work keeps arriving while the
/// faults do (the outbox relay publishes through the severed connections too).
const UPLOAD_SPREAD: Duration = Duration::from_secs(25);
/// Pause between two faults, in milliseconds: about two faults every three seconds.
const FAULT_EVERY_MS: (u64, u64) = (800, 2_200);
/// Faults (kills, SIGTERMs, backend terminations) one import job may take: one less than its
/// retry budget and its lost-worker budget (both `IMPORT_MAX_RETRIES`, 3 by default).
const MAX_JOB_HITS: u32 = 2;
/// Faults one AI task may take: its budgets are `AI_MAX_RETRIES` (2), and a termination that
/// lands while a task is being claimed is not seen by the driver, so keep a wide margin.
const MAX_TASK_HITS: u32 = 1;
/// How long a SIGTERMed worker may take to exit (docs/spec.md §6: within the grace period).
const SIGTERM_LIMIT: Duration = Duration::from_secs(15);
/// From the end of the faults (or of the uploads, in the clean run) to every job and task final.
const SETTLE: Duration = Duration::from_secs(150);
/// Seed of the corpus: the files are the same in every run of the soak.
const DATA_SEED: u64 = 0x50A4_2026;

/// Service settings of both runs (besides the harness's own: rate limits off, 1 s retry delays).
const SERVICE_ENV: &[(&str, &str)] = &[
    ("IMPORT_BATCH_ROWS", "1000"),
    // A killed worker's job is taken over this long after its last heartbeat.
    ("IMPORT_LEASE", "8s"),
    // The AI lease is this plus 30 s; the offline template provider answers in microseconds.
    ("OPENAI_TIMEOUT", "3s"),
];

/// The broker the harness uses, reached without the proxy.
fn direct_amqp_url() -> String {
    std::env::var("FOX_TEST_AMQP").unwrap_or_else(|_| "amqp://guest:guest@127.0.0.1:5672/%2f".to_owned())
}

/// Where the proxy forwards to: the host and port of [`direct_amqp_url`].
fn broker_addr() -> std::net::SocketAddr {
    use std::net::ToSocketAddrs;
    let url = direct_amqp_url();
    let authority = url.split_once("://").map_or(url.as_str(), |(_, rest)| rest);
    let host_port = authority
        .rsplit('@')
        .next()
        .and_then(|rest| rest.split('/').next())
        .unwrap_or("127.0.0.1:5672");
    host_port
        .to_socket_addrs()
        .ok()
        .and_then(|mut addrs| addrs.next())
        .expect("the broker's address")
}

/// splitmix64: a seeded stream, enough for a soak, without a dependency.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform in `lo..hi`.
    fn range(&mut self, lo: u64, hi: u64) -> u64 {
        lo + self.next() % (hi - lo)
    }

    fn pick<'a, T>(&mut self, items: &'a [T]) -> &'a T {
        &items[self.range(0, items.len() as u64) as usize]
    }
}

// ---------------------------------------------------------------------------
// The corpus: files whose outcome is known by construction
// ---------------------------------------------------------------------------

/// A job's row outcomes.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
struct Counts {
    total: i64,
    created: i64,
    updated: i64,
    unchanged: i64,
    errors: i64,
}

impl Counts {
    /// docs/spec.md §4.5: no error rows (an empty file included) is `success`, some is `partial`.
    fn status(&self) -> &'static str {
        match self.errors {
            0 => "success",
            e if e < self.total => "partial",
            _ => "error",
        }
    }
}

impl std::fmt::Display for Counts {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{}={}c+{}u+{}n+{}e",
            self.total, self.created, self.updated, self.unchanged, self.errors
        )
    }
}

struct FileSpec {
    label: String,
    import_type: &'static str,
    body: String,
    dry_run: bool,
    generate_ai: bool,
    expect: Counts,
    /// Entities the import creates or updates (for entreprises: the pages of those), which is
    /// what its AI hand-over covers.
    touched: i64,
}

impl FileSpec {
    /// The target type of this import's AI hand-over and its number of kinds.
    fn ai_target(&self) -> (&'static str, i64) {
        match self.import_type {
            "entreprises" => ("prolocalisation", 4),
            "categories" => ("categorie", 2),
            "sous_categories" => ("sous_categorie", 2),
            _ => ("ville", 2),
        }
    }

    /// AI tasks the import must queue when it ends.
    fn expected_ai_tasks(&self) -> i64 {
        if self.generate_ai && !self.dry_run {
            self.touched * self.ai_target().1
        } else {
            0
        }
    }
}

/// How one file is shaped: `fresh` new keys, then later in the file `same` identical repeats
/// (`unchanged`), `changed` repeats with another value (`updated`) and `bad` error rows.
#[derive(Clone, Copy)]
struct Shape {
    fresh: usize,
    same: usize,
    changed: usize,
    bad: usize,
}

/// One fresh row: its line, the line of a changed repeat, and whether it gets a page.
struct Row {
    line: String,
    changed: String,
    page: bool,
}

/// Lays the rows out: identical repeats of the even rows, changed repeats of the odd ones, each
/// a third of the file after its original (so large files repeat across batches, small ones
/// within one), and bad rows spread evenly.
fn lay_out(header: &str, rows: &[Row], shape: Shape, bad: impl Fn(usize) -> String) -> (String, Counts) {
    let n = rows.len();
    assert!(
        n > 2 * shape.same.max(shape.changed),
        "too few fresh rows for the repeats"
    );
    let gap = (n / 3).max(1);
    let mut after: Vec<Vec<String>> = vec![Vec::new(); n];
    for k in 0..shape.same {
        after[(2 * k + gap).min(n - 1)].push(rows[2 * k].line.clone());
    }
    for k in 0..shape.changed {
        after[(2 * k + 1 + gap).min(n - 1)].push(rows[2 * k + 1].changed.clone());
    }
    for k in 0..shape.bad {
        after[k * n / shape.bad].push(bad(k));
    }
    let mut body = String::with_capacity(n * 170);
    body.push_str(header);
    body.push('\n');
    for (row, extra) in rows.iter().zip(&after) {
        body.push_str(&row.line);
        body.push('\n');
        for line in extra {
            body.push_str(line);
            body.push('\n');
        }
    }
    let counts = Counts {
        total: (n + shape.same + shape.changed + shape.bad) as i64,
        created: n as i64,
        updated: shape.changed as i64,
        unchanged: shape.same as i64,
        errors: shape.bad as i64,
    };
    (body, counts)
}

/// NAF codes and postal codes the seeded sous-catégories and villes resolve: an entreprise with
/// both gets a page (docs/spec.md §4.4).
const PAGE_NAFS: &[&str] = &["43.22A", "56.10A"];
const PAGE_POSTCODES: &[&str] = &["69001", "75001"];

struct Corpus {
    files: Vec<FileSpec>,
    /// The next entreprise number: every file has keys of its own, so no outcome depends on
    /// which job runs first.
    next_entreprise: u32,
    rng: Rng,
}

impl Corpus {
    fn entreprises(&mut self, label: &str, shape: Shape, dry_run: bool, generate_ai: bool) {
        let first = self.next_entreprise;
        self.next_entreprise += shape.fresh as u32;
        let rows: Vec<Row> = (first..first + shape.fresh as u32)
            .map(|i| {
                let siren = siren_from(10_000_000 + i);
                let siret = siret_for(&siren, 1 + (i % 50) as u16);
                let (naf, _) = *self.rng.pick(NAF_CODES);
                let (town, cp) = *self.rng.pick(TOWNS);
                let phone = format!(
                    "01 {:02} {:02} {:02} {:02}",
                    self.rng.range(0, 100),
                    self.rng.range(0, 100),
                    self.rng.range(0, 100),
                    self.rng.range(0, 100)
                );
                let line = |nom: &str| {
                    format!(
                        "{siren},{siret},{nom},Chez {i},{n} rue de la République,{cp},{town},{naf},{phone},contact{i}@exemple.fr,www.entreprise{i}.fr",
                        n = 1 + i % 120
                    )
                };
                Row {
                    line: line(&format!("Entreprise {i} SARL")),
                    changed: line(&format!("Entreprise {i} et Fils")),
                    page: PAGE_NAFS.contains(&naf) && PAGE_POSTCODES.contains(&cp),
                }
            })
            .collect();
        let header = "siren,siret,nom,nom_commercial,adresse,code_postal,ville_nom,naf_code,telephone,email_contact,site_web";
        // A SIREN whose check digit is off: an error row, whatever else the row holds.
        let bad = |k: usize| {
            let valid = siren_from(90_000_000 + first + k as u32);
            let last = valid.as_bytes()[8] - b'0';
            format!("{}{},,Mauvaise {k},,,,,,,,", &valid[..8], (last + 1) % 10)
        };
        let (body, expect) = lay_out(header, &rows, shape, bad);
        let touched = rows.iter().filter(|r| r.page).count() as i64;
        self.push(label, "entreprises", body, expect, touched, dry_run, generate_ai);
    }

    fn categories(&mut self, label: &str, shape: Shape, generate_ai: bool) {
        let rows: Vec<Row> = (0..shape.fresh)
            .map(|i| {
                let line = |d: &str| format!("Soak {label} {i},{d} de la catégorie {label} {i},{i}");
                Row {
                    line: line("Description"),
                    changed: line("Nouvelle description"),
                    page: false,
                }
            })
            .collect();
        // Over the 100 characters `nom` may hold (docs/spec.md §3).
        let bad = |k: usize| format!("{} {label} {k},Trop long,0", "Nom beaucoup trop long".repeat(5));
        let (body, expect) = lay_out("nom,description,ordre", &rows, shape, bad);
        let touched = expect.created;
        self.push(label, "categories", body, expect, touched, false, generate_ai);
    }

    fn sous_categories(&mut self, label: &str, shape: Shape, generate_ai: bool) {
        let rows: Vec<Row> = (0..shape.fresh)
            .map(|i| {
                let line = |d: &str| format!("Soak {label} {i},Soak Famille {},{d} {label} {i}", i % 5);
                Row {
                    line: line("Sous-catégorie"),
                    changed: line("Sous-catégorie revue"),
                    page: false,
                }
            })
            .collect();
        // No such catégorie in the database or earlier in the file: `unknown_categorie`.
        let bad = |k: usize| format!("Soak {label} orpheline {k},Famille inconnue {label},Sans parent");
        let (body, expect) = lay_out("nom,categorie,description", &rows, shape, bad);
        let touched = expect.created;
        self.push(
            label,
            "sous_categories",
            body,
            expect,
            touched,
            false,
            generate_ai,
        );
    }

    fn villes(&mut self, label: &str, shape: Shape, dry_run: bool, generate_ai: bool) {
        let rows: Vec<Row> = (0..shape.fresh)
            .map(|i| {
                // 02000–05999: no entreprise of the corpus has these, so no page depends on
                // whether a villes file ran before an entreprises one.
                let cp = format!("{:05}", 2_000 + (i * 37) % 4_000);
                let line = |population: usize| {
                    format!("Soakville {label} {i},{cp},{},Soak Région,{population}", &cp[..2])
                };
                Row {
                    line: line(1_000 + i),
                    changed: line(2_000 + i),
                    page: false,
                }
            })
            .collect();
        let bad = |k: usize| format!("Soakville {label} sans code {k},ABCDE,,Soak Région,10");
        let (body, expect) = lay_out("nom,code_postal,departement,region,population", &rows, shape, bad);
        let touched = expect.created;
        self.push(label, "villes", body, expect, touched, dry_run, generate_ai);
    }

    #[allow(clippy::too_many_arguments)]
    fn push(
        &mut self,
        label: &str,
        import_type: &'static str,
        body: String,
        expect: Counts,
        touched: i64,
        dry_run: bool,
        generate_ai: bool,
    ) {
        self.files.push(FileSpec {
            label: label.to_owned(),
            import_type,
            body,
            dry_run,
            generate_ai,
            expect,
            touched,
        });
    }

    /// A small shape: `fresh` in `lo..hi`, a few repeats, bad rows in two files of three.
    fn small(&mut self, lo: u64, hi: u64, with_bad: bool) -> Shape {
        let fresh = self.rng.range(lo, hi) as usize;
        let cap = (fresh as u64 / 2).min(6);
        Shape {
            fresh,
            same: self.rng.range(0, cap) as usize,
            changed: self.rng.range(0, cap) as usize,
            bad: if with_bad {
                self.rng.range(1, 5) as usize
            } else {
                0
            },
        }
    }
}

/// The sixty files: four big ones spread through the order (so one is running during most of
/// the faults), the small ones shuffled so the types interleave.
fn corpus() -> Vec<FileSpec> {
    let mut c = Corpus {
        files: Vec::new(),
        next_entreprise: 0,
        rng: Rng(DATA_SEED),
    };
    let big = |fresh, same, changed, bad| Shape {
        fresh,
        same,
        changed,
        bad,
    };
    // 50,000 rows: MAX_IMPORT_ROWS exactly.
    c.entreprises("e-50k", big(49_900, 50, 25, 25), false, false);
    c.entreprises("e-40k", big(39_990, 10, 0, 0), false, false);
    c.entreprises("e-30k", big(29_980, 0, 10, 10), false, false);
    c.entreprises("e-20k", big(19_990, 5, 5, 0), false, false);
    let bigs: Vec<FileSpec> = c.files.drain(..).collect();
    for k in 0..22 {
        let generate_ai = k < 4;
        // Two dry runs: one within one batch, one across three.
        let (shape, dry_run) = match k {
            20 => (c.small(700, 900, true), true),
            21 => (c.small(2_500, 2_900, true), true),
            _ if generate_ai => (c.small(120, 260, k % 2 == 0), false),
            _ => (c.small(300, 5_000, k % 3 != 0), false),
        };
        c.entreprises(&format!("e-{k:02}"), shape, dry_run, generate_ai);
    }
    // A header and nothing else: `success` with no rows (docs/spec.md §4.5).
    c.push(
        "e-empty",
        "entreprises",
        "siren,nom\n".to_owned(),
        Counts::default(),
        0,
        false,
        false,
    );
    for k in 0..10 {
        let generate_ai = k < 3;
        let shape = if generate_ai {
            c.small(15, 40, k == 0)
        } else {
            c.small(20, 300, k % 3 != 0)
        };
        c.categories(&format!("c-{k:02}"), shape, generate_ai);
    }
    for k in 0..10 {
        let generate_ai = k < 2;
        let shape = if generate_ai {
            c.small(10, 30, k == 1)
        } else {
            c.small(10, 200, k % 3 != 0)
        };
        c.sous_categories(&format!("s-{k:02}"), shape, generate_ai);
    }
    for k in 0..13 {
        let generate_ai = k < 3;
        let shape = if generate_ai {
            c.small(15, 40, k == 2)
        } else {
            c.small(50, 3_000, k % 3 != 0)
        };
        c.villes(&format!("v-{k:02}"), shape, k == 12, generate_ai);
    }
    let mut small = std::mem::take(&mut c.files);
    for i in (1..small.len()).rev() {
        let j = c.rng.range(0, i as u64 + 1) as usize;
        small.swap(i, j);
    }
    let every = (small.len() + bigs.len()) / bigs.len();
    let mut bigs = bigs.into_iter();
    let mut small = small.into_iter();
    let mut files = Vec::new();
    for k in 0.. {
        let next = if k % every == 0 {
            bigs.next().or_else(|| small.next())
        } else {
            small.next()
        };
        match next {
            Some(f) => files.push(f),
            None => break,
        }
    }
    files.extend(bigs);
    files
}

// ---------------------------------------------------------------------------
// The worker processes
// ---------------------------------------------------------------------------

/// One worker slot: the process running in it now and how many ran before.
struct Slot {
    bin: &'static str,
    role: &'static str,
    prefetch: &'static str,
    generation: u32,
    /// `HOSTNAME` of the current process: its worker id (and so every lease it takes) starts
    /// with `<bin>/<host>/`, which is how the driver knows what a process holds.
    host: String,
    process: Option<ServiceProcess>,
}

struct Fleet {
    run: &'static str,
    env: HashMap<String, String>,
    slots: Vec<Slot>,
}

impl Fleet {
    /// Two import workers (prefetch 2: two jobs in hand each) and one AI worker.
    fn start(run: &'static str, env: HashMap<String, String>) -> Fleet {
        let slot = |bin, role, prefetch| Slot {
            bin,
            role,
            prefetch,
            generation: 0,
            host: String::new(),
            process: None,
        };
        let mut fleet = Fleet {
            run,
            env,
            slots: vec![
                slot("import-worker", "import-a", "2"),
                slot("import-worker", "import-b", "2"),
                slot("ai-worker", "ai", "8"),
            ],
        };
        for i in 0..fleet.slots.len() {
            fleet.launch(i);
        }
        fleet
    }

    fn launch(&mut self, i: usize) {
        let slot = &mut self.slots[i];
        slot.generation += 1;
        slot.host = format!("soak-{}-{}-{}", self.run, slot.role, slot.generation);
        let mut env = self.env.clone();
        env.insert("HOSTNAME".into(), slot.host.clone());
        env.insert("WORKER_PREFETCH".into(), slot.prefetch.into());
        slot.process = Some(ServiceProcess::start(slot.bin, &slot.host, &env));
    }

    fn name(&self, i: usize) -> String {
        format!("{}#{}", self.slots[i].role, self.slots[i].generation)
    }

    /// The `LIKE` pattern of the leases the process in slot `i` holds.
    fn lease_pattern(&self, i: usize) -> String {
        format!("{}/{}/%", self.slots[i].bin, self.slots[i].host)
    }

    /// Relaunches the workers that ended without being told to; says which and how.
    fn revive(&mut self) -> Vec<String> {
        let mut crashed = Vec::new();
        for i in 0..self.slots.len() {
            let status = self.slots[i]
                .process
                .as_mut()
                .and_then(ServiceProcess::exit_status);
            if let Some(status) = status {
                crashed.push(format!("{} exited by itself ({status})", self.name(i)));
                self.slots[i].process = None;
                self.launch(i);
            }
        }
        crashed
    }

    fn kill(&mut self, i: usize) {
        if let Some(mut p) = self.slots[i].process.take() {
            p.kill();
        }
    }

    /// SIGTERM; how long the exit took, `None` when it did not come within [`SIGTERM_LIMIT`]
    /// (the process is then killed).
    async fn terminate(&mut self, i: usize) -> Option<Duration> {
        let mut p = self.slots[i].process.take()?;
        let (mut p, took) = tokio::task::spawn_blocking(move || {
            let took = p.terminate(SIGTERM_LIMIT);
            (p, took)
        })
        .await
        .expect("terminate thread");
        if took.is_none() {
            p.kill();
        }
        took
    }

    /// Stops every worker the graceful way; the names of those that did not exit in time.
    async fn stop(&mut self) -> Vec<String> {
        let mut late = Vec::new();
        for i in 0..self.slots.len() {
            let name = self.name(i);
            if self.slots[i].process.is_some() && self.terminate(i).await.is_none() {
                late.push(name);
            }
        }
        late
    }
}

// ---------------------------------------------------------------------------
// The fault driver
// ---------------------------------------------------------------------------

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Fault {
    KillImport,
    TermImport,
    KillAi,
    TermAi,
    CutBroker,
    TerminateBackends,
}

impl Fault {
    /// Relative frequencies.
    const WEIGHTS: [(Fault, u64); 6] = [
        (Fault::KillImport, 25),
        (Fault::TermImport, 15),
        (Fault::KillAi, 8),
        (Fault::TermAi, 7),
        (Fault::CutBroker, 20),
        (Fault::TerminateBackends, 25),
    ];

    fn name(self) -> &'static str {
        match self {
            Fault::KillImport => "kill -9 import",
            Fault::TermImport => "SIGTERM import",
            Fault::KillAi => "kill -9 ai",
            Fault::TermAi => "SIGTERM ai",
            Fault::CutBroker => "cut broker",
            Fault::TerminateBackends => "terminate backends",
        }
    }

    fn draw(rng: &mut Rng) -> Fault {
        let total: u64 = Self::WEIGHTS.iter().map(|(_, w)| w).sum();
        let mut x = rng.range(0, total);
        for (fault, w) in Self::WEIGHTS {
            if x < w {
                return fault;
            }
            x -= w;
        }
        Fault::CutBroker
    }
}

struct Event {
    at: Duration,
    fault: Fault,
    /// Import jobs the fault landed on (their leases were held by its target at that moment).
    jobs: Vec<String>,
    /// AI tasks it landed on.
    tasks: usize,
}

#[derive(Default)]
struct FaultLog {
    events: Vec<Event>,
    /// Draws the guard turned down: the target held work already disturbed enough.
    refused: BTreeMap<Fault, u32>,
    /// Faults each import job took.
    job_hits: HashMap<String, u32>,
    task_hits: HashMap<String, u32>,
    /// SIGTERMed workers that did not exit within the limit.
    late_exits: Vec<String>,
    /// Workers that exited without being told to (relaunched).
    crashes: Vec<String>,
}

struct Driver {
    rng: Rng,
    db: tokio_postgres::Client,
    proxy: Arc<ChaosProxy>,
    fleet: Fleet,
    log: FaultLog,
    started: Instant,
    /// File label by job id, filled as the uploads are accepted.
    labels: Arc<Mutex<HashMap<String, String>>>,
}

impl Driver {
    /// Injects faults until the window closes or, once every upload is in, all work has ended.
    async fn run(mut self, submitted: Arc<AtomicBool>) -> (Fleet, FaultLog) {
        loop {
            let pause = self.rng.range(FAULT_EVERY_MS.0, FAULT_EVERY_MS.1);
            tokio::time::sleep(Duration::from_millis(pause)).await;
            if self.started.elapsed() >= FAULT_WINDOW
                || (submitted.load(Ordering::SeqCst) && work_left(&self.db).await == 0)
            {
                break;
            }
            for crash in self.fleet.revive() {
                println!(
                    "[{:>6.1}s] {crash}: relaunched",
                    self.started.elapsed().as_secs_f64()
                );
                self.log.crashes.push(crash);
            }
            // Up to three draws: a refused one gives way to another fault.
            for _ in 0..3 {
                let fault = Fault::draw(&mut self.rng);
                if self.inject(fault).await {
                    break;
                }
                *self.log.refused.entry(fault).or_default() += 1;
            }
        }
        (self.fleet, self.log)
    }

    /// Leases held right now, import jobs and AI tasks, matching the patterns.
    async fn held(&self, jobs: &[String], tasks: &[String]) -> (Vec<String>, Vec<String>) {
        let mut out = (Vec::new(), Vec::new());
        for (patterns, table, dest) in [(jobs, "import_jobs", &mut out.0), (tasks, "ai_tasks", &mut out.1)] {
            if patterns.is_empty() {
                continue;
            }
            let sql = format!(
                "SELECT id::text FROM {table}
                  WHERE status = 'processing' AND lease_expires_at > now() AND lease_owner LIKE ANY($1)"
            );
            if let Ok(rows) = self.db.query(&sql, &[&patterns]).await {
                dest.extend(rows.iter().map(|r| r.get::<_, String>(0)));
            }
        }
        out
    }

    /// Injects `fault` unless it would land on work already disturbed enough; true if injected.
    async fn inject(&mut self, fault: Fault) -> bool {
        // Each candidate: the slot to stop (none for the broker and the database) and the
        // `LIKE` patterns of the job and task leases the fault lands on: those of the live
        // processes (a dead worker's lease only waits to run out).
        type Candidate = (Option<usize>, Vec<String>, Vec<String>);
        let fleet = &self.fleet;
        let mut candidates: Vec<Candidate> = match fault {
            Fault::KillImport | Fault::TermImport => (0..2)
                .map(|i| (Some(i), vec![fleet.lease_pattern(i)], Vec::new()))
                .collect(),
            Fault::KillAi | Fault::TermAi => vec![(Some(2), Vec::new(), vec![fleet.lease_pattern(2)])],
            Fault::CutBroker | Fault::TerminateBackends => vec![(
                None,
                vec![fleet.lease_pattern(0), fleet.lease_pattern(1)],
                vec![fleet.lease_pattern(2)],
            )],
        };
        if self.rng.range(0, 2) == 1 {
            candidates.reverse();
        }
        // Aim: wait a little for a target holding work, so the fault lands mid-job rather
        // than on an idle process; past the wait, an idle target will do.
        let aim_until = Instant::now() + AIM;
        let (slot, jobs, tasks) = 'aim: loop {
            for (slot, jobs, tasks) in &candidates {
                let held = self.held(jobs, tasks).await;
                if !held.0.is_empty() || !held.1.is_empty() || Instant::now() >= aim_until {
                    break 'aim (*slot, held.0, held.1);
                }
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        };
        // A severed connection costs a job no attempt: the run in hand goes on and the
        // redelivered copy finds it leased, then final.
        if fault != Fault::CutBroker {
            let over = |hits: &HashMap<String, u32>, ids: &[String], max: u32| {
                ids.iter().any(|id| hits.get(id).copied().unwrap_or(0) >= max)
            };
            if over(&self.log.job_hits, &jobs, MAX_JOB_HITS)
                || over(&self.log.task_hits, &tasks, MAX_TASK_HITS)
            {
                return false;
            }
            for id in &jobs {
                *self.log.job_hits.entry(id.clone()).or_default() += 1;
            }
            for id in &tasks {
                *self.log.task_hits.entry(id.clone()).or_default() += 1;
            }
        }
        let at = self.started.elapsed();
        let mut note = String::new();
        let target = match (fault, slot) {
            (Fault::KillImport | Fault::KillAi, Some(i)) => {
                let name = self.fleet.name(i);
                self.fleet.kill(i);
                // Down for a moment, as a restarted pod would be.
                let down = self.rng.range(0, 1_500);
                tokio::time::sleep(Duration::from_millis(down)).await;
                self.fleet.launch(i);
                note = format!("restarted after {down} ms");
                name
            }
            (Fault::TermImport | Fault::TermAi, Some(i)) => {
                let name = self.fleet.name(i);
                match self.fleet.terminate(i).await {
                    Some(took) => note = format!("exited in {} ms", took.as_millis()),
                    None => {
                        note = format!("still running after {SIGTERM_LIMIT:?}: killed");
                        self.log.late_exits.push(name.clone());
                    }
                }
                self.fleet.launch(i);
                name
            }
            (Fault::CutBroker, _) => {
                self.proxy.cut();
                "every AMQP connection".to_owned()
            }
            _ => {
                let n: i64 = self
                    .db
                    .query_one(
                        "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity
                          WHERE datname = current_database() AND application_name IN ('import-worker', 'ai-worker')",
                        &[],
                    )
                    .await
                    .map(|r| r.get(0))
                    .unwrap_or(-1);
                format!("{n} worker backends")
            }
        };
        let names: Vec<String> = {
            let labels = self.labels.lock().expect("labels");
            jobs.iter()
                .map(|j| labels.get(j).cloned().unwrap_or_else(|| j.clone()))
                .collect()
        };
        println!(
            "[{:>6.1}s] {:<18} {:<22} jobs {:?} tasks {} {}",
            at.as_secs_f64(),
            fault.name(),
            target,
            names,
            tasks.len(),
            note
        );
        self.log.events.push(Event {
            at,
            fault,
            jobs,
            tasks: tasks.len(),
        });
        true
    }
}

/// Import jobs not final plus AI tasks not ended.
async fn work_left(db: &tokio_postgres::Client) -> i64 {
    db.query_one(
        "SELECT (SELECT count(*) FROM import_jobs WHERE status IN ('pending', 'processing'))
              + (SELECT count(*) FROM ai_tasks WHERE status IN ('pending', 'processing'))",
        &[],
    )
    .await
    .map(|r| r.get(0))
    .unwrap_or(i64::MAX)
}

// ---------------------------------------------------------------------------
// One run
// ---------------------------------------------------------------------------

#[derive(Debug, Clone, PartialEq, Eq)]
struct JobResult {
    status: String,
    counts: Counts,
    processed: i64,
    /// Rows in `import_errors` (a bad row may have several).
    error_records: i64,
    attempts: i32,
    lost_workers: i32,
    last_error: String,
}

impl JobResult {
    /// What must be equal between the runs (attempts and lost workers are the faults' doing).
    fn outcome(&self) -> (String, Counts, i64, i64) {
        (
            self.status.clone(),
            self.counts,
            self.processed,
            self.error_records,
        )
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
struct BatchResult {
    total: i64,
    succeeded: i64,
    failed: i64,
    skipped: i64,
    open: i64,
}

struct Outcome {
    /// By file label.
    jobs: BTreeMap<String, JobResult>,
    job_ids: BTreeMap<String, String>,
    /// `<file label>/<target>` for an import's hand-over, `api/<target>` for a posted batch.
    batches: BTreeMap<String, BatchResult>,
    /// Stored rows: counts and fingerprints of every table the corpus writes.
    facts: BTreeMap<String, String>,
    /// Problems visible without the other run: unfinished work, duplicates, leftovers.
    problems: Vec<String>,
    faults: Option<FaultLog>,
    elapsed: Duration,
}

/// Catégories, sous-catégories (two with a NAF code each) and villes the files and batches
/// refer to, written before any job.
async fn seed(app: &TestApp) -> Vec<(&'static str, Vec<i64>)> {
    let db = app.pg().await;
    db.batch_execute(
        "INSERT INTO categories (nom, slug) SELECT 'Soak Famille ' || k, 'soak-famille-' || k FROM generate_series(0, 4) k;
         INSERT INTO sous_categories (categorie_id, nom, slug)
              SELECT c.id, s.nom, s.slug FROM (VALUES ('Soak Famille 0', 'Soak Plombier', 'soak-plombier'),
                                                      ('Soak Famille 1', 'Soak Restaurant', 'soak-restaurant')) s(cat, nom, slug)
                JOIN categories c ON c.nom = s.cat;
         INSERT INTO naf_sous_categories (naf_code, sous_categorie_id)
              SELECT n.code, s.id FROM (VALUES ('43.22A', 'soak-plombier'), ('56.10A', 'soak-restaurant')) n(code, slug)
                JOIN sous_categories s ON s.slug = n.slug;
         INSERT INTO villes (nom, slug, code_postal_principal, departement, region, population)
              VALUES ('Lyon', 'lyon-69001', '69001', '69', 'Auvergne-Rhône-Alpes', 522250),
                     ('Paris', 'paris-75001', '75001', '75', 'Île-de-France', 2133111);
         INSERT INTO villes (nom, slug, code_postal_principal, departement, region, population)
              SELECT 'Soakbourg ' || k, 'soakbourg-' || k || '-07' || lpad(k::text, 3, '0'), '07' || lpad(k::text, 3, '0'),
                     '07', 'Auvergne-Rhône-Alpes', 1000 + k
                FROM generate_series(1, 20) k;",
    )
    .await
    .expect("seed");
    let ids = |sql: &'static str| {
        let db = &db;
        async move {
            db.query(sql, &[])
                .await
                .expect("seed ids")
                .iter()
                .map(|r| r.get::<_, i64>(0))
                .collect::<Vec<i64>>()
        }
    };
    vec![
        ("categorie", ids("SELECT id FROM categories ORDER BY id").await),
        (
            "sous_categorie",
            ids("SELECT id FROM sous_categories ORDER BY id").await,
        ),
        ("ville", ids("SELECT id FROM villes ORDER BY id").await),
    ]
}

async fn run(files: &[FileSpec], chaos_seed: Option<u64>) -> Outcome {
    let started = Instant::now();
    let run_name = if chaos_seed.is_some() { "chaos" } else { "clean" };
    println!("\n=== {run_name} run ===");
    let proxy = Arc::new(ChaosProxy::start(broker_addr()).await);
    let mut env: Vec<(String, String)> = SERVICE_ENV
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect();
    env.push(("AMQP_URL".into(), proxy.amqp_url()));
    // The API in-process (never faulted); the workers as the processes the driver faults.
    let app = TestApp::spawn_with(TestOptions {
        api: true,
        import_worker: false,
        ai_worker: false,
        env,
    })
    .await;
    let seeded = seed(&app).await;
    let fleet = Fleet::start(run_name, app.env().clone());
    let submitted = Arc::new(AtomicBool::new(false));
    let labels = Arc::new(Mutex::new(HashMap::new()));
    // The driver owns the fleet while it runs; the clean run keeps it here.
    let (mut fleet, driver) = match chaos_seed {
        Some(seed) => {
            let driver = Driver {
                rng: Rng(seed),
                db: app.pg().await,
                proxy: proxy.clone(),
                fleet,
                log: FaultLog::default(),
                started,
                labels: labels.clone(),
            };
            (None, Some(tokio::spawn(driver.run(submitted.clone()))))
        }
        None => (Some(fleet), None),
    };

    let mut job_ids = BTreeMap::new();
    let mut posted = BTreeMap::new();
    for (k, f) in files.iter().enumerate() {
        if chaos_seed.is_some() && k > 0 {
            tokio::time::sleep(UPLOAD_SPREAD / files.len() as u32).await;
        }
        // The posted AI batches halfway through the uploads.
        if k == files.len() / 2 {
            for (target, ids) in &seeded {
                posted.insert(post_batch(&app, target, ids).await, format!("api/{target}"));
            }
        }
        let mut fields = Vec::new();
        if f.dry_run {
            fields.push(("dry_run", "true"));
        }
        if f.generate_ai {
            fields.push(("generate_ai", "true"));
        }
        let resp = app
            .upload(
                &format!("{}.csv", f.label),
                f.body.clone().into_bytes(),
                f.import_type,
                &fields,
            )
            .await;
        let status = resp.status();
        let body: Value = resp.json().await.unwrap_or(Value::Null);
        assert_eq!(status, 202, "upload of {} answered {status}: {body}", f.label);
        let id = body["id"].as_str().expect("job id").to_owned();
        labels.lock().expect("labels").insert(id.clone(), f.label.clone());
        job_ids.insert(f.label.clone(), id);
    }
    submitted.store(true, Ordering::SeqCst);
    println!(
        "[{:>6.1}s] {} uploads and {} AI batches accepted",
        started.elapsed().as_secs_f64(),
        files.len(),
        posted.len()
    );

    let mut faults = None;
    if let Some(driver) = driver {
        let (f, log) = driver.await.expect("fault driver");
        println!(
            "[{:>6.1}s] faults stop ({} injected)",
            started.elapsed().as_secs_f64(),
            log.events.len()
        );
        fleet = Some(f);
        faults = Some(log);
    }
    let mut fleet = fleet.expect("the fleet is back");
    let db = app.pg().await;
    let mut problems = Vec::new();
    // Every slot has a live process again: the driver restarts what it stops, and a worker
    // that ended by itself is a finding.
    for i in 0..fleet.slots.len() {
        if fleet.slots[i].process.is_none() {
            fleet.launch(i);
        }
    }
    problems.extend(fleet.revive());
    let deadline = Instant::now() + SETTLE;
    let mut left = work_left(&db).await;
    while left > 0 && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(250)).await;
        problems.extend(fleet.revive());
        left = work_left(&db).await;
    }
    if left > 0 {
        problems.push(format!(
            "{left} jobs or AI tasks still open {SETTLE:?} after the faults stopped"
        ));
    }
    println!(
        "[{:>6.1}s] all work ended: {}",
        started.elapsed().as_secs_f64(),
        left == 0
    );
    // Deferred and redelivered copies of finished work are acknowledged within a retry delay
    // or two; then a graceful stop hands back anything still held, which the depths would show.
    let topology = app.topology();
    let drained = wait_for_empty_queues(&topology, Duration::from_secs(30)).await;
    if !drained {
        println!("queues not empty 30 s after the work ended");
    }
    problems.extend(fleet.revive());
    let late = fleet.stop().await;
    if !late.is_empty() {
        problems.push(format!(
            "did not exit within {SIGTERM_LIMIT:?} of SIGTERM at the end: {late:?}"
        ));
    }
    for (queue, n) in queue_depths(&topology).await {
        if n != 0 {
            problems.push(format!("{n} messages left in {queue}"));
        }
    }

    let outcome = collect(&db, &job_ids, &posted, problems, faults, started).await;
    drop(db);
    drop(app);
    outcome
}

/// Posts a forced batch of every kind for `ids`; returns its id.
async fn post_batch(app: &TestApp, target: &str, ids: &[i64]) -> String {
    let resp = app
        .client
        .post(app.url("/api/v1/ai/generations"))
        .bearer_auth(&app.admin_token)
        .json(&json!({ "target": target, "ids": ids, "force": true }))
        .send()
        .await
        .expect("batch request");
    let status = resp.status();
    let body: Value = resp.json().await.unwrap_or(Value::Null);
    assert_eq!(status, 202, "AI batch for {target}: {body}");
    body["id"].as_str().expect("batch id").to_owned()
}

async fn queue_depths(topology: &Topology) -> Vec<(String, u32)> {
    let mut out = Vec::new();
    let Ok(conn) = foxflow_messaging::connect(&direct_amqp_url(), "soak-depth").await else {
        return vec![("the broker (unreachable)".to_owned(), u32::MAX)];
    };
    for kind in QueueKind::ALL {
        for queue in [
            topology.work_queue(kind),
            topology.retry_queue(kind),
            topology.dead_queue(kind),
        ] {
            let depth = match conn.create_channel().await {
                Ok(channel) => channel
                    .queue_declare(
                        queue.as_str().into(),
                        QueueDeclareOptions::default().passive(),
                        FieldTable::default(),
                    )
                    .await
                    .map(|q| q.message_count())
                    .unwrap_or(u32::MAX),
                Err(_) => u32::MAX,
            };
            out.push((queue, depth));
        }
    }
    let _ = conn.close(200, "bye".into()).await;
    out
}

/// Waits until every queue has been empty for two samples a second apart.
async fn wait_for_empty_queues(topology: &Topology, limit: Duration) -> bool {
    let deadline = Instant::now() + limit;
    let mut empty_samples = 0;
    while Instant::now() < deadline {
        if queue_depths(topology).await.iter().all(|(_, n)| *n == 0) {
            empty_samples += 1;
            if empty_samples == 2 {
                return true;
            }
        } else {
            empty_samples = 0;
        }
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
    false
}

/// Counts and fingerprints of the stored rows: ids and timestamps left out, AI texts counted
/// (their content is the provider's).
const FACTS: &[(&str, &str)] = &[
    ("entreprises", "SELECT count(*)::text FROM entreprises"),
    (
        "entreprises fingerprint",
        "SELECT COALESCE(md5(string_agg(row(siren, siret, nom, nom_commercial, adresse, code_postal, ville_nom,
                naf_code, naf_libelle, telephone, email_contact, site_web, is_active)::text, '|' ORDER BY siren)), '-')
           FROM entreprises",
    ),
    ("categories", "SELECT count(*)::text FROM categories"),
    (
        "categories fingerprint",
        "SELECT COALESCE(md5(string_agg(row(nom, slug, description, ordre)::text, '|' ORDER BY nom)), '-') FROM categories",
    ),
    ("sous_categories", "SELECT count(*)::text FROM sous_categories"),
    (
        "sous_categories fingerprint",
        "SELECT COALESCE(md5(string_agg(row(c.nom, s.nom, s.slug, s.description, s.ordre)::text, '|' ORDER BY c.nom, s.nom)), '-')
           FROM sous_categories s JOIN categories c ON c.id = s.categorie_id",
    ),
    ("villes", "SELECT count(*)::text FROM villes"),
    (
        "villes fingerprint",
        "SELECT COALESCE(md5(string_agg(row(nom, code_postal_principal, slug, departement, region, population)::text, '|'
                ORDER BY nom, code_postal_principal)), '-') FROM villes",
    ),
    ("prolocalisations", "SELECT count(*)::text FROM prolocalisations"),
    (
        "prolocalisations fingerprint",
        "SELECT COALESCE(md5(string_agg(row(e.siren, s.slug, v.slug)::text, '|' ORDER BY e.siren, s.slug, v.slug)), '-')
           FROM prolocalisations p JOIN entreprises e ON e.id = p.entreprise_id
           JOIN sous_categories s ON s.id = p.sous_categorie_id JOIN villes v ON v.id = p.ville_id",
    ),
    (
        "AI texts on pages",
        "SELECT count(texte_long_entreprise) || '/' || count(meta_description) || '/' || count(faq) || '/' || count(avis_decrypte)
           FROM prolocalisations",
    ),
    (
        "AI texts on catégories, sous-catégories, villes",
        "SELECT (SELECT count(texte_description_ia) || '+' || count(meta_description) FROM categories) || '/' ||
                (SELECT count(texte_description_ia) || '+' || count(meta_description) FROM sous_categories) || '/' ||
                (SELECT count(texte_description_ia) || '+' || count(meta_description) FROM villes)",
    ),
    (
        "AI generations stored",
        "SELECT count(*) || ' (' || count(*) FILTER (WHERE validation <> 'rejected') || ' accepted)' FROM ai_generations",
    ),
    (
        "import error records",
        "SELECT count(*)::text FROM import_errors",
    ),
];

async fn collect(
    db: &tokio_postgres::Client,
    job_ids: &BTreeMap<String, String>,
    posted: &BTreeMap<String, String>,
    mut problems: Vec<String>,
    faults: Option<FaultLog>,
    started: Instant,
) -> Outcome {
    let label_of: HashMap<&str, &str> = job_ids.iter().map(|(l, id)| (id.as_str(), l.as_str())).collect();
    let mut jobs = BTreeMap::new();
    for r in db
        .query(
            "SELECT id::text, status, total_rows, created_rows, updated_rows, unchanged_rows, error_rows, processed_rows,
                    attempts, lost_workers, COALESCE(last_error, ''),
                    (SELECT count(*) FROM import_errors e WHERE e.job_id = j.id)
               FROM import_jobs j",
            &[],
        )
        .await
        .expect("jobs")
    {
        let id: String = r.get(0);
        let Some(label) = label_of.get(id.as_str()) else {
            problems.push(format!("a job the soak did not submit: {id}"));
            continue;
        };
        jobs.insert(
            (*label).to_owned(),
            JobResult {
                status: r.get(1),
                counts: Counts {
                    total: r.get(2),
                    created: r.get(3),
                    updated: r.get(4),
                    unchanged: r.get(5),
                    errors: r.get(6),
                },
                processed: r.get(7),
                attempts: r.get(8),
                lost_workers: r.get(9),
                last_error: r.get(10),
                error_records: r.get(11),
            },
        );
    }
    let mut batches = BTreeMap::new();
    for r in db
        .query(
            "SELECT b.id::text, b.import_id::text, b.target_type, b.total::int8,
                    count(t.id) FILTER (WHERE t.status = 'succeeded'), count(t.id) FILTER (WHERE t.status = 'failed'),
                    count(t.id) FILTER (WHERE t.status = 'skipped'),
                    count(t.id) FILTER (WHERE t.status IN ('pending', 'processing'))
               FROM ai_batches b LEFT JOIN ai_tasks t ON t.batch_id = b.id
              GROUP BY b.id",
            &[],
        )
        .await
        .expect("batches")
    {
        let id: String = r.get(0);
        let import: Option<String> = r.get(1);
        let target: String = r.get(2);
        let label = match import {
            Some(job) => format!("{}/{target}", label_of.get(job.as_str()).unwrap_or(&"?")),
            None => posted.get(&id).cloned().unwrap_or_else(|| format!("unknown batch {id}")),
        };
        let result = BatchResult {
            total: r.get(3),
            succeeded: r.get(4),
            failed: r.get(5),
            skipped: r.get(6),
            open: r.get(7),
        };
        if batches.insert(label.clone(), result).is_some() {
            problems.push(format!("two AI batches for {label}"));
        }
    }
    let mut facts = BTreeMap::new();
    for (name, sql) in FACTS {
        let value: String = db.query_one(*sql, &[]).await.expect(name).get(0);
        facts.insert((*name).to_owned(), value);
    }
    let twice: Vec<String> = db
        .query(
            "SELECT siren || ' ×' || count(*) FROM entreprises GROUP BY siren HAVING count(*) > 1 LIMIT 10",
            &[],
        )
        .await
        .expect("duplicate sirens")
        .iter()
        .map(|r| r.get(0))
        .collect();
    if !twice.is_empty() {
        problems.push(format!("entreprises written twice: {twice:?}"));
    }
    let generated_twice: i64 = db
        .query_one(
            "SELECT count(*) FROM (SELECT task_id FROM ai_generations WHERE task_id IS NOT NULL
                GROUP BY task_id HAVING count(*) FILTER (WHERE validation <> 'rejected') > 1) t",
            &[],
        )
        .await
        .expect("generations per task")
        .get(0);
    if generated_twice > 0 {
        problems.push(format!(
            "{generated_twice} AI tasks stored more than one accepted text"
        ));
    }
    let unsent: i64 = db
        .query_one("SELECT count(*) FROM outbox WHERE sent_at IS NULL", &[])
        .await
        .expect("outbox")
        .get(0);
    if unsent > 0 {
        problems.push(format!("{unsent} outbox rows never sent (or set aside)"));
    }
    Outcome {
        jobs,
        job_ids: job_ids.clone(),
        batches,
        facts,
        problems,
        faults,
        elapsed: started.elapsed(),
    }
}

// ---------------------------------------------------------------------------
// Verdict
// ---------------------------------------------------------------------------

/// Everything that differs from the files' construction or between the runs.
fn compare(files: &[FileSpec], clean: &Outcome, chaos: &Outcome) -> Vec<String> {
    let mut findings = Vec::new();
    for (run, outcome) in [("clean", clean), ("chaos", chaos)] {
        for p in &outcome.problems {
            findings.push(format!("{run}: {p}"));
        }
        for f in files {
            let Some(job) = outcome.jobs.get(&f.label) else {
                findings.push(format!("{run}: {} has no job", f.label));
                continue;
            };
            if job.status != f.expect.status() || job.counts != f.expect || job.processed != f.expect.total {
                findings.push(format!(
                    "{run}: {} ({}{}) ended {} {} (processed {}), built to end {} {} — attempts {}, lost workers {}, last error {:?}",
                    f.label,
                    f.import_type,
                    if f.dry_run { ", dry run" } else { "" },
                    job.status,
                    job.counts,
                    job.processed,
                    f.expect.status(),
                    f.expect,
                    job.attempts,
                    job.lost_workers,
                    job.last_error
                ));
            }
            let tasks = f.expected_ai_tasks();
            let key = format!("{}/{}", f.label, f.ai_target().0);
            match outcome.batches.get(&key) {
                None if tasks > 0 => {
                    findings.push(format!("{run}: {key}: no AI batch, {tasks} tasks expected"))
                }
                Some(b) if b.total != tasks || b.succeeded != tasks => findings.push(format!(
                    "{run}: {key}: AI batch {b:?}, built to have {tasks} tasks, all succeeded"
                )),
                _ => {}
            }
        }
        for (label, b) in &outcome.batches {
            if b.open > 0 || b.failed > 0 || b.succeeded + b.skipped != b.total {
                findings.push(format!("{run}: AI batch {label} not cleanly complete: {b:?}"));
            }
        }
    }
    // The faulty run against the clean one: the same files must give the same everything.
    for f in files {
        if let (Some(a), Some(b)) = (clean.jobs.get(&f.label), chaos.jobs.get(&f.label))
            && a.outcome() != b.outcome()
        {
            findings.push(format!(
                "{}: clean {} {} ({} error records), chaos {} {} ({} error records; attempts {}, lost workers {}, last error {:?})",
                f.label,
                a.status,
                a.counts,
                a.error_records,
                b.status,
                b.counts,
                b.error_records,
                b.attempts,
                b.lost_workers,
                b.last_error
            ));
        }
    }
    let batch_keys: std::collections::BTreeSet<&String> =
        clean.batches.keys().chain(chaos.batches.keys()).collect();
    for key in batch_keys {
        let (a, b) = (clean.batches.get(key), chaos.batches.get(key));
        if a != b {
            findings.push(format!("AI batch {key}: clean {a:?}, chaos {b:?}"));
        }
    }
    for (name, value) in &clean.facts {
        let other = chaos.facts.get(name).map(String::as_str).unwrap_or("-");
        if value != other {
            findings.push(format!("{name}: clean {value}, chaos {other}"));
        }
    }
    if let Some(log) = &chaos.faults {
        if !log.late_exits.is_empty() {
            findings.push(format!(
                "chaos: workers still running {SIGTERM_LIMIT:?} after SIGTERM: {:?}",
                log.late_exits
            ));
        }
        for crash in &log.crashes {
            findings.push(format!("chaos: {crash}"));
        }
    }
    findings
}

fn report(files: &[FileSpec], clean: &Outcome, chaos: &Outcome) {
    let log = chaos.faults.as_ref();
    println!("\n=== faults injected ===");
    if let Some(log) = log {
        let mut by_kind: BTreeMap<Fault, (usize, u32)> = BTreeMap::new();
        for e in &log.events {
            by_kind.entry(e.fault).or_default().0 += 1;
        }
        for (fault, n) in &log.refused {
            by_kind.entry(*fault).or_default().1 += n;
        }
        println!("{:<20} {:>8} {:>8}", "fault", "injected", "refused");
        for (fault, (n, refused)) in &by_kind {
            println!("{:<20} {n:>8} {refused:>8}", fault.name());
        }
        let landed: usize = log.events.iter().filter(|e| !e.jobs.is_empty()).count();
        let tasks: usize = log.events.iter().map(|e| e.tasks).sum();
        println!(
            "{} faults in {:.1}s: {landed} landed on running imports, {tasks} on AI tasks being generated; \
             {} jobs and {} AI tasks killed, SIGTERMed or cut off from the database (at most {} times each)",
            log.events.len(),
            log.events.last().map(|e| e.at.as_secs_f64()).unwrap_or(0.0),
            log.job_hits.len(),
            log.task_hits.len(),
            log.job_hits
                .values()
                .chain(log.task_hits.values())
                .max()
                .copied()
                .unwrap_or(0)
        );
    }
    println!("\n=== outcome per job (chaos run; = means the same as the clean run) ===");
    println!(
        "{:<8} {:<16} {:<8} {:<30} {:>5} {:>5} {:>5} vs clean",
        "file", "type", "status", "rows=created+updated+unchanged+errors", "hits", "tries", "lost"
    );
    for f in files {
        let Some(job) = chaos.jobs.get(&f.label) else {
            println!("{:<8} missing", f.label);
            continue;
        };
        let hits = chaos
            .job_ids
            .get(&f.label)
            .and_then(|id| log.and_then(|l| l.job_hits.get(id)))
            .copied()
            .unwrap_or(0);
        let same = clean.jobs.get(&f.label).map(|a| a.outcome()) == Some(job.outcome());
        println!(
            "{:<8} {:<16} {:<8} {:<30} {:>5} {:>5} {:>5} {}",
            f.label,
            format!("{}{}", f.import_type, if f.dry_run { "*" } else { "" }),
            job.status,
            job.counts.to_string(),
            hits,
            job.attempts,
            job.lost_workers,
            if same { "=" } else { "DIFFERS" }
        );
    }
    println!("(* dry run)");
    let tasks: i64 = chaos.batches.values().map(|b| b.total).sum();
    let ok: i64 = chaos.batches.values().map(|b| b.succeeded).sum();
    println!(
        "AI: {} batches, {tasks} tasks, {ok} succeeded (clean run: {} batches, {} tasks)",
        chaos.batches.len(),
        clean.batches.len(),
        clean.batches.values().map(|b| b.total).sum::<i64>()
    );
    for (name, value) in &chaos.facts {
        let same = clean.facts.get(name) == Some(value);
        println!("{name:<48} {value:<36} {}", if same { "=" } else { "DIFFERS" });
    }
    println!(
        "clean run {:.1}s, chaos run {:.1}s",
        clean.elapsed.as_secs_f64(),
        chaos.elapsed.as_secs_f64()
    );
}

fn chaos_seed() -> u64 {
    std::env::var("FOX_SOAK_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| {
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map(|d| d.as_nanos() as u64)
                .unwrap_or(1)
        })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn chaos_soak() {
    let seed = chaos_seed();
    let files = corpus();
    let rows: i64 = files.iter().map(|f| f.expect.total).sum();
    let tasks: i64 = files.iter().map(FileSpec::expected_ai_tasks).sum();
    println!(
        "chaos soak: {} files, {rows} rows, {tasks} AI tasks from imports; seed {seed} (FOX_SOAK_SEED={seed} replays the driver's choices)",
        files.len()
    );
    let clean = run(&files, None).await;
    let chaos = run(&files, Some(seed)).await;
    report(&files, &clean, &chaos);
    let findings = compare(&files, &clean, &chaos);
    if !findings.is_empty() {
        println!("\n=== findings (seed {seed}) ===");
        for f in &findings {
            println!("- {f}");
        }
    }
    assert!(
        findings.is_empty(),
        "the soak found {} problems (seed {seed}):\n{}",
        findings.len(),
        findings.join("\n")
    );
}
