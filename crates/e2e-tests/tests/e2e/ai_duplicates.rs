//! Issue 15: an AI task runs at most once at a time, however many copies of
//! its message the broker holds. The provider is a local server speaking the
//! chat-completions wire format that answers slowly, so the copies the test
//! publishes arrive while the first delivery is still generating; it counts
//! every request it gets. And a task whose worker died is ended by the next
//! delivery: taken over, or failed `worker_lost` once too many workers died
//! holding it.

use foxflow_domain::ai_text::{Draft, TargetType, TextKind};
use foxflow_domain::messages::{Message, QueueKind};
use foxflow_messaging::{Envelope, Publisher, Topology, headers};
use foxflow_storage::ai::{self, NewBatch, TaskClaim, TaskStatus};
use foxflow_testkit::data::siren_from;
use foxflow_testkit::{TestApp, TestOptions};
use serde_json::{Value, json};
use std::collections::HashSet;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use uuid::Uuid;
use wiremock::matchers::{method, path};
use wiremock::{Mock, MockServer, Request, Respond, ResponseTemplate};

const WAIT: Duration = Duration::from_secs(60);

/// How long the stand-in takes over a page named `Lente …`: long against
/// everything else a worker does with a task (milliseconds), so "while the
/// first delivery is generating" is a wide window.
const SLOW: Duration = Duration::from_secs(8);

/// Extra copies published of each slow task's message.
const COPIES: usize = 3;

const META_TEXT: &str = "Alpha Plomberie à Lyon : plombier chauffagiste, dépannage de fuites et installation sanitaire. \
Coordonnées et avis clients.";

/// Answers every request with a valid meta description, slowly for the
/// `Lente` pages; keeps every request body.
#[derive(Clone, Default)]
struct StandIn {
    bodies: Arc<Mutex<Vec<String>>>,
}

impl StandIn {
    async fn mount(&self, server: &MockServer) {
        Mock::given(method("POST"))
            .and(path("/v1/chat/completions"))
            .respond_with(self.clone())
            .mount(server)
            .await;
    }

    fn bodies(&self) -> Vec<String> {
        self.bodies.lock().expect("requests lock").clone()
    }
}

impl Respond for StandIn {
    fn respond(&self, request: &Request) -> ResponseTemplate {
        let body = String::from_utf8_lossy(&request.body).into_owned();
        let slow = body.contains("Lente");
        self.bodies.lock().expect("requests lock").push(body);
        let answer = ResponseTemplate::new(200).set_body_json(json!({
            "id": "chatcmpl-test", "object": "chat.completion", "created": 1_764_000_000,
            "model": "gpt-test",
            "choices": [{"index": 0, "message": {"role": "assistant", "content": json!({"texte": META_TEXT}).to_string()},
                         "finish_reason": "stop"}],
            "usage": {"prompt_tokens": 400, "completion_tokens": 40, "total_tokens": 440}
        }));
        if slow { answer.set_delay(SLOW) } else { answer }
    }
}

async fn spawn(server: &MockServer, api: bool) -> TestApp {
    let env = [
        ("AI_PROVIDER", "openai".to_owned()),
        ("OPENAI_BASE_URL", server.uri()),
        ("OPENAI_API_KEY", "sk-test".to_owned()),
        ("OPENAI_MODEL", "gpt-test".to_owned()),
        ("WORKER_PREFETCH", "4".to_owned()),
        ("AI_MAX_RETRIES", "2".to_owned()),
    ];
    TestApp::spawn_with(TestOptions {
        api,
        import_worker: false,
        ai_worker: true,
        env: env.iter().map(|(k, v)| ((*k).to_owned(), v.clone())).collect(),
    })
    .await
}

