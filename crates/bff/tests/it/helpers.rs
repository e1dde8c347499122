//! Test support for this crate: the BFF's database schema for `testkit::db`, a running BFF on a
//! free port over a `testkit::service::Stage` (fresh database, its own embedded bus), and reads
//! of its outbox and onboarding table.

use std::time::Duration;

use bff::{Bff, BffConfig};
use kernel::{Envelope, Subscription};
use serde_json::Value;
use storage::Db;
use testkit::db::{Schema, TestDb};
use testkit::service::Stage;

/// This service's database, for `TestDb::sqlite` and `TestDb::postgres`.
pub const SCHEMA: Schema = Schema {
    component: "bff",
    migrations: bff::MIGRATIONS,
};

/// A running BFF: HTTP on a free port, over its database and an embedded bus in a temporary
/// directory; the relay runs only when asked (tests that count outbox rows keep it stopped).
pub struct TestApp {
    pub address: String,
    pub client: reqwest::Client,
    pub bff: Bff,
    stage: Stage,
}

/// Upstream URLs for tests that never reach the services behind the BFF.
pub fn unused_upstreams() -> BffConfig {
    let nowhere = crate::stubs::unreachable_url();
    BffConfig::new(nowhere.clone(), nowhere.clone(), nowhere)
        .with_upstream_timeout(Duration::from_secs(2))
}

pub async fn spawn_app(config: BffConfig) -> TestApp {
    spawn_app_on(TestDb::sqlite(SCHEMA).await, config, false).await
}

pub async fn spawn_app_on(test_db: TestDb, config: BffConfig, workers: bool) -> TestApp {
    let stage = Stage::new(test_db).await;
    let bff = Bff::start(stage.db().clone(), stage.bus(), config)
        .await
        .expect("start bff");
    let address = stage.serve(bff.router()).await;
    if workers {
        bff.spawn_workers(stage.shutdown())
            .await
            .expect("spawn workers");
    }
    TestApp {
        address,
        client: stage.client.clone(),
        bff,
        stage,
    }
}

impl TestApp {
    /// Stops the server and workers and drops a PostgreSQL database.
    pub async fn cleanup(self) {
        self.stage.cleanup().await;
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.address)
    }

    pub fn db(&self) -> &Db {
        self.stage.db()
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
        self.stage.observe(topic).await.0
    }
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
