//! Test support for this crate: the service's database schema for `testkit::db`, a running
//! service on a free port over a `testkit::service::Stage` (fresh database, its own embedded
//! bus), and events to feed it.

use std::sync::Arc;

use compliance::{Compliance, ComplianceConfig};
use contracts::contratos::ContratoCreado;
use contracts::partners::PartnerCreado;
use embedded_bus::EmbeddedBus;
use kernel::{Amount, Bus, Envelope, EnvelopeContext, Subscription};
use storage::Db;
use testkit::db::{Schema, TestDb};
use testkit::duplicating_bus::DuplicatingBus;
use testkit::service::Stage;
use uuid::Uuid;

/// This service's database, for `TestDb::sqlite` and `TestDb::postgres`.
pub const SCHEMA: Schema = Schema {
    component: "compliance",
    migrations: compliance::MIGRATIONS,
};

/// A running service: HTTP on a free port, optionally its relay and consumers, over a fresh
/// database and an embedded bus in a temporary directory.
pub struct TestApp {
    pub address: String,
    pub client: reqwest::Client,
    pub service: Compliance,
    pub bus: Arc<EmbeddedBus>,
    stage: Stage,
}

/// Starts the service on SQLite with its relay and consumers.
pub async fn spawn_app() -> TestApp {
    spawn_app_with(ComplianceConfig::default(), true).await
}

/// Starts the service on SQLite; `workers` says whether the relay and consumers run (tests
/// that count outbox rows keep them stopped).
pub async fn spawn_app_with(config: ComplianceConfig, workers: bool) -> TestApp {
    spawn_app_on(TestDb::sqlite(SCHEMA).await, config, workers).await
}

pub async fn spawn_app_on(test_db: TestDb, config: ComplianceConfig, workers: bool) -> TestApp {
    spawn(test_db, config, workers, false).await
}

/// Starts the service on SQLite with consumers that get every message twice (same event id),
/// as at-least-once delivery may do. Tests publish and observe on the plain bus.
pub async fn spawn_duplicating_app() -> TestApp {
    let test_db = TestDb::sqlite(SCHEMA).await;
    spawn(test_db, ComplianceConfig::default(), true, true).await
}

async fn spawn(
    test_db: TestDb,
    config: ComplianceConfig,
    workers: bool,
    duplicating: bool,
) -> TestApp {
    let stage = Stage::new(test_db).await;
    let service_bus: Arc<dyn Bus> = if duplicating {
        Arc::new(DuplicatingBus::new(stage.bus()))
    } else {
        stage.bus()
    };
    let service = Compliance::start(stage.db().clone(), service_bus, config)
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

    pub fn db(&self) -> &Db {
        self.service.db()
    }

    /// Subscribes a fresh observer group to `topic` (it sees every message of the topic).
    pub async fn observe(&self, topic: &str) -> Box<dyn Subscription> {
        self.stage.observe(topic).await.0
    }

    pub async fn publish(&self, topic: &str, envelope: &Envelope) {
        testkit::bus::publish(self.bus.as_ref(), topic, envelope).await;
    }

    /// Makes `partner_id` known to compliance by handing its `PartnerCreado` to the handler.
    pub async fn know_partner(&self, partner_id: Uuid, email: &str) {
        self.service
            .partner_creado_handler()
            .handle(&partner_creado(partner_id, email))
            .await
            .expect("PartnerCreado handled");
    }

    pub async fn get_json(&self, path: &str) -> (u16, serde_json::Value) {
        testkit::http::get_json(&self.client, &self.url(path)).await
    }

    pub async fn send_json(
        &self,
        method: reqwest::Method,
        path: &str,
        body: &serde_json::Value,
    ) -> (u16, serde_json::Value) {
        testkit::http::send_json(&self.client, method, &self.url(path), body).await
    }
}

/// A `PartnerCreado` envelope as integraciones publishes it.
pub fn partner_creado(partner_id: Uuid, email: &str) -> Envelope {
    Envelope::wrap(
        "integraciones",
        &PartnerCreado {
            partner_id,
            nombre: "Ana Compliance".into(),
            tipo: "AFILIADO".into(),
            email: email.into(),
            onboarding_id: Some(Uuid::now_v7()),
            terminos: None,
        },
        EnvelopeContext::default(),
    )
}

/// A pending contract for `partner_id` worth `monto` in `moneda`.
pub fn contrato(partner_id: Uuid, monto: &str, moneda: &str) -> ContratoCreado {
    ContratoCreado {
        contrato_id: Uuid::now_v7(),
        partner_id,
        onboarding_id: Some(Uuid::now_v7()),
        tipo: "CPA".into(),
        monto: monto.parse::<Amount>().expect("amount"),
        moneda: moneda.into(),
        condiciones: Some("pago mensual".into()),
        fecha_inicio: "2025-01-01".into(),
        fecha_fin: Some("2025-12-31".into()),
        estado: "pendiente".into(),
    }
}

/// `event` wrapped as alianzas publishes it, inside a saga.
pub fn in_saga<E: kernel::IntegrationEvent>(event: &E) -> Envelope {
    let mut envelope = Envelope::wrap("alianzas", event, EnvelopeContext::default());
    envelope.sagaid = Some(Uuid::now_v7());
    envelope
}
