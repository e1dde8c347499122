//! Test support for this crate: the service's database schema for `testkit::db`, and a running
//! service on a free port over a `testkit::service::Stage` (fresh database, its own embedded
//! bus).

use std::sync::Arc;

use alianzas::{Alianzas, AlianzasConfig};
use embedded_bus::EmbeddedBus;
use kernel::Subscription;
use serde_json::Value;
use testkit::db::{Schema, TestDb};
use testkit::service::Stage;

/// This service's database, for `TestDb::sqlite` and `TestDb::postgres`.
pub const SCHEMA: Schema = Schema {
    component: "alianzas",
    migrations: alianzas::MIGRATIONS,
};

/// A running service: HTTP on a free port, its relay and consumers, over a test database and
/// an embedded bus in a temporary directory.
pub struct TestApp {
    pub address: String,
    pub client: reqwest::Client,
    pub service: Alianzas,
    pub bus: Arc<EmbeddedBus>,
    stage: Stage,
}

/// Starts the service on SQLite with its workers.
pub async fn spawn_app() -> TestApp {
    spawn_app_with(AlianzasConfig::default(), true).await
}

/// Starts the service on SQLite; `workers` says whether the relay and consumers run (tests
/// that count outbox rows keep them stopped).
pub async fn spawn_app_with(config: AlianzasConfig, workers: bool) -> TestApp {
    spawn_app_on(TestDb::sqlite(SCHEMA).await, config, workers).await
}

/// Starts the service with its workers on a fresh PostgreSQL database.
pub async fn spawn_app_on_postgres() -> TestApp {
    spawn_app_on(
        TestDb::postgres(SCHEMA).await,
        AlianzasConfig::default(),
        true,
    )
    .await
}

async fn spawn_app_on(test_db: TestDb, config: AlianzasConfig, workers: bool) -> TestApp {
    let stage = Stage::new(test_db).await;
    let service = Alianzas::start(stage.db().clone(), stage.bus(), config)
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

    /// Creates a contract through the API and returns its JSON.
    pub async fn create_contrato(&self, body: Value) -> Value {
        let (status, created) = self.post_json("/contratos", body.clone()).await;
        assert_eq!(status, 201, "create {body}");
        created
    }

    pub async fn get_json(&self, path: &str) -> (u16, Value) {
        testkit::http::get_json(&self.client, &self.url(path)).await
    }

    pub async fn post_json(&self, path: &str, body: Value) -> (u16, Value) {
        let url = self.url(path);
        testkit::http::send_json(&self.client, reqwest::Method::POST, &url, &body).await
    }
}

/// A body for `POST /contratos`.
pub fn contrato_body(partner_id: uuid::Uuid) -> Value {
    serde_json::json!({
        "partner_id": partner_id,
        "tipo": "CPA",
        "monto": "25.00",
        "moneda": "USD",
        "condiciones": "por venta",
        "fecha_inicio": "2026-01-01",
        "fecha_fin": "2099-12-31",
    })
}