/// One category, sous-catégorie and town, and one page per name; returns
/// the page ids in the order of `names`.
async fn seed(app: &TestApp, names: &[&str]) -> Vec<i64> {
    let db = app.pg().await;
    let sub: i64 = db
        .query_one(
            "WITH c AS (INSERT INTO categories (nom, slug) VALUES ('Bâtiment', 'batiment') RETURNING id)
             INSERT INTO sous_categories (categorie_id, nom, slug) SELECT id, 'Plombier', 'plombier' FROM c
             RETURNING id",
            &[],
        )
        .await
        .expect("seed the sous-catégorie")
        .get(0);
    let ville: i64 = db
        .query_one(
            "INSERT INTO villes (nom, slug, code_postal_principal, departement, region, population)
             VALUES ('Lyon', 'lyon-69003', '69003', '69', 'Auvergne-Rhône-Alpes', 522250) RETURNING id",
            &[],
        )
        .await
        .expect("seed the town")
        .get(0);
    let mut ids = Vec::new();
    for (i, name) in names.iter().enumerate() {
        let siren = siren_from(20_000 + i as u32);
        let id: i64 = db
            .query_one(
                "WITH e AS (
                    INSERT INTO entreprises (siren, nom, code_postal, ville_nom, naf_code, naf_libelle)
                    VALUES ($1, $2, '69003', 'Lyon', '43.22A', 'Travaux d''installation d''eau et de gaz')
                    RETURNING id)
                 INSERT INTO prolocalisations (entreprise_id, sous_categorie_id, ville_id)
                 SELECT e.id, $3, $4 FROM e RETURNING id",
                &[&siren, name, &sub, &ville],
            )
            .await
            .expect("seed a page")
            .get(0);
        ids.push(id);
    }
    ids
}

async fn post_batch(app: &TestApp, ids: &[i64]) -> String {
    let resp = app
        .client
        .post(app.url("/api/v1/ai/generations"))
        .bearer_auth(&app.admin_token)
        .json(&json!({"target": "prolocalisation", "ids": ids, "kinds": ["meta_description"]}))
        .send()
        .await
        .expect("POST /api/v1/ai/generations");
    assert_eq!(resp.status(), 202);
    let batch: Value = resp.json().await.expect("a batch as JSON");
    batch["id"].as_str().expect("the batch id").to_owned()
}

async fn batch_of(app: &TestApp, id: &str) -> Value {
    let (status, batch) = app.get_json(&format!("/api/v1/ai/generations/{id}")).await;
    assert_eq!(status, 200, "{batch}");
    batch
}

