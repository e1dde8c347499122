//! Test support for this crate: fresh databases on both backends, a running BFF on a free port
//! with its own embedded bus, problem+json assertions, and waiting on the bus with a deadline.

use std::sync::Arc;
use std::time::Duration;

use bff::{Bff, BffConfig};
use embedded_bus::EmbeddedBus;
use kernel::shutdown::ShutdownTrigger;
use kernel::{Bus, Envelope, SubscribeOptions, Subscription};
use serde_json::Value;
use storage::Db;
use tempfile::TempDir;

/// How long any awaited effect may take before the test fails.
pub const DEADLINE: Duration = Duration::from_secs(20);

pub const PROBLEM_JSON: &str = "application/problem+json";

/// A migrated, empty database of this service that removes itself on `cleanup`.
pub struct TestDb {
    pub db: Db,
    postgres_url: Option<String>,
    _dir: Option<TempDir>,
}

impl TestDb {
    pub async fn sqlite() -> TestDb {
        let dir = tempfile::tempdir().expect("temp dir");
        let url = format!("sqlite://{}", dir.path().join("bff.db").display());
        let db = Db::connect(&url).await.expect("open sqlite");
        db.migrate_with("bff", bff::MIGRATIONS)
            .await
            .expect("migrate sqlite");
        TestDb {
            db,
            postgres_url: None,
            _dir: Some(dir),
        }
    }

    /// A fresh PostgreSQL database. Fails (never skips) when the server is unreachable.
    pub async fn postgres() -> TestDb {
        let url = testkit::postgres::fresh_database_url("bff");
        let db = Db::connect(&url).await.unwrap_or_else(|error| {
            panic!("PostgreSQL is required for these tests ({url}): {error}")
        });
        db.migrate_with("bff", bff::MIGRATIONS)
            .await
            .expect("migrate postgres");
        TestDb {
            db,
            postgres_url: Some(url),
            _dir: None,
        }
    }

    /// Closes the database and drops it on PostgreSQL.
    pub async fn cleanup(self) {
        self.db.close().await;
        if let Some(url) = self.postgres_url {
            use sqlx::Connection;
            let name = url.rsplit('/').next().unwrap_or_default().to_owned();
            let admin = format!("{}/postgres", testkit::postgres::server_url());
            if let Ok(mut conn) = sqlx::PgConnection::connect(&admin).await {
                let drop = format!("DROP DATABASE IF EXISTS \"{name}\" WITH (FORCE)");
                let _ = sqlx::query(&drop).execute(&mut conn).await;
                let _ = conn.close().await;
            }
        }
    }
}

/// A running BFF: HTTP on a free port, over its database and an embedded bus in a temporary
/// directory; the relay runs only when asked (tests that count outbox rows keep it stopped).
pub struct TestApp {
    pub address: String,
    pub client: reqwest::Client,
    pub bff: Bff,
    pub bus: Arc<EmbeddedBus>,
    trigger: ShutdownTrigger,
    test_db: TestDb,
    _dir: TempDir,
}

/// Upstream URLs for tests that never reach the services behind the BFF.
pub fn unused_upstreams() -> BffConfig {
    let nowhere = crate::stubs::unreachable_url();
    BffConfig::new(nowhere.clone(), nowhere.clone(), nowhere)
        .with_upstream_timeout(Duration::from_secs(2))
}

pub async fn spawn_app(config: BffConfig) -> TestApp {
    spawn_app_on(TestDb::sqlite().await, config, false).await
}

pub async fn spawn_app_on(test_db: TestDb, config: BffConfig, workers: bool) -> TestApp {
    let dir = tempfile::tempdir().expect("temp dir");
    let bus = Arc::new(
        EmbeddedBus::open(&dir.path().join("bus.db"))
            .await
            .expect("open bus"),
    );
    let bff = Bff::start(test_db.db.clone(), bus.clone(), config)
        .await
        .expect("start bff");
    let (trigger, shutdown) = kernel::shutdown::channel();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let address = format!("http://{}", listener.local_addr().expect("local addr"));
    tokio::spawn(web::serve(listener, bff.router(), shutdown.clone().wait()));
    if workers {
        bff.spawn_workers(shutdown).await.expect("spawn workers");
    }
    TestApp {
        address,
        client: reqwest::Client::new(),
        bff,
        bus,
        trigger,
        test_db,
        _dir: dir,
    }
}

