//! Test support for this crate: fresh databases on both backends, a running service on a free
//! port with its own embedded bus, events to feed it, and polling with a deadline (never a
//! sleep).

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use compliance::{Compliance, ComplianceConfig};
use contracts::contratos::ContratoCreado;
use contracts::partners::PartnerCreado;
use embedded_bus::EmbeddedBus;
use kernel::shutdown::ShutdownTrigger;
use kernel::{Amount, Bus, Envelope, EnvelopeContext, SubscribeOptions, Subscription};
use storage::Db;
use tempfile::TempDir;
use uuid::Uuid;

/// How long any awaited effect may take before the test fails.
pub const DEADLINE: Duration = Duration::from_secs(20);

/// A migrated, empty database of this service that removes itself on `cleanup`.
pub struct TestDb {
    pub db: Db,
    postgres_name: Option<String>,
    _dir: Option<TempDir>,
}

impl TestDb {
    pub async fn sqlite() -> TestDb {
        let dir = tempfile::tempdir().expect("temp dir");
        let url = format!("sqlite://{}", dir.path().join("compliance.db").display());
        let db = Db::connect(&url).await.expect("open sqlite");
        db.migrate_with("compliance", compliance::MIGRATIONS)
            .await
            .expect("migrate sqlite");
        TestDb {
            db,
            postgres_name: None,
            _dir: Some(dir),
        }
    }

    /// A fresh PostgreSQL database. Fails (never skips) when the server is unreachable.
    pub async fn postgres() -> TestDb {
        let url = testkit::postgres::fresh_database_url("compliance");
        let name = url.rsplit('/').next().unwrap_or_default().to_owned();
        let db = Db::connect(&url).await.unwrap_or_else(|error| {
            panic!("PostgreSQL is required for these tests ({url}): {error}")
        });
        db.migrate_with("compliance", compliance::MIGRATIONS)
            .await
            .expect("migrate postgres");
        TestDb {
            db,
            postgres_name: Some(name),
            _dir: None,
        }
    }

    /// Closes the database and drops it on PostgreSQL.
    pub async fn cleanup(self) {
        self.db.close().await;
        if let Some(name) = self.postgres_name {
            use sqlx::Connection;
            let admin = format!("{}/postgres", testkit::postgres::server_url());
            if let Ok(mut conn) = sqlx::PgConnection::connect(&admin).await {
                let drop = format!("DROP DATABASE IF EXISTS \"{name}\" WITH (FORCE)");
                let _ = sqlx::query(&drop).execute(&mut conn).await;
                let _ = conn.close().await;
            }
        }
    }
}

/// A running service: HTTP on a free port, optionally its relay and consumers, over a fresh
/// database and an embedded bus in a temporary directory.
pub struct TestApp {
    pub address: String,
    pub client: reqwest::Client,
    pub service: Compliance,
    pub bus: Arc<EmbeddedBus>,
    trigger: ShutdownTrigger,
    test_db: TestDb,
    _dir: TempDir,
}

/// Starts the service on SQLite with its relay and consumers.
pub async fn spawn_app() -> TestApp {
    spawn_app_on(TestDb::sqlite().await, ComplianceConfig::default(), true).await
}

/// Starts the service on SQLite; `workers` says whether the relay and consumers run (tests
/// that count outbox rows keep them stopped).
pub async fn spawn_app_with(config: ComplianceConfig, workers: bool) -> TestApp {
    spawn_app_on(TestDb::sqlite().await, config, workers).await
}

pub async fn spawn_app_on(test_db: TestDb, config: ComplianceConfig, workers: bool) -> TestApp {
    spawn(test_db, config, workers, false).await
}

/// Starts the service on SQLite with consumers that get every message twice (same event id),
/// as at-least-once delivery may do. Tests publish and observe on the plain bus.
pub async fn spawn_duplicating_app() -> TestApp {
    spawn(
        TestDb::sqlite().await,
        ComplianceConfig::default(),
        true,
        true,
    )
    .await
}

async fn spawn(
    test_db: TestDb,
    config: ComplianceConfig,
    workers: bool,
    duplicating: bool,
) -> TestApp {
    let dir = tempfile::tempdir().expect("temp dir");
    let bus = Arc::new(
        EmbeddedBus::open(&dir.path().join("bus.db"))
            .await
            .expect("open bus"),
    );
    let service_bus: Arc<dyn Bus> = if duplicating {
        Arc::new(testkit::duplicating_bus::DuplicatingBus::new(bus.clone()))
    } else {
        bus.clone()
    };
    let service = Compliance::start(test_db.db.clone(), service_bus, config)
        .await
        .expect("start service");
    let (trigger, shutdown) = kernel::shutdown::channel();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let address = format!("http://{}", listener.local_addr().expect("local addr"));
    tokio::spawn(web::serve(
        listener,
        service.router(),
        shutdown.clone().wait(),
    ));
    if workers {
        service
            .spawn_workers(shutdown)
            .await
            .expect("spawn workers");
    }
    TestApp {
        address,
        client: reqwest::Client::new(),
        service,
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
        self.service.db()
    }

    /// Subscribes a fresh observer group to `topic` (it sees every message of the topic).
    pub async fn observe(&self, topic: &str) -> Box<dyn Subscription> {
        let group = format!("test-{}", Uuid::new_v4().simple());
        self.bus
            .subscribe(topic, &group, SubscribeOptions::default())
            .await
            .expect("subscribe observer")
    }

    pub async fn publish(&self, topic: &str, envelope: &Envelope) {
        self.bus
            .publish(topic, std::slice::from_ref(envelope))
            .await
            .expect("publish");
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
        let response = self
            .client
            .get(self.url(path))
            .send()
            .await
            .expect("request");
        let status = response.status().as_u16();
        (status, response.json().await.expect("json body"))
    }

    pub async fn send_json(
        &self,
        method: reqwest::Method,
        path: &str,
        body: &serde_json::Value,
    ) -> (u16, serde_json::Value) {
        let response = self
            .client
            .request(method, self.url(path))
            .json(body)
            .send()
            .await
            .expect("request");
        let status = response.status().as_u16();
        (status, response.json().await.expect("json body"))
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

/// Polls `probe` until it yields `Some`, failing after the deadline.
pub async fn eventually<T, F, Fut>(what: &str, probe: F) -> T
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Option<T>>,
{
    testkit::eventually(DEADLINE, what, probe).await
}
