//! Test support for this crate: the service's database schema for `testkit::db`, and a running
//! service on a free port over a `testkit::service::Stage` (fresh database, its own embedded
//! bus).

use std::sync::Arc;

use embedded_bus::EmbeddedBus;
use integraciones::Integraciones;
use kernel::Subscription;
use testkit::db::{Schema, TestDb};
use testkit::service::Stage;

/// This service's database, for `TestDb::sqlite` and `TestDb::postgres`.
pub const SCHEMA: Schema = Schema {
    component: "integraciones",
    migrations: integraciones::MIGRATIONS,
};

/// A running service: HTTP on a free port, its relay and consumers, over a test database and
/// an embedded bus in a temporary directory.
pub struct TestApp {
    pub address: String,
    pub client: reqwest::Client,
    pub service: Integraciones,
    pub bus: Arc<EmbeddedBus>,
    stage: Stage,
}

pub async fn spawn_app() -> TestApp {
    spawn_app_with(true).await
}

/// Starts the service on SQLite; `workers` says whether the relay and consumers run (tests
/// that count outbox rows keep them stopped).
pub async fn spawn_app_with(workers: bool) -> TestApp {
    spawn_app_on(TestDb::sqlite(SCHEMA).await, workers).await
}

/// Starts the service with its relay and consumers on a fresh PostgreSQL database.
pub async fn spawn_app_on_postgres() -> TestApp {
    spawn_app_on(TestDb::postgres(SCHEMA).await, true).await
}

async fn spawn_app_on(test_db: TestDb, workers: bool) -> TestApp {
    let stage = Stage::new(test_db).await;
    let service = Integraciones::start(stage.db().clone(), stage.bus())
        .await
        .expect("start service");
    let address = stage.serve(service.router()).await;
    if workers {
        service
            .spawn_workers(stage.shutdown())
            .await
            .expect("spawn workers");
    }
    TestApp {
        address,
        client: stage.client.clone(),
        service,
        bus: stage.bus(),
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

    /// Subscribes a fresh observer group to `topic` (it sees every message of the topic).
    pub async fn observe(&self, topic: &str) -> Box<dyn Subscription> {
        self.stage.observe(topic).await.0
    }

    /// Creates a partner through the API and returns its JSON.
    pub async fn create_partner(&self, body: serde_json::Value) -> serde_json::Value {
        let response = self
            .client
            .post(self.url("/api/v1/partners"))
            .json(&body)
            .send()
            .await
            .expect("request");
        assert_eq!(response.status(), 201, "create {body}");
        response.json().await.expect("json")
    }

    /// GETs `path` and returns its JSON body, whatever the status.
    pub async fn get_json(&self, path: &str) -> serde_json::Value {
        testkit::http::get_json(&self.client, &self.url(path))
            .await
            .1
    }

    /// Waits until the relay has published every outbox row.
    pub async fn outbox_drained(&self) {
        testkit::eventually(testkit::DEADLINE, "the outbox to drain", || async {
            let backlog = storage::outbox::backlog(self.service.db()).await.unwrap();
            (backlog == 0).then_some(())
        })
        .await;
    }
}
