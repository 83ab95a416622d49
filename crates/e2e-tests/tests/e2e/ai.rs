//! AI generation end to end: `POST /api/v1/ai/generations` → outbox →
//! RabbitMQ → ai-worker → provider → validator → PostgreSQL. The `openai`
//! provider talks to a local wiremock server speaking the chat-completions
//! wire format; entities are seeded directly in the test database.
//!
//! Over 600 lines on purpose: the AI path end to end shares one wiremock provider and its
//! request matchers across every scenario; splitting it would copy them.

use foxflow_domain::ai_text::{Draft, FaqEntry, TextKind, check};
use foxflow_testkit::data::siren_from;
use foxflow_testkit::{TestApp, TestOptions};
use serde_json::{Value, json};
use std::collections::VecDeque;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use wiremock::matchers::{bearer_token, method, path};
use wiremock::{Mock, MockServer, Request, Respond, ResponseTemplate};

const WAIT: Duration = Duration::from_secs(45);

const LONG_TEXT: &str = "L'entreprise Alpha Plomberie exerce à Lyon dans le domaine de la plomberie et du chauffage. \
Elle intervient auprès des particuliers comme des professionnels pour l'installation de salles de bains, \
le remplacement de chauffe-eau et le dépannage de fuites.\n\nSur cette page, vous trouverez ses coordonnées, \
son secteur d'intervention dans le département du Rhône et les avis publiés par ses clients, afin de choisir \
un artisan de confiance près de chez vous.";

const META_TEXT: &str = "Alpha Plomberie à Lyon : plombier chauffagiste, dépannage de fuites et installation sanitaire. \
Coordonnées et avis clients.";

async fn spawn(env: &[(&str, &str)]) -> TestApp {
    TestApp::spawn_with(TestOptions {
        api: true,
        import_worker: false,
        ai_worker: true,
        env: env
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect(),
    })
    .await
}

fn openai_env<'a>(server: &'a MockServer, extra: &[(&'a str, &'a str)]) -> Vec<(&'a str, String)> {
    let mut env = vec![
        ("AI_PROVIDER", "openai".to_owned()),
        // Without `/v1`: the provider adds it.
        ("OPENAI_BASE_URL", server.uri()),
        ("OPENAI_API_KEY", "sk-test".to_owned()),
        ("OPENAI_MODEL", "gpt-test".to_owned()),
    ];
    env.extend(extra.iter().map(|(k, v)| (*k, (*v).to_owned())));
    env
}

async fn spawn_openai(server: &MockServer, extra: &[(&str, &str)]) -> TestApp {
    let env = openai_env(server, extra);
    let pairs: Vec<(&str, &str)> = env.iter().map(|(k, v)| (*k, v.as_str())).collect();
    spawn(&pairs).await
}

/// One category, one sous-catégorie, two towns, and one page per name (an
/// entreprise each), alternating towns. Returns the page ids in order.
async fn seed(app: &TestApp, names: &[String]) -> Vec<i64> {
    let db = app.pg().await;
    let cat: i64 = db
        .query_one(
            "INSERT INTO categories (nom, slug) VALUES ('Bâtiment', 'batiment') RETURNING id",
            &[],
        )
        .await
        .unwrap()
        .get(0);
    let sub: i64 = db
        .query_one(
            "INSERT INTO sous_categories (categorie_id, nom, slug) VALUES ($1, 'Plombier', 'plombier') RETURNING id",
            &[&cat],
        )
        .await
        .unwrap()
        .get(0);
    db.execute(
        "INSERT INTO naf_sous_categories (naf_code, sous_categorie_id) VALUES ('43.22A', $1)",
        &[&sub],
    )
    .await
    .unwrap();
    let villes: Vec<i64> = db
        .query(
            "INSERT INTO villes (nom, slug, code_postal_principal, departement, region, population)
             VALUES ('Lyon', 'lyon-69003', '69003', '69', 'Auvergne-Rhône-Alpes', 522250),
                    ('Annecy', 'annecy-74000', '74000', '74', 'Auvergne-Rhône-Alpes', 130721)
             RETURNING id",
            &[],
        )
        .await
        .unwrap()
        .iter()
        .map(|r| r.get(0))
        .collect();
    let sirens: Vec<String> = (0..names.len()).map(|i| siren_from(10_000 + i as u32)).collect();
    let rows = db
        .query(
            "WITH e AS (
                INSERT INTO entreprises (siren, nom, code_postal, ville_nom, naf_code, naf_libelle, adresse)
                SELECT s, n, '69003', 'Lyon', '43.22A', 'Travaux d''installation d''eau et de gaz en tous locaux',
                       i || ' rue de la République'
                  FROM unnest($1::text[], $2::text[]) WITH ORDINALITY AS t(s, n, i)
                RETURNING id)
             INSERT INTO prolocalisations (entreprise_id, sous_categorie_id, ville_id, nb_avis, note_moyenne)
             SELECT e.id, $3::int8, CASE WHEN e.id % 2 = 0 THEN $4::int8 ELSE $5::int8 END, (e.id % 4)::int,
                    CASE WHEN e.id % 4 = 0 THEN NULL ELSE 3.6 + (e.id % 3) * 0.6 END
               FROM e ORDER BY e.id
             RETURNING id",
            &[&sirens, &names.to_vec(), &sub, &villes[0], &villes[1]],
        )
        .await
        .unwrap();
    let mut ids: Vec<i64> = rows.iter().map(|r| r.get(0)).collect();
    ids.sort_unstable();
    ids
}