impl TestApp {
    /// Stops the server and workers and drops a PostgreSQL database.
    pub async fn cleanup(self) {
        self.trigger.fire();
        self.test_db.cleanup().await;
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.address)
    }

    pub fn db(&self) -> &Db {
        &self.test_db.db
    }

    pub async fn get(&self, path: &str) -> reqwest::Response {
        self.client.get(self.url(path)).send().await.expect("GET")
    }

    pub async fn post_partner(&self, body: &Value, key: Option<&str>) -> reqwest::Response {
        let mut request = self.client.post(self.url("/api/v1/partners")).json(body);
        if let Some(key) = key {
            request = request.header("Idempotency-Key", key);
        }
        request.send().await.expect("POST")
    }

    /// Starts an onboarding and returns its 202 body.
    pub async fn start_onboarding(&self, body: &Value) -> Value {
        let response = self.post_partner(body, None).await;
        assert_eq!(response.status(), 202, "onboarding of {body}");
        response.json().await.expect("json")
    }

    /// Subscribes a fresh observer group to `topic` (it sees every message of the topic).
    pub async fn observe(&self, topic: &str) -> Box<dyn Subscription> {
        let group = format!("test-{}", uuid::Uuid::new_v4().simple());
        self.bus
            .subscribe(topic, &group, SubscribeOptions::default())
            .await
            .expect("subscribe observer")
    }
}

/// Waits for the first message on `subscription` that `accept` takes, acking every message
/// seen; fails after the deadline.
pub async fn next_matching(
    subscription: &mut Box<dyn Subscription>,
    what: &str,
    mut accept: impl FnMut(&Envelope) -> bool,
) -> Envelope {
    let deadline = tokio::time::Instant::now() + DEADLINE;
    loop {
        let delivery = tokio::time::timeout_at(deadline, subscription.next())
            .await
            .unwrap_or_else(|_| panic!("timed out waiting for {what}"))
            .expect("bus delivery");
        let envelope = delivery.envelope.clone();
        delivery.ack().await.expect("ack");
        if accept(&envelope) {
            return envelope;
        }
    }
}

/// Asserts a problem+json answer with `status` and `codigo`; returns its body.
pub async fn expect_problem(response: reqwest::Response, status: u16, codigo: &str) -> Value {
    assert_eq!(response.status().as_u16(), status);
    let content_type = response
        .headers()
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_owned();
    assert_eq!(content_type, PROBLEM_JSON);
    let body: Value = response.json().await.expect("problem json");
    assert_eq!(body["codigo"], codigo, "{body}");
    assert_eq!(body["status"], status);
    body
}

/// The `campo` of every `errores` entry of a problem.
pub fn campos(problem: &Value) -> Vec<String> {
    problem["errores"]
        .as_array()
        .map(|errores| {
            errores
                .iter()
                .map(|e| e["campo"].as_str().unwrap_or_default().to_owned())
                .collect()
        })
        .unwrap_or_default()
}

/// Every outbox row still unpublished: `(topic, envelope)`.
pub async fn outbox_rows(db: &Db) -> Vec<(String, Envelope)> {
    let rows: Vec<(String, String)> = storage::with_db!(db, conn => sqlx::query_as(
        "SELECT topic, envelope FROM outbox ORDER BY outbox_id",
    )
    .fetch_all(conn)
    .await)
    .expect("read outbox");
    rows.into_iter()
        .map(|(topic, envelope)| (topic, serde_json::from_str(&envelope).expect("envelope")))
        .collect()
}

/// How many onboardings are stored.
pub async fn onboarding_count(db: &Db) -> i64 {
    storage::with_db!(db, conn => sqlx::query_scalar("SELECT COUNT(*) FROM onboarding")
        .fetch_one(conn)
        .await)
    .expect("count onboardings")
}
