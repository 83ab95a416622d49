//! The GCRA against the real PostgreSQL: each test gets its own migrated
//! database, and "replicas" are limiters with their own connection pools.

use foxflow_config::Rate;
use foxflow_ratelimit::{ClusterLimiter, Denied};
use foxflow_storage::DbPool;
use std::time::{Duration, Instant};

fn server_url() -> String {
    std::env::var("FOX_TEST_PG").unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432".to_owned())
}

/// A migrated database, dropped with the guard.
struct TestDb {
    url: String,
    name: String,
}

impl TestDb {
    async fn new() -> TestDb {
        let name = format!("foxflow_rl_{}", uuid::Uuid::new_v4().simple());
        let url = format!("{}/{name}", server_url());
        foxflow_storage::migrate::ensure_database(&url)
            .await
            .expect("create test database");
        foxflow_storage::migrate::run_migrations(&url)
            .await
            .expect("migrate test database");
        TestDb { url, name }
    }

    /// A pool of its own: one replica's view of the database.
    fn replica(&self) -> DbPool {
        foxflow_storage::build_pool(&self.url, 4, "ratelimit-test").expect("pool")
    }
}

impl Drop for TestDb {
    fn drop(&mut self) {
        let name = self.name.clone();
        let admin = format!("{}/postgres", server_url());
        let _ = std::thread::spawn(move || {
            let Ok(rt) = tokio::runtime::Builder::new_current_thread().enable_all().build() else {
                return;
            };
            rt.block_on(async move {
                if let Ok((client, conn)) = tokio_postgres::connect(&admin, tokio_postgres::NoTls).await {
                    tokio::spawn(conn);
                    let _ = client
                        .execute(&format!("DROP DATABASE IF EXISTS \"{name}\" WITH (FORCE)"), &[])
                        .await;
                }
            });
        })
        .join();
    }
}

fn rate(s: &str) -> Rate {
    s.parse().expect("rate")
}

fn key(prefix: &str) -> String {
    format!("test:{prefix}:{}", uuid::Uuid::new_v4().simple())
}

#[tokio::test]
async fn the_burst_is_n_then_the_wait_is_one_interval() {
    let db = TestDb::new().await;
    let k = key("burst");
    let a = ClusterLimiter::new(db.replica(), k.clone(), rate("5/h"));
    let b = ClusterLimiter::new(db.replica(), k.clone(), rate("5/h"));
    for i in 0..5 {
        let l = if i % 2 == 0 { &a } else { &b };
        assert_eq!(l.try_acquire().await, Ok(()), "unit {i} of the burst");
    }
    for l in [&a, &b] {
        let wait = l.try_acquire().await.expect_err("the sixth is refused");
        // One interval (720 s) after the first unit, minus the time spent.
        assert!(
            wait > Duration::from_secs(700) && wait <= Duration::from_secs(720),
            "{wait:?}"
        );
    }
    assert_eq!(a.key(), k);
}

#[tokio::test]
async fn replicas_racing_share_one_budget() {
    let db = TestDb::new().await;
    let k = key("race");
    let replicas: Vec<ClusterLimiter> = (0..4)
        .map(|_| ClusterLimiter::new(db.replica(), k.clone(), rate("10/h")))
        .collect();
    let mut tasks = tokio::task::JoinSet::new();
    for l in &replicas {
        for _ in 0..10 {
            let l = l.clone();
            tasks.spawn(async move { l.try_acquire().await.is_ok() });
        }
    }
    let mut granted = 0;
    while let Some(ok) = tasks.join_next().await {
        granted += usize::from(ok.expect("task"));
    }
    assert_eq!(granted, 10, "40 attempts on 4 replicas, one budget of 10");
}

#[tokio::test]
async fn after_the_burst_acquire_follows_the_steady_rate() {
    let db = TestDb::new().await;
    let k = key("steady");
    let a = ClusterLimiter::new(db.replica(), k.clone(), rate("20/s"));
    let b = ClusterLimiter::new(db.replica(), k.clone(), rate("20/s"));
    let start = Instant::now();
    // The burst, and whatever the clock earns back while we take it (one
    // unit per 50 ms), until the first refusal.
    let mut taken = 0;
    while a.try_acquire().await.is_ok() {
        taken += 1;
        assert!(taken < 100, "the budget never runs out");
    }
    assert!(taken >= 20, "a burst of only {taken}");
    // Ten more, from two replicas at once, come at one per 50 ms.
    let (ra, rb) = (a.clone(), b.clone());
    let ta = tokio::spawn(async move {
        for _ in 0..5 {
            ra.acquire().await;
        }
    });
    let tb = tokio::spawn(async move {
        for _ in 0..5 {
            rb.acquire().await;
        }
    });
    ta.await.unwrap();
    tb.await.unwrap();
    // Over any span E the GCRA grants at most burst + E/T units.
    let elapsed = start.elapsed();
    let floor = Duration::from_millis(50) * (taken + 10 - 20);
    assert!(
        elapsed + Duration::from_millis(20) >= floor,
        "{} units past the burst took only {elapsed:?}",
        taken + 10 - 20
    );
    assert!(elapsed < Duration::from_secs(3), "too slow: {elapsed:?}");
}