/// Polls until `done` holds; panics with `what` after `WAIT`.
async fn until<F: Future<Output = bool>>(what: &str, mut done: impl FnMut() -> F) {
    let deadline = Instant::now() + WAIT;
    while !done().await {
        assert!(Instant::now() < deadline, "{what}: not reached in {WAIT:?}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

async fn statuses(app: &TestApp, batch: &str) -> Vec<(Uuid, String, i32)> {
    app.pg()
        .await
        .query(
            "SELECT id, status, attempts FROM ai_tasks WHERE batch_id = $1::text::uuid ORDER BY id",
            &[&batch],
        )
        .await
        .expect("the tasks of the batch")
        .iter()
        .map(|r| (r.get(0), r.get(1), r.get(2)))
        .collect()
}

/// Ready messages in a queue (unacknowledged ones are not counted).
async fn ready(app: &TestApp, queue: &str) -> u32 {
    let conn = foxflow_messaging::connect(&app.env()["AMQP_URL"], "test-depth")
        .await
        .expect("connect to the broker");
    let channel = conn.create_channel().await.expect("a channel");
    let q = channel
        .queue_declare(
            queue.into(),
            lapin::options::QueueDeclareOptions::default().passive(),
            lapin::types::FieldTable::default(),
        )
        .await
        .expect("the queue exists");
    let _ = conn.close(200, "bye".into()).await;
    q.message_count()
}

/// Nothing ready in the work or wait queue and nothing held by the
/// worker, on two looks in a row (a copy moving from the wait queue to the
/// work queue is in neither for an instant).
async fn drained(app: &TestApp, topology: &Topology) -> bool {
    let work = topology.work_queue(QueueKind::AiGeneration);
    let held = foxflow_telemetry::metrics::queue_unacked().with_label_values(&[work.as_str()]);
    for look in 0..2 {
        if look > 0 {
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        let wait = topology.retry_queue(QueueKind::AiGeneration);
        if ready(app, &work).await + ready(app, &wait).await > 0 || held.get() > 0 {
            return false;
        }
    }
    true
}

fn copy_of(topology: &Topology, task: Uuid) -> Envelope {
    Envelope::new(
        topology.jobs_exchange(),
        QueueKind::AiGeneration.as_str(),
        Uuid::new_v4(),
        Message::ai_generation_requested(task).to_json(),
    )
    .with_i64_header(headers::ATTEMPT, 0)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn copies_of_a_task_being_generated_never_call_the_provider_twice() {
    let server = MockServer::start().await;
    let provider = StandIn::default();
    provider.mount(&server).await;
    let app = spawn(&server, true).await;
    let ids = seed(&app, &["Lente Une", "Lente Deux", "Lente Trois", "Rapide Quatre"]).await;
    let topology = app.topology();

    // Three slow tasks take three of the four prefetch slots.
    let slow = post_batch(&app, &ids[..3]).await;
    until("the three slow tasks are at the provider", || async {
        provider.bodies().len() == 3
    })
    .await;
    let tasks: Vec<Uuid> = statuses(&app, &slow).await.iter().map(|t| t.0).collect();
    assert_eq!(tasks.len(), 3);
    // Copies of each, as a relay sending a row twice or a redelivery after a
    // lost ack would make, while their first deliveries are generating.
    let publisher = Publisher::new(&app.env()["AMQP_URL"], "test", topology.clone());
    for _ in 0..COPIES {
        for task in &tasks {
            publisher.publish(&copy_of(&topology, *task)).await.unwrap();
        }
    }
    // Queued behind the copies: it gets the last slot only if no copy keeps
    // it while waiting for the task it names.
    let fast = post_batch(&app, &ids[3..]).await;
    until("the fast batch is completed", || async {
        batch_of(&app, &fast).await["status"] == "completed"
    })
    .await;
    let still: Vec<String> = statuses(&app, &slow).await.into_iter().map(|t| t.1).collect();
    assert_eq!(
        still, ["processing"; 3],
        "the fast task finished while the slow ones were still generating"
    );

    until("the slow batch is completed", || async {
        batch_of(&app, &slow).await["status"] == "completed"
    })
    .await;
    let done = batch_of(&app, &slow).await;
    assert_eq!(done["succeeded"], 3, "{done}");
    assert_eq!(batch_of(&app, &fast).await["succeeded"], 1);
    until("every copy is acknowledged", || drained(&app, &topology)).await;

    // One request per task: four requests, no two for the same prompt.
    let bodies = provider.bodies();
    assert_eq!(bodies.len(), 4, "provider requests");
    assert_eq!(bodies.iter().collect::<HashSet<_>>().len(), 4);
    // A copy that found the task held counted no attempt.
    for batch in [&slow, &fast] {
        for (id, status, attempts) in statuses(&app, batch).await {
            assert_eq!((status.as_str(), attempts), ("succeeded", 1), "task {id}");
        }
    }
    let db = app.pg().await;
    let generations: Vec<(i64, String, i64)> = db
        .query(
            "SELECT target_id, kind, count(*) FROM ai_generations GROUP BY 1, 2 ORDER BY 1",
            &[],
        )
        .await
        .unwrap()
        .iter()
        .map(|r| (r.get(0), r.get(1), r.get(2)))
        .collect();
    let expected: Vec<(i64, String, i64)> = ids
        .iter()
        .map(|id| (*id, "meta_description".to_owned(), 1))
        .collect();
    assert_eq!(generations, expected);
    let parked = ready(&app, &topology.dead_queue(QueueKind::AiGeneration)).await;
    assert_eq!(parked, 0, "nothing parked");
}

/// A batch of meta-descriptions for these pages, created in storage (no
/// API, so no relay: its messages go out only when a test sends them).
async fn meta_description_batch(conn: &mut foxflow_storage::AsyncPgConnection, ids: &[i64]) -> Uuid {
    let new = NewBatch {
        target: TargetType::Prolocalisation,
        kinds: vec![TextKind::MetaDescription],
        force: false,
        import_id: None,
        owner_id: None,
        selection: json!({ "ids": ids }),
    };
    ai::create_batch(conn, &new, ids, None).await.unwrap().id
}

/// A task whose worker died: `processing`, under a lease that has expired.
/// `lost` workers died holding it before.
async fn left_by_a_dead_worker(app: &TestApp, task: Uuid, lost: i32) {
    app.pg()
        .await
        .execute(
            "UPDATE ai_tasks SET status = 'processing', attempts = $2 + 1, started_at = now() - interval '5 minutes',
                    lease_owner = 'ai-worker/gone/00000000#dead', lease_expires_at = now() - interval '1 second',
                    lost_workers = $2
              WHERE id = $1",
            &[&task, &lost],
        )
        .await
        .expect("leave the task as a dead worker would");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_task_whose_worker_died_is_taken_over_or_failed_as_worker_lost() {
    let server = MockServer::start().await;
    let provider = StandIn::default();
    provider.mount(&server).await;
    // No API, so no relay: the messages go out only when the test sends them.
    let app = spawn(&server, false).await;
    let ids = seed(&app, &["Alpha Plomberie", "Beta Chauffage"]).await;
    let pool = foxflow_storage::build_pool(&app.database_url, 1, "test").unwrap();
    let mut conn = foxflow_storage::pool::conn(&pool).await.unwrap();
    let batch = meta_description_batch(&mut conn, &ids).await;
    let batch = batch.to_string();
    let tasks = app
        .pg()
        .await
        .query(
            "SELECT t.id FROM ai_tasks t JOIN prolocalisations p ON p.id = t.target_id
              WHERE t.batch_id = $1::text::uuid ORDER BY p.id",
            &[&batch],
        )
        .await
        .unwrap();
    let (survivor, given_up): (Uuid, Uuid) = (tasks[0].get(0), tasks[1].get(0));
    // One worker died holding the first; three (more than AI_MAX_RETRIES) the second.
    left_by_a_dead_worker(&app, survivor, 0).await;
    left_by_a_dead_worker(&app, given_up, 2).await;
    let topology = app.topology();
    let publisher = Publisher::new(&app.env()["AMQP_URL"], "test", topology.clone());
    for task in [survivor, given_up] {
        publisher.publish(&copy_of(&topology, task)).await.unwrap();
    }

    let db = app.pg().await;
    // Closed once both tasks are final, by whichever of them ended last (the
    // claim that gave up, or the survivor), right after its own commit.
    until("the batch is completed", || async {
        db.query_one(
            "SELECT completed_at IS NOT NULL FROM ai_batches WHERE id = $1::text::uuid",
            &[&batch],
        )
        .await
        .unwrap()
        .get::<_, bool>(0)
    })
    .await;
    let row = |task: Uuid| {
        let db = &db;
        async move {
            let r = db
                .query_one(
                    "SELECT status, lost_workers, last_error, lease_owner FROM ai_tasks WHERE id = $1",
                    &[&task],
                )
                .await
                .unwrap();
            (
                r.get::<_, String>(0),
                r.get::<_, i32>(1),
                r.get::<_, Option<String>>(2),
                r.get::<_, Option<String>>(3),
            )
        }
    };
    let (status, lost, _, _) = row(survivor).await;
    assert_eq!((status.as_str(), lost), ("succeeded", 1));
    let (status, lost, error, lease) = row(given_up).await;
    assert_eq!((status.as_str(), lost), ("failed", 3));
    let error = error.unwrap();
    assert!(
        error.starts_with("worker_lost:") && error.contains("stopped 3 times"),
        "{error}"
    );
    assert_eq!(lease, None, "an ended task holds no lease");
    // Only the survivor reached the provider.
    let bodies = provider.bodies();
    assert_eq!(bodies.len(), 1);
    assert!(bodies[0].contains("Alpha Plomberie"));
    until("every message is acknowledged", || drained(&app, &topology)).await;
}

/// The claim's rules, against the real database: one holder at a time, a
/// token per claim (two deliveries in one process are two claims), an
/// expired lease taken over and counted, and a task given up once more
/// workers died holding it than allowed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_claim_is_a_lease_one_holder_at_a_time() {
    let app = TestApp::spawn_with(TestOptions {
        api: false,
        import_worker: false,
        ai_worker: false,
        env: Vec::new(),
    })
    .await;
    let ids = seed(&app, &["Alpha Plomberie"]).await;
    let pool = foxflow_storage::build_pool(&app.database_url, 1, "test").unwrap();
    let mut conn = foxflow_storage::pool::conn(&pool).await.unwrap();
    let batch = meta_description_batch(&mut conn, &ids).await;
    let db = app.pg().await;
    let task: Uuid = db
        .query_one("SELECT id FROM ai_tasks WHERE batch_id = $1", &[&batch])
        .await
        .unwrap()
        .get(0);
    let lease = Duration::from_secs(60);
    let max_lost = 1;
    let claim = async |conn: &mut foxflow_storage::PooledConn, holder: &str| {
        ai::claim_task(conn, task, holder, lease, max_lost).await.unwrap()
    };
    let expire = async || {
        db.execute(
            "UPDATE ai_tasks SET lease_expires_at = now() - interval '1 second' WHERE id = $1",
            &[&task],
        )
        .await
        .unwrap();
    };
    let state = async || {
        let r = db
            .query_one(
                "SELECT status, lease_owner, lost_workers, attempts FROM ai_tasks WHERE id = $1",
                &[&task],
            )
            .await
            .unwrap();
        (
            r.get::<_, String>(0),
            r.get::<_, Option<String>>(1),
            r.get::<_, i32>(2),
            r.get::<_, i32>(3),
        )
    };

    assert!(matches!(claim(&mut conn, "w#a").await, TaskClaim::Claimed(_)));
    // Another delivery, in this process or another: the task is held.
    assert!(matches!(claim(&mut conn, "w#b").await, TaskClaim::Leased { .. }));
    // A copy cannot end or hand back what it does not hold.
    ai::release_task(&mut conn, task, "w#b", Some("not mine"))
        .await
        .unwrap();
    assert!(
        !ai::finish_claimed_task(&mut conn, task, "w#b", TaskStatus::Skipped, "not mine")
            .await
            .unwrap()
    );
    assert_eq!(state().await, ("processing".into(), Some("w#a".into()), 0, 1));

    // Its holder died: the lease runs out and the next delivery takes over.
    expire().await;
    assert!(matches!(claim(&mut conn, "w#c").await, TaskClaim::Claimed(_)));
    assert_eq!(state().await, ("processing".into(), Some("w#c".into()), 1, 2));
    // Handed back (a transient failure): free for anyone, and no one died.
    ai::release_task(&mut conn, task, "w#c", Some("HTTP 503"))
        .await
        .unwrap();
    assert_eq!(state().await, ("pending".into(), None, 1, 2));
    assert!(matches!(claim(&mut conn, "w#d").await, TaskClaim::Claimed(_)));
    assert_eq!(state().await.2, 1);

    // A second holder dies: more than `max_lost`, the task is given up.
    expire().await;
    assert!(matches!(
        claim(&mut conn, "w#e").await,
        TaskClaim::WorkerLost { lost: 2 }
    ));
    let (status, lease_owner, lost, _) = state().await;
    assert_eq!((status.as_str(), lease_owner, lost), ("failed", None, 2));
    let (error, completed): (String, bool) = {
        let r = db
            .query_one(
                "SELECT t.last_error, b.completed_at IS NOT NULL FROM ai_tasks t JOIN ai_batches b ON b.id = t.batch_id
                  WHERE t.id = $1",
                &[&task],
            )
            .await
            .unwrap();
        (r.get(0), r.get(1))
    };
    assert!(error.starts_with("worker_lost: "), "{error}");
    assert!(completed, "the claim that gave up closed the batch");
    // Later copies find it final.
    assert!(matches!(
        claim(&mut conn, "w#f").await,
        TaskClaim::Final(TaskStatus::Failed)
    ));
}

/// The store's rules, against the real database: an accepted text is written once, with its
/// history row and the task's end; a second store of the same task writes nothing; and a text
/// whose target vanished while the provider wrote it is written nowhere (`NotFound`, the task
/// left to its holder to fail).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_store_writes_once_and_nothing_for_a_vanished_target() {
    let app = TestApp::spawn_with(TestOptions {
        api: false,
        import_worker: false,
        ai_worker: false,
        env: Vec::new(),
    })
    .await;
    let ids = seed(&app, &["Alpha Plomberie", "Beta Plomberie"]).await;
    let pool = foxflow_storage::build_pool(&app.database_url, 1, "test").unwrap();
    let mut conn = foxflow_storage::pool::conn(&pool).await.unwrap();
    let batch = meta_description_batch(&mut conn, &ids).await;
    let db = app.pg().await;
    let mut tasks = Vec::new();
    for page in &ids {
        let id: Uuid = db
            .query_one(
                "SELECT id FROM ai_tasks WHERE batch_id = $1 AND target_id = $2",
                &[&batch, page],
            )
            .await
            .unwrap()
            .get(0);
        let TaskClaim::Claimed(task) = ai::claim_task(&mut conn, id, "w#a", Duration::from_secs(60), 1)
            .await
            .unwrap()
        else {
            panic!("task {id} not claimed");
        };
        tasks.push(task);
    }
    let record = |task: &ai::TaskRow| ai::GenerationRecord {
        task: task.clone(),
        provider: "template".into(),
        model: "m".into(),
        prompt_version: "v".into(),
        tokens_in: None,
        tokens_out: None,
        latency_ms: 1,
        validation: ai::Validation::Valid,
        notes: None,
        draft: Draft::Text(META_TEXT.into()),
        reason: "missing".into(),
    };
    let written = async |page: i64| -> (Option<String>, i64, String) {
        let r = db
            .query_one(
                "SELECT (SELECT meta_description::text FROM prolocalisations WHERE id = $1),
                        (SELECT count(*) FROM ai_generations WHERE target_id = $1),
                        (SELECT status FROM ai_tasks WHERE batch_id = $2 AND target_id = $1)",
                &[&page, &batch],
            )
            .await
            .unwrap();
        (r.get(0), r.get(1), r.get(2))
    };

    assert!(ai::store_generation(&mut conn, &record(&tasks[0])).await.unwrap());
    assert_eq!(
        written(ids[0]).await,
        (Some(META_TEXT.into()), 1, "succeeded".into())
    );
    // Again (a copy that took over after a lease ran out): the task is final, nothing more.
    assert!(!ai::store_generation(&mut conn, &record(&tasks[0])).await.unwrap());
    assert_eq!(written(ids[0]).await.1, 1);

    db.execute("DELETE FROM prolocalisations WHERE id = $1", &[&ids[1]])
        .await
        .unwrap();
    assert!(matches!(
        ai::store_generation(&mut conn, &record(&tasks[1])).await,
        Err(foxflow_storage::StorageError::NotFound)
    ));
    assert_eq!(written(ids[1]).await, (None, 0, "processing".into()));
}
