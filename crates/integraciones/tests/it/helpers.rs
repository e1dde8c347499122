//! Test support for this crate: fresh databases on both backends, a running service on a free
//! port with its own embedded bus, and polling helpers that wait with a deadline, never a sleep.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use embedded_bus::EmbeddedBus;
use integraciones::Integraciones;
use kernel::shutdown::ShutdownTrigger;
use kernel::{Bus, Envelope, SubscribeOptions, Subscription};
use storage::Db;
use tempfile::TempDir;

/// How long any awaited effect may take before the test fails.
pub const DEADLINE: Duration = Duration::from_secs(20);

/// The PostgreSQL server for tests (trust auth); `ALPES_TEST_POSTGRES_URL` overrides it.
pub fn postgres_server() -> String {
    std::env::var("ALPES_TEST_POSTGRES_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432".to_owned())
        .trim_end_matches('/')
        .to_owned()
}

/// A migrated, empty database of this service that removes itself on `cleanup`.
pub struct TestDb {
    pub db: Db,
    postgres_name: Option<String>,
    _dir: Option<TempDir>,
}

impl TestDb {
    pub async fn sqlite() -> TestDb {
        let dir = tempfile::tempdir().expect("temp dir");
        let url = format!("sqlite://{}", dir.path().join("integraciones.db").display());
        let db = Db::connect(&url).await.expect("open sqlite");
        db.migrate_with("integraciones", integraciones::MIGRATIONS)
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
        let name = format!("integraciones_test_{}", uuid::Uuid::new_v4().simple());
        let url = format!("{}/{name}", postgres_server());
        let db = Db::connect(&url).await.unwrap_or_else(|error| {
            panic!("PostgreSQL is required for these tests ({url}): {error}")
        });
        db.migrate_with("integraciones", integraciones::MIGRATIONS)
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
            let admin = format!("{}/postgres", postgres_server());
            if let Ok(mut conn) = sqlx::PgConnection::connect(&admin).await {
                let drop = format!("DROP DATABASE IF EXISTS \"{name}\" WITH (FORCE)");
                let _ = sqlx::query(&drop).execute(&mut conn).await;
                let _ = conn.close().await;
            }
        }
    }
}

/// A running service: HTTP on a free port, its relay and consumers, over SQLite and an
/// embedded bus in a temporary directory.
pub struct TestApp {
    pub address: String,
    pub client: reqwest::Client,
    pub service: Integraciones,
    pub bus: Arc<EmbeddedBus>,
    trigger: ShutdownTrigger,
    test_db: TestDb,
    _dir: TempDir,
}

/// Starts the service on SQLite; `workers` says whether the relay and consumers run (tests
/// that count outbox rows keep them stopped).
pub async fn spawn_app_with(workers: bool) -> TestApp {
    spawn_app_on(TestDb::sqlite().await, workers).await
}

/// Starts the service with its relay and consumers on a fresh PostgreSQL database.
pub async fn spawn_app_on_postgres() -> TestApp {
    spawn_app_on(TestDb::postgres().await, true).await
}

async fn spawn_app_on(test_db: TestDb, workers: bool) -> TestApp {
    let dir = tempfile::tempdir().expect("temp dir");
    let db = test_db.db.clone();
    let bus = Arc::new(
        EmbeddedBus::open(&dir.path().join("bus.db"))
            .await
            .expect("open bus"),
    );
    let service = Integraciones::start(db, bus.clone())
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

pub async fn spawn_app() -> TestApp {
    spawn_app_with(true).await
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
pub async fn eventually<T, F, Fut>(what: &str, mut probe: F) -> T
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Option<T>>,
{
    let deadline = tokio::time::Instant::now() + DEADLINE;
    let mut interval = Duration::from_millis(5);
    loop {
        if let Some(value) = probe().await {
            return value;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "timed out waiting for {what}"
        );
        tokio::time::sleep(interval).await;
        interval = (interval * 2).min(Duration::from_millis(100));
    }
}