#[tokio::test]
async fn pause_for_stops_every_replica_then_resumes_without_a_burst() {
    let db = TestDb::new().await;
    let k = key("pause");
    let a = ClusterLimiter::new(db.replica(), k.clone(), rate("10/s"));
    let b = ClusterLimiter::new(db.replica(), k.clone(), rate("10/s"));
    assert_eq!(b.try_acquire().await, Ok(()));
    let paused_at = Instant::now();
    a.pause_for(Duration::from_secs(1)).await;
    for l in [&a, &b] {
        let wait = l.try_acquire().await.expect_err("paused");
        assert!(
            wait > Duration::from_millis(800) && wait <= Duration::from_millis(1000),
            "{wait:?}"
        );
    }
    // A shorter pause does not shorten the first.
    b.pause_for(Duration::from_millis(100)).await;
    let wait = b.try_acquire().await.expect_err("still paused");
    assert!(wait > Duration::from_millis(700), "{wait:?}");

    b.acquire().await;
    assert!(
        paused_at.elapsed() >= Duration::from_millis(990),
        "started {:?} into a 1 s pause",
        paused_at.elapsed()
    );
    // The budget comes back at the steady rate (one per 100 ms), not as a
    // burst of 10.
    let mut more = 0;
    for _ in 0..10 {
        more += usize::from(b.try_acquire().await.is_ok());
    }
    assert!(more <= 3, "{more} units right after the pause");
}

#[tokio::test]
async fn off_is_unlimited_but_still_honours_a_pause() {
    let db = TestDb::new().await;
    let k = key("off");
    let a = ClusterLimiter::new(db.replica(), k.clone(), Rate::Off);
    let b = ClusterLimiter::new(db.replica(), k.clone(), Rate::Off);
    for _ in 0..50 {
        assert_eq!(a.try_acquire().await, Ok(()));
    }
    a.pause_for(Duration::from_millis(400)).await;
    let wait = b.try_acquire().await.expect_err("paused");
    assert!(wait <= Duration::from_millis(400), "{wait:?}");
    let start = Instant::now();
    b.acquire().await;
    assert!(
        start.elapsed() >= Duration::from_millis(250),
        "{:?}",
        start.elapsed()
    );
    assert_eq!(b.try_acquire().await, Ok(()));
}

#[tokio::test]
async fn an_unreachable_database_fails_closed() {
    // Nothing listens on port 1: every checkout fails at once.
    let pool = foxflow_storage::build_pool("postgres://postgres@127.0.0.1:1/none", 1, "ratelimit-test")
        .expect("pool");
    let limited = ClusterLimiter::new(pool.clone(), key("down"), rate("5/m"));
    assert!(matches!(limited.check().await, Err(Denied::Unavailable(_))));
    assert_eq!(limited.try_acquire().await, Err(Duration::from_secs(1)));
    let gate = tokio::time::timeout(Duration::from_millis(500), limited.acquire()).await;
    assert!(gate.is_err(), "a queue gate must not open without the database");
    // With no limit there is nothing to enforce.
    let unlimited = ClusterLimiter::new(pool, key("down-off"), Rate::Off);
    assert_eq!(unlimited.try_acquire().await, Ok(()));
    // A pause that cannot be recorded is still honoured by this process.
    unlimited.pause_for(Duration::from_secs(5)).await;
    assert!(unlimited.try_acquire().await.is_err());
}

#[tokio::test]
async fn metrics_report_waits_and_budget() {
    let db = TestDb::new().await;
    let k = key("metrics");
    let l = ClusterLimiter::new(db.replica(), k.clone(), rate("3/h"));
    let registry = prometheus::Registry::new();
    l.register(&registry).expect("register");
    l.register(&registry).expect("registering twice is harmless");
    assert_eq!(l.try_acquire().await, Ok(()));
    // Read back the way Prometheus would: the text format.
    let value = |name: &str| {
        let mut buf = Vec::new();
        prometheus::Encoder::encode(&prometheus::TextEncoder::new(), &registry.gather(), &mut buf).unwrap();
        let prefix = format!("{name}{{key=\"{k}\"}} ");
        String::from_utf8(buf)
            .unwrap()
            .lines()
            .find_map(|l| l.strip_prefix(&prefix).map(|v| v.parse::<f64>().unwrap()))
    };
    assert_eq!(value("foxflow_rate_limiter_budget"), Some(2.0));
    assert_eq!(l.try_acquire().await, Ok(()));
    assert_eq!(l.try_acquire().await, Ok(()));
    assert!(l.try_acquire().await.is_err());
    assert_eq!(value("foxflow_rate_limiter_waits_total"), Some(1.0));
    assert_eq!(value("foxflow_rate_limiter_acquired_total"), Some(3.0));
    assert_eq!(value("foxflow_rate_limiter_budget"), Some(0.0));
    assert!(foxflow_ratelimit::metrics_text().contains(&k));
}