async fn post_batch(app: &TestApp, body: Value) -> Value {
    let resp = app
        .client
        .post(app.url("/api/v1/ai/generations"))
        .bearer_auth(&app.admin_token)
        .json(&body)
        .send()
        .await
        .unwrap();
    let status = resp.status().as_u16();
    let location = resp
        .headers()
        .get("location")
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    let batch: Value = resp.json().await.unwrap();
    assert_eq!(status, 202, "{batch}");
    assert_eq!(
        location.as_deref(),
        Some(format!("/api/v1/ai/generations/{}", batch["id"].as_str().unwrap()).as_str())
    );
    batch
}

/// Polls the batch until no task is pending; panics after `WAIT`.
async fn wait_batch(app: &TestApp, id: &str) -> Value {
    let deadline = Instant::now() + WAIT;
    loop {
        let (status, batch) = app.get_json(&format!("/api/v1/ai/generations/{id}")).await;
        assert_eq!(status, 200, "{batch}");
        if batch["pending"] == 0 {
            assert_eq!(batch["status"], "completed", "{batch}");
            return batch;
        }
        assert!(Instant::now() < deadline, "batch {id} still running: {batch}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

fn completion(content: &str) -> ResponseTemplate {
    ResponseTemplate::new(200).set_body_json(json!({
        "id": "chatcmpl-test", "object": "chat.completion", "created": 1_764_000_000,
        "model": "gpt-test-2026-01",
        "choices": [{"index": 0, "message": {"role": "assistant", "content": content}, "finish_reason": "stop"}],
        "usage": {"prompt_tokens": 420, "completion_tokens": 96, "total_tokens": 516}
    }))
}

fn texte(t: &str) -> String {
    json!({ "texte": t }).to_string()
}

/// Answers scripted responses first, then whatever `fallback` says for the
/// request; remembers when each request arrived.
#[derive(Clone)]
struct Script {
    steps: Arc<Mutex<VecDeque<ResponseTemplate>>>,
    fallback: Arc<dyn Fn(&str) -> ResponseTemplate + Send + Sync>,
    seen: Arc<Mutex<Vec<Instant>>>,
}

impl Script {
    fn new(
        steps: Vec<ResponseTemplate>,
        fallback: impl Fn(&str) -> ResponseTemplate + Send + Sync + 'static,
    ) -> Self {
        Script {
            steps: Arc::new(Mutex::new(steps.into())),
            fallback: Arc::new(fallback),
            seen: Arc::new(Mutex::new(Vec::new())),
        }
    }

    fn requests(&self) -> Vec<Instant> {
        self.seen.lock().unwrap().clone()
    }

    async fn mount(&self, server: &MockServer) {
        Mock::given(method("POST"))
            .and(path("/v1/chat/completions"))
            .and(bearer_token("sk-test"))
            .respond_with(self.clone())
            .mount(server)
            .await;
    }
}

impl Respond for Script {
    fn respond(&self, request: &Request) -> ResponseTemplate {
        self.seen.lock().unwrap().push(Instant::now());
        if let Some(step) = self.steps.lock().unwrap().pop_front() {
            return step;
        }
        (self.fallback)(&String::from_utf8_lossy(&request.body))
    }
}

/// The good answer for whichever kind the prompt asks for.
fn good_answer(prompt: &str) -> ResponseTemplate {
    if prompt.contains("meta description") {
        completion(&texte(META_TEXT))
    } else {
        completion(&texte(LONG_TEXT))
    }
}

async fn task_row(app: &TestApp, batch: &str) -> (String, i32, Option<String>) {
    let row = app
        .pg()
        .await
        .query_one(
            "SELECT status, attempts, last_error FROM ai_tasks WHERE batch_id = $1::text::uuid",
            &[&batch],
        )
        .await
        .unwrap();
    (row.get(0), row.get(1), row.get(2))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_good_answer_is_stored_with_its_provenance() {
    let server = MockServer::start().await;
    let script = Script::new(vec![], good_answer);
    script.mount(&server).await;
    let app = spawn_openai(&server, &[]).await;
    let ids = seed(&app, &["Alpha Plomberie".to_owned()]).await;

    let batch = post_batch(
        &app,
        json!({"target": "prolocalisation", "ids": ids, "kinds": ["texte_long", "meta_description"]}),
    )
    .await;
    assert_eq!(batch["total"], 2);
    let done = wait_batch(&app, batch["id"].as_str().unwrap()).await;
    assert_eq!(
        (done["succeeded"].as_i64(), done["failed"].as_i64()),
        (Some(2), Some(0)),
        "{done}"
    );

    let db = app.pg().await;
    let page = db
        .query_one(
            "SELECT texte_long_entreprise, meta_description::text, date_derniere_generation_ia IS NOT NULL
               FROM prolocalisations WHERE id = $1",
            &[&ids[0]],
        )
        .await
        .unwrap();
    assert_eq!(page.get::<_, Option<String>>(0).as_deref(), Some(LONG_TEXT));
    assert_eq!(page.get::<_, Option<String>>(1).as_deref(), Some(META_TEXT));
    assert!(page.get::<_, bool>(2));
    let g = db
        .query_one(
            "SELECT provider, model, prompt_version, tokens_in, tokens_out, latency_ms, validation, validation_notes
               FROM ai_generations WHERE target_id = $1 AND kind = 'texte_long'",
            &[&ids[0]],
        )
        .await
        .unwrap();
    assert_eq!(g.get::<_, String>(0), "openai");
    assert_eq!(g.get::<_, String>(1), "gpt-test-2026-01");
    assert_eq!(g.get::<_, String>(2), "v1/texte_long");
    assert_eq!(
        (g.get::<_, Option<i32>>(3), g.get::<_, Option<i32>>(4)),
        (Some(420), Some(96))
    );
    assert!(g.get::<_, i32>(5) >= 0);
    assert_eq!(g.get::<_, String>(6), "valid");
    assert_eq!(g.get::<_, Option<String>>(7), None);

    // The page reads back over HTTP with its texts and their provenance.
    let (status, page) = app
        .get_json(&format!("/api/v1/prolocalisations/{}", ids[0]))
        .await;
    assert_eq!(status, 200, "{page}");
    assert_eq!(page["texte_long_entreprise"], LONG_TEXT);
    assert_eq!(page["entreprise"]["nom"], "Alpha Plomberie");
    assert_eq!(page["ville"]["nom"], "Annecy");
    let kinds: Vec<&str> = page["generations"]
        .as_array()
        .unwrap()
        .iter()
        .map(|g| g["kind"].as_str().unwrap())
        .collect();
    assert_eq!(kinds, ["meta_description", "texte_long"]);
    assert_eq!(page["generations"][1]["model"], "gpt-test-2026-01");
    assert_eq!(script.requests().len(), 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_answer_failing_validation_is_repaired_or_failed_with_the_reason() {
    let server = MockServer::start().await;
    let script = Script::new(vec![], |prompt| {
        if prompt.contains("Alpha") {
            // Form only: wrapping quotes, a lower-case start, no final point.
            completion(&texte(
                "  « les clients d'Alpha Plomberie saluent la ponctualité de l'équipe, la propreté du chantier et des devis clairs »  ",
            ))
        } else {
            completion(&texte(
                "Aucune information disponible sur les avis de cette entreprise pour le moment.",
            ))
        }
    });
    script.mount(&server).await;
    let app = spawn_openai(&server, &[]).await;
    let ids = seed(&app, &["Alpha Plomberie".to_owned(), "Beta Chauffage".to_owned()]).await;

    let batch = post_batch(
        &app,
        json!({"target": "prolocalisation", "ids": ids, "kinds": ["avis_decrypte"]}),
    )
    .await;
    let done = wait_batch(&app, batch["id"].as_str().unwrap()).await;
    assert_eq!(
        (done["succeeded"].as_i64(), done["failed"].as_i64()),
        (Some(1), Some(1)),
        "{done}"
    );
    let failure = &done["failures"][0];
    assert_eq!(failure["target_id"], ids[1]);
    let reason = failure["last_error"].as_str().unwrap();
    assert!(reason.contains("empty_phrase"), "{reason}");

    let db = app.pg().await;
    let alpha: Option<String> = db
        .query_one(
            "SELECT avis_decrypte FROM prolocalisations WHERE id = $1",
            &[&ids[0]],
        )
        .await
        .unwrap()
        .get(0);
    assert_eq!(
        alpha.as_deref(),
        Some(
            "Les clients d'Alpha Plomberie saluent la ponctualité de l'équipe, la propreté du chantier et des devis clairs."
        )
    );
    let beta: Option<String> = db
        .query_one(
            "SELECT avis_decrypte FROM prolocalisations WHERE id = $1",
            &[&ids[1]],
        )
        .await
        .unwrap()
        .get(0);
    assert_eq!(beta, None, "a rejected text is never stored on the page");
    let history: Vec<(i64, String, Option<String>)> = db
        .query(
            "SELECT target_id, validation, validation_notes FROM ai_generations ORDER BY target_id",
            &[],
        )
        .await
        .unwrap()
        .iter()
        .map(|r| (r.get(0), r.get(1), r.get(2)))
        .collect();
    assert_eq!(history[0].1, "repaired");
    assert!(history[0].2.as_deref().unwrap().contains("starts_with_capital"));
    assert_eq!(history[1].1, "rejected");
    assert!(history[1].2.as_deref().unwrap().contains("empty_phrase"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_500_twice_then_a_200_succeeds_on_the_third_attempt() {
    let server = MockServer::start().await;
    let script = Script::new(
        vec![ResponseTemplate::new(500), ResponseTemplate::new(502)],
        good_answer,
    );
    script.mount(&server).await;
    let app = spawn_openai(&server, &[("AI_MAX_RETRIES", "2"), ("AI_RETRY_DELAY", "1s")]).await;
    let ids = seed(&app, &["Alpha Plomberie".to_owned()]).await;

    let batch = post_batch(
        &app,
        json!({"target": "prolocalisation", "ids": ids, "kinds": ["meta_description"]}),
    )
    .await;
    let id = batch["id"].as_str().unwrap();
    let done = wait_batch(&app, id).await;
    assert_eq!(done["succeeded"], 1, "{done}");
    assert_eq!(script.requests().len(), 3);
    let (status, attempts, _) = task_row(&app, id).await;
    assert_eq!((status.as_str(), attempts), ("succeeded", 3));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_provider_failing_past_the_retries_fails_the_task_with_the_reason() {
    let server = MockServer::start().await;
    let script = Script::new(vec![], |_| ResponseTemplate::new(503));
    script.mount(&server).await;
    let app = spawn_openai(&server, &[("AI_MAX_RETRIES", "1"), ("AI_RETRY_DELAY", "1s")]).await;
    let ids = seed(&app, &["Alpha Plomberie".to_owned()]).await;

    let batch = post_batch(
        &app,
        json!({"target": "prolocalisation", "ids": ids, "kinds": ["meta_description"]}),
    )
    .await;
    let id = batch["id"].as_str().unwrap();
    let done = wait_batch(&app, id).await;
    assert_eq!(done["failed"], 1, "{done}");
    let (_, attempts, error) = task_row(&app, id).await;
    assert_eq!(attempts, 2);
    let error = error.unwrap();
    assert!(
        error.contains("gave up after 1 retries") && error.contains("HTTP 503"),
        "{error}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_timeout_is_retried() {
    let server = MockServer::start().await;
    let script = Script::new(
        vec![completion(&texte(META_TEXT)).set_delay(Duration::from_secs(3))],
        good_answer,
    );
    script.mount(&server).await;
    let app = spawn_openai(
        &server,
        &[
            ("OPENAI_TIMEOUT", "1s"),
            ("AI_MAX_RETRIES", "2"),
            ("AI_RETRY_DELAY", "1s"),
        ],
    )
    .await;
    let ids = seed(&app, &["Alpha Plomberie".to_owned()]).await;

    let batch = post_batch(
        &app,
        json!({"target": "prolocalisation", "ids": ids, "kinds": ["meta_description"]}),
    )
    .await;
    let id = batch["id"].as_str().unwrap();
    let done = wait_batch(&app, id).await;
    assert_eq!(done["succeeded"], 1, "{done}");
    assert_eq!(script.requests().len(), 2);
    let (_, attempts, _) = task_row(&app, id).await;
    assert_eq!(attempts, 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_429_with_retry_after_pauses_the_budget_without_counting_a_failure() {
    let server = MockServer::start().await;
    let script = Script::new(
        vec![ResponseTemplate::new(429).insert_header("Retry-After", "2")],
        good_answer,
    );
    script.mount(&server).await;
    // No retries at all: a 429 counted as a failure would fail the task.
    let app = spawn_openai(&server, &[("AI_MAX_RETRIES", "0")]).await;
    let ids = seed(&app, &["Alpha Plomberie".to_owned()]).await;

    let batch = post_batch(
        &app,
        json!({"target": "prolocalisation", "ids": ids, "kinds": ["meta_description"]}),
    )
    .await;
    let id = batch["id"].as_str().unwrap();
    let done = wait_batch(&app, id).await;
    assert_eq!(done["succeeded"], 1, "{done}");
    let seen = script.requests();
    assert_eq!(seen.len(), 2);
    let gap = seen[1] - seen[0];
    assert!(
        gap >= Duration::from_millis(1900),
        "the retry came {gap:?} after the 429"
    );
    // The pause is shared through PostgreSQL, for every replica.
    let paused: bool = app
        .pg()
        .await
        .query_one(
            "SELECT paused_until IS NOT NULL FROM rate_limits WHERE key = 'queue:ai_generation'",
            &[],
        )
        .await
        .unwrap()
        .get(0);
    assert!(paused);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_task_handed_back_more_often_than_the_delivery_limit_still_succeeds() {
    // Twelve 429s in a row: more hand-backs than the quorum queue's delivery
    // limit (10). Each must return the task to the queue as a new message,
    // not as a requeue the broker counts, or the task would be dead-lettered
    // while still `pending`.
    let server = MockServer::start().await;
    let script = Script::new(
        (0..12)
            .map(|_| ResponseTemplate::new(429).insert_header("Retry-After", "0"))
            .collect(),
        good_answer,
    );
    script.mount(&server).await;
    let app = spawn_openai(&server, &[("AI_MAX_RETRIES", "0")]).await;
    let ids = seed(&app, &["Gamma Menuiserie".to_owned()]).await;
    let batch = post_batch(
        &app,
        json!({"target": "prolocalisation", "ids": ids, "kinds": ["meta_description"]}),
    )
    .await;
    let id = batch["id"].as_str().unwrap();
    let done = wait_batch(&app, id).await;
    assert_eq!(done["succeeded"], 1, "{done}");
    assert_eq!(script.requests().len(), 13);
    let (status, _, _) = task_row(&app, id).await;
    assert_eq!(status, "succeeded");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_template_batch_of_200_pages_succeeds_and_passes_the_validator() {
    let app = spawn(&[
        ("AI_PROVIDER", "template"),
        ("WORKER_PREFETCH", "8"),
        // The hook below is on loopback, refused unless allowed.
        ("WEBHOOK_ALLOW_PRIVATE_NETWORKS", "127.0.0.0/8"),
    ])
    .await;
    let names: Vec<String> = (0..200).map(|i| format!("Entreprise {i} SARL")).collect();
    let ids = seed(&app, &names).await;
    // A hook, to count the completions: eight tasks end at once, and the batch
    // must still be completed exactly once, by whichever ends last.
    let hook = app
        .client
        .post(app.url("/api/v1/webhooks"))
        .bearer_auth(&app.admin_token)
        .json(&json!({"url": "http://127.0.0.1:9/hook", "events": ["ai_batch.completed"]}))
        .send()
        .await
        .unwrap();
    assert_eq!(hook.status(), 201);

    let batch = post_batch(&app, json!({"target": "prolocalisation", "ids": ids})).await;
    assert_eq!(batch["total"], 800, "four kinds per page: {batch}");
    let done = wait_batch(&app, batch["id"].as_str().unwrap()).await;
    assert_eq!(
        (
            done["succeeded"].as_i64(),
            done["failed"].as_i64(),
            done["skipped"].as_i64()
        ),
        (Some(800), Some(0), Some(0)),
        "{done}"
    );

    let db = app.pg().await;
    let rows = db
        .query(
            "SELECT texte_long_entreprise, meta_description::text, faq, avis_decrypte, date_derniere_generation_ia IS NOT NULL
               FROM prolocalisations ORDER BY id",
            &[],
        )
        .await
        .unwrap();
    assert_eq!(rows.len(), 200);
    for row in &rows {
        let text = |i: usize| Draft::Text(row.get::<_, Option<String>>(i).expect("text stored"));
        assert!(check(TextKind::TexteLong, &text(0)).is_empty());
        assert!(check(TextKind::MetaDescription, &text(1)).is_empty());
        let faq: Vec<FaqEntry> = serde_json::from_value(row.get::<_, Option<Value>>(2).unwrap()).unwrap();
        assert!(check(TextKind::Faq, &Draft::Faq(faq)).is_empty());
        assert!(check(TextKind::AvisDecrypte, &text(3)).is_empty());
        assert!(row.get::<_, bool>(4));
    }
    let providers: Vec<(String, String, i64)> = db
        .query(
            "SELECT provider, validation, count(*) FROM ai_generations GROUP BY 1, 2",
            &[],
        )
        .await
        .unwrap()
        .iter()
        .map(|r| (r.get(0), r.get(1), r.get(2)))
        .collect();
    assert_eq!(providers, [("template".to_owned(), "valid".to_owned(), 800)]);

    // Asked again without `force`: everything is present, valid and recent.
    let again = post_batch(
        &app,
        json!({"target": "prolocalisation", "ids": &ids[..10], "kinds": ["texte_long"]}),
    )
    .await;
    let done = wait_batch(&app, again["id"].as_str().unwrap()).await;
    assert_eq!(done["skipped"], 10, "{done}");
    // With `force`, regenerated.
    let forced = post_batch(
        &app,
        json!({"target": "prolocalisation", "ids": &ids[..3], "kinds": ["texte_long"], "force": true}),
    )
    .await;
    let done = wait_batch(&app, forced["id"].as_str().unwrap()).await;
    assert_eq!(done["succeeded"], 3, "{done}");

    // Three batches, three completions, each announced once.
    let announced: Vec<(String, i64)> = db
        .query(
            "SELECT payload->'data'->>'id', count(*) FROM webhook_deliveries
              WHERE event = 'ai_batch.completed' GROUP BY 1",
            &[],
        )
        .await
        .unwrap()
        .iter()
        .map(|r| (r.get(0), r.get(1)))
        .collect();
    assert_eq!(announced.len(), 3, "{announced:?}");
    assert!(announced.iter().all(|(_, n)| *n == 1), "{announced:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn other_targets_and_bad_requests() {
    let app = spawn(&[]).await;
    let ids = seed(&app, &["Alpha Plomberie".to_owned()]).await;
    let db = app.pg().await;
    let ville: i64 = db
        .query_one("SELECT min(id) FROM villes", &[])
        .await
        .unwrap()
        .get(0);

    // Towns, by filter: both of them, two kinds each.
    let batch = post_batch(&app, json!({"target": "ville", "filter": {}})).await;
    assert_eq!(batch["total"], 4, "{batch}");
    let done = wait_batch(&app, batch["id"].as_str().unwrap()).await;
    assert_eq!(done["succeeded"], 4, "{done}");
    let text: Option<String> = db
        .query_one("SELECT texte_description_ia FROM villes WHERE id = $1", &[&ville])
        .await
        .unwrap()
        .get(0);
    assert!(text.unwrap().contains("Lyon"));
    for target in ["categorie", "sous_categorie"] {
        let batch = post_batch(&app, json!({"target": target, "filter": {}})).await;
        let done = wait_batch(&app, batch["id"].as_str().unwrap()).await;
        assert_eq!(done["succeeded"], 2, "{target}: {done}");
    }

    let bad = [
        (json!({"target": "page", "ids": ids}), 422, "invalid_target"),
        (
            json!({"target": "ville", "ids": [ville], "kinds": ["faq"]}),
            422,
            "invalid_kind",
        ),
        (
            json!({"target": "prolocalisation", "ids": [999_999]}),
            422,
            "unknown_ids",
        ),
        (json!({"target": "prolocalisation"}), 422, "invalid_selection"),
        (
            json!({"target": "prolocalisation", "ids": ids, "filter": {}}),
            422,
            "invalid_selection",
        ),
        (
            json!({"target": "prolocalisation", "ids": "all"}),
            400,
            "invalid_json",
        ),
    ];
    for (body, status, code) in bad {
        let resp = app
            .client
            .post(app.url("/api/v1/ai/generations"))
            .bearer_auth(&app.admin_token)
            .json(&body)
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status().as_u16(), status, "{body}");
        let err: Value = resp.json().await.unwrap();
        assert_eq!(err["error"]["code"], code, "{body}: {err}");
    }
    // Viewers read but cannot start generation; batches of others are hidden from staff.
    let viewer = app.token("viewer-1", "viewer").await;
    let resp = app
        .client
        .post(app.url("/api/v1/ai/generations"))
        .bearer_auth(&viewer)
        .json(&json!({"target": "ville", "filter": {}}))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 403);
    let staff = app.token("staff-1", "staff").await;
    let resp = app
        .client
        .get(app.url(&format!(
            "/api/v1/ai/generations/{}",
            batch["id"].as_str().unwrap()
        )))
        .bearer_auth(&staff)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 404);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_directory_reads_back_paginated() {
    let app = TestApp::spawn_with(TestOptions {
        import_worker: false,
        ..Default::default()
    })
    .await;
    let names: Vec<String> = (0..7).map(|i| format!("Entreprise {i} SARL")).collect();
    let ids = seed(&app, &names).await;

    let (status, page) = app.get_json("/api/v1/entreprises?per_page=3&page=3").await;
    assert_eq!(status, 200, "{page}");
    assert_eq!(
        (
            page["total"].as_i64(),
            page["page"].as_i64(),
            page["per_page"].as_i64()
        ),
        (Some(7), Some(3), Some(3))
    );
    assert_eq!(page["items"].as_array().unwrap().len(), 1);
    let (_, found) = app
        .get_json("/api/v1/entreprises?q=entreprise%203&naf_code=4322a")
        .await;
    assert_eq!(found["total"], 1, "{found}");
    let siren = found["items"][0]["siren"].as_str().unwrap().to_owned();
    let (status, one) = app.get_json(&format!("/api/v1/entreprises/{siren}")).await;
    assert_eq!(status, 200, "{one}");
    assert_eq!(one["nom"], "Entreprise 3 SARL");
    assert_eq!(one["pages"].as_array().unwrap().len(), 1);
    assert_eq!(app.get_json("/api/v1/entreprises/732829321").await.0, 400);
    assert_eq!(app.get_json("/api/v1/entreprises/732829320").await.0, 404);

    let (_, villes) = app.get_json("/api/v1/villes?departement=74").await;
    assert_eq!(villes["total"], 1, "{villes}");
    assert_eq!(villes["items"][0]["nom"], "Annecy");
    let (_, cats) = app.get_json("/api/v1/categories").await;
    assert_eq!(cats["items"][0]["nb_sous_categories"], 1, "{cats}");
    let cat = cats["items"][0]["id"].as_i64().unwrap();
    let (_, subs) = app
        .get_json(&format!("/api/v1/sous-categories?categorie_id={cat}"))
        .await;
    assert_eq!(subs["items"][0]["naf_codes"], json!(["43.22A"]), "{subs}");

    let (status, page) = app
        .get_json(&format!("/api/v1/prolocalisations/{}", ids[0]))
        .await;
    assert_eq!(status, 200);
    assert_eq!(page["texte_long_entreprise"], Value::Null);
    assert_eq!(page["generations"], json!([]));
    assert_eq!(app.get_json("/api/v1/prolocalisations/0").await.0, 404);
    assert_eq!(app.get_json("/api/v1/prolocalisations/abc").await.0, 404);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_import_hands_over_exactly_what_it_touched() {
    let app = spawn(&[("WORKER_PREFETCH", "4")]).await;
    let names: Vec<String> = (0..3).map(|i| format!("Entreprise {i} SARL")).collect();
    let pages = seed(&app, &names).await;
    let db = app.pg().await;
    let job: uuid::Uuid = db
        .query_one(
            "INSERT INTO import_jobs (id, import_type, status, file_name, file_size, file_sha256, generate_ai)
             VALUES (gen_random_uuid(), 'entreprises', 'success', 'e.csv', 1, '00', true) RETURNING id",
            &[],
        )
        .await
        .unwrap()
        .get(0);
    // The first page through its entreprise, the second directly, one town; not the third page.
    db.execute(
        "INSERT INTO import_touched (job_id, target_type, target_id)
         SELECT $1::uuid, 'entreprise', entreprise_id FROM prolocalisations WHERE id = $2::int8
         UNION ALL SELECT $1::uuid, 'prolocalisation', $3::int8
         UNION ALL SELECT $1::uuid, 'ville', min(id) FROM villes",
        &[&job, &pages[0], &pages[1]],
    )
    .await
    .unwrap();

    // What the import worker calls once the import has committed.
    let pool = foxflow_storage::build_pool(&app.database_url, 1, "test").unwrap();
    let mut conn = foxflow_storage::pool::conn(&pool).await.unwrap();
    let batches = foxflow_storage::ai::create_batch_for_import(&mut conn, job, None, None)
        .await
        .unwrap();
    let summary: Vec<(&str, i64)> = batches
        .iter()
        .map(|b| (b.target_type.as_str(), b.total))
        .collect();
    assert_eq!(summary, [("prolocalisation", 8), ("ville", 2)]);
    for b in &batches {
        let done = wait_batch(&app, &b.id.to_string()).await;
        assert_eq!(done["succeeded"], done["total"], "{done}");
        assert_eq!(done["import_id"], job.to_string());
    }
    let untouched: Option<String> = db
        .query_one(
            "SELECT texte_long_entreprise FROM prolocalisations WHERE id = $1",
            &[&pages[2]],
        )
        .await
        .unwrap()
        .get(0);
    assert_eq!(untouched, None);

    // The same selection through the API: present, valid and recent, so skipped.
    let again = post_batch(&app, json!({"target": "prolocalisation", "import_id": job})).await;
    assert_eq!(again["total"], 8);
    let done = wait_batch(&app, again["id"].as_str().unwrap()).await;
    assert_eq!(done["skipped"], 8, "{done}");
}

/// Issue 7's "done when", through uploads: companies imported with
/// `generate_ai=true` get validated French text on their pages.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn uploads_with_generate_ai_fill_their_pages() {
    let app = TestApp::spawn_with(TestOptions {
        ai_worker: true,
        ..Default::default()
    })
    .await;
    let wait = std::time::Duration::from_secs(20);
    for (name, body, kind) in [
        ("c.csv", "nom\nArtisans du bâtiment\n", "categories"),
        (
            "s.csv",
            "nom,categorie,naf_codes\nPlombier,Artisans du bâtiment,43.22A\n",
            "sous_categories",
        ),
        ("v.csv", "nom,code_postal\nLyon,69003\n", "villes"),
    ] {
        let id = app.submit(name, body.as_bytes().to_vec(), kind).await;
        assert_eq!(app.wait_final(&id, wait).await["status"], "success");
    }
    let csv = "siren,nom,naf_code,code_postal,ville_nom\n732829320,Alpha Plomberie,43.22A,69003,Lyon\n";
    let resp = app
        .upload(
            "e.csv",
            csv.as_bytes().to_vec(),
            "entreprises",
            &[("generate_ai", "true")],
        )
        .await;
    assert_eq!(resp.status(), 202);
    let id = resp.json::<Value>().await.unwrap()["id"]
        .as_str()
        .unwrap()
        .to_owned();
    assert_eq!(app.wait_final(&id, wait).await["status"], "success");

    let db = app.pg().await;
    let page: i64 = db
        .query_one("SELECT id FROM prolocalisations", &[])
        .await
        .unwrap()
        .get(0);
    let deadline = std::time::Instant::now() + wait;
    let body = loop {
        let (status, body) = app.get_json(&format!("/api/v1/prolocalisations/{page}")).await;
        assert_eq!(status, 200, "{body}");
        if !body["texte_long_entreprise"].is_null() && !body["date_derniere_generation_ia"].is_null() {
            break body;
        }
        if std::time::Instant::now() >= deadline {
            let state: Vec<String> = db
                .query(
                    "SELECT 'touched ' || target_type || ' ' || target_id FROM import_touched
                     UNION ALL SELECT 'task ' || kind || ' ' || status || ' ' || coalesce(last_error, '') FROM ai_tasks
                     UNION ALL SELECT 'outbox ' || routing_key || ' sent=' || (sent_at IS NOT NULL) FROM outbox",
                    &[],
                )
                .await
                .unwrap()
                .iter()
                .map(|r| r.get(0))
                .collect();
            panic!("the page was never filled: {body}\n{state:#?}");
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    };
    let text = body["texte_long_entreprise"].as_str().unwrap();
    assert!(
        text.contains("Alpha Plomberie") && text.contains("Lyon"),
        "{text}"
    );
}
