//! Test support for this crate: fresh databases on both backends, a running service on a free
//! port with its own embedded bus, and waiting with a deadline, never a sleep.

use std::sync::Arc;
use std::time::Duration;

use alianzas::{Alianzas, AlianzasConfig};
use embedded_bus::EmbeddedBus;
use kernel::shutdown::ShutdownTrigger;
use kernel::{Bus, Envelope, SubscribeOptions, Subscription};
use serde_json::Value;
use storage::Db;
use tempfile::TempDir;

/// How long any awaited effect may take before the test fails.
pub const DEADLINE: Duration = Duration::from_secs(20);

/// A migrated, empty database of this service that removes itself on `cleanup`.
pub struct TestDb {
    pub db: Db,
    postgres_url: Option<String>,
    _dir: Option<TempDir>,
}

impl TestDb {
    pub async fn sqlite() -> TestDb {
        let dir = tempfile::tempdir().expect("temp dir");
        let url = format!("sqlite://{}", dir.path().join("alianzas.db").display());
        let db = Db::connect(&url).await.expect("open sqlite");
        db.migrate_with("alianzas", alianzas::MIGRATIONS)
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
        let url = testkit::postgres::fresh_database_url("alianzas");
        let db = Db::connect(&url).await.unwrap_or_else(|error| {
            panic!("PostgreSQL is required for these tests ({url}): {error}")
        });
        db.migrate_with("alianzas", alianzas::MIGRATIONS)
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
            let Some((_, name)) = url.rsplit_once('/') else {
                return;
            };
            let admin = format!("{}/postgres", testkit::postgres::server_url());
            if let Ok(mut conn) = sqlx::PgConnection::connect(&admin).await {
                let drop = format!("DROP DATABASE IF EXISTS \"{name}\" WITH (FORCE)");
                let _ = sqlx::query(&drop).execute(&mut conn).await;
                let _ = conn.close().await;
            }
        }
    }
}

/// A running service: HTTP on a free port, its relay and consumers, over a test database and
/// an embedded bus in a temporary directory.
pub struct TestApp {
    pub address: String,
    pub client: reqwest::Client,
    pub service: Alianzas,
    pub bus: Arc<EmbeddedBus>,
    trigger: ShutdownTrigger,
    test_db: TestDb,
    _dir: TempDir,
}

/// Starts the service on SQLite with its workers.
pub async fn spawn_app() -> TestApp {
    spawn_app_on(TestDb::sqlite().await, AlianzasConfig::default(), true).await
}

/// Starts the service on SQLite; `workers` says whether the relay and consumers run (tests
/// that count outbox rows keep them stopped).
pub async fn spawn_app_with(config: AlianzasConfig, workers: bool) -> TestApp {
    spawn_app_on(TestDb::sqlite().await, config, workers).await
}

/// Starts the service with its workers on a fresh PostgreSQL database.
pub async fn spawn_app_on_postgres() -> TestApp {
    spawn_app_on(TestDb::postgres().await, AlianzasConfig::default(), true).await
}

async fn spawn_app_on(test_db: TestDb, config: AlianzasConfig, workers: bool) -> TestApp {
    let dir = tempfile::tempdir().expect("temp dir");
    let bus = Arc::new(
        EmbeddedBus::open(&dir.path().join("bus.db"))
            .await
            .expect("open bus"),
    );
    let service = Alianzas::start(test_db.db.clone(), bus.clone(), config)
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

    /// Subscribes a fresh observer group to `topic` (it sees every message of the topic).
    pub async fn observe(&self, topic: &str) -> Box<dyn Subscription> {
        let group = format!("test-{}", uuid::Uuid::new_v4().simple());
        self.bus
            .subscribe(topic, &group, SubscribeOptions::default())
            .await
            .expect("subscribe observer")
    }

    /// Creates a contract through the API and returns its JSON.
    pub async fn create_contrato(&self, body: Value) -> Value {
        let response = self
            .client
            .post(self.url("/contratos"))
            .json(&body)
            .send()
            .await
            .expect("request");
        assert_eq!(response.status(), 201, "create {body}");
        response.json().await.expect("json")
    }

    pub async fn get_json(&self, path: &str) -> (u16, Value) {
        let response = self
            .client
            .get(self.url(path))
            .send()
            .await
            .expect("request");
        let status = response.status().as_u16();
        (status, response.json().await.expect("json"))
    }

    pub async fn post_json(&self, path: &str, body: Value) -> (u16, Value) {
        let response = self
            .client
            .post(self.url(path))
            .json(&body)
            .send()
            .await
            .expect("request");
        let status = response.status().as_u16();
        (status, response.json().await.expect("json"))
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

/// Polls `probe` until it yields `Some`, failing after the deadline.
pub async fn eventually<T, F, Fut>(what: &str, probe: F) -> T
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    testkit::eventually(DEADLINE, what, probe).await
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
