//! Test support: fresh databases on both backends, saga service instances (replicas share one
//! database and one embedded bus), envelopes published the way the other services publish
//! them (each caused by the one before), and polling with a deadline, never a sleep.

use std::sync::Arc;
use std::time::Duration;

use contracts::compliance::{ContratoAprobado, ContratoRechazado};
use contracts::contratos::{ContratoCreado, ContratoCreadoFailed};
use contracts::partners::{
    CreatePartner, PartnerCreado, PartnerCreationFailed, PartnerDesactivado,
};
use embedded_bus::EmbeddedBus;
use kernel::shutdown::ShutdownTrigger;
use kernel::{Bus, Envelope, EnvelopeContext, IntegrationEvent, SubscribeOptions, Subscription};
use sagas::storage::{self as repo, LogEntry, StoredSaga};
use sagas::{Sagas, SagasConfig};
use serde_json::json;
use storage::Db;
use tempfile::TempDir;
use uuid::Uuid;

/// How long any awaited effect may take before the test fails.
pub const DEADLINE: Duration = Duration::from_secs(20);

/// A migrated, empty saga database that removes itself on `cleanup`.
pub struct TestDb {
    pub db: Db,
    pub url: String,
    postgres: bool,
    _dir: Option<TempDir>,
}

impl TestDb {
    pub async fn sqlite() -> TestDb {
        let dir = tempfile::tempdir().expect("temp dir");
        let url = format!("sqlite://{}", dir.path().join("sagas.db").display());
        Self::open(url, false, Some(dir)).await
    }

    /// A fresh PostgreSQL database. Fails (never skips) when the server is unreachable.
    pub async fn postgres() -> TestDb {
        Self::open(testkit::postgres::fresh_database_url("sagas"), true, None).await
    }

    async fn open(url: String, postgres: bool, dir: Option<TempDir>) -> TestDb {
        let db = Db::connect(&url)
            .await
            .unwrap_or_else(|error| panic!("cannot open the test database {url}: {error}"));
        db.migrate_with("sagas", sagas::MIGRATIONS)
            .await
            .expect("migrate");
        TestDb {
            db,
            url,
            postgres,
            _dir: dir,
        }
    }

    /// Another handle on the same database, as a second replica would open it.
    pub async fn another_handle(&self) -> Db {
        Db::connect(&self.url).await.expect("second handle")
    }

    /// Closes the database and drops it on PostgreSQL.
    pub async fn cleanup(self) {
        self.db.close().await;
        if self.postgres {
            use sqlx::Connection;
            let name = self.url.rsplit('/').next().unwrap_or_default().to_owned();
            let admin = format!("{}/postgres", testkit::postgres::server_url());
            if let Ok(mut conn) = sqlx::PgConnection::connect(&admin).await {
                let drop = format!("DROP DATABASE IF EXISTS \"{name}\" WITH (FORCE)");
                let _ = sqlx::query(&drop).execute(&mut conn).await;
                let _ = conn.close().await;
            }
        }
    }
}

/// One saga service instance with its HTTP server on a free port.
pub struct Instance {
    pub sagas: Sagas,
    pub address: String,
}

impl Instance {
    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.address)
    }
}

/// A bus, a saga database and the instances running on them.
pub struct Harness {
    pub bus: Arc<EmbeddedBus>,
    pub test_db: TestDb,
    pub client: reqwest::Client,
    trigger: ShutdownTrigger,
    shutdown: kernel::Shutdown,
    _dir: TempDir,
}

pub fn config() -> SagasConfig {
    SagasConfig {
        step_timeout: Duration::from_secs(300),
        timeout_check_interval: Duration::from_millis(20),
    }
}

impl Harness {
    pub async fn sqlite() -> Harness {
        Self::on(TestDb::sqlite().await).await
    }

    pub async fn postgres() -> Harness {
        Self::on(TestDb::postgres().await).await
    }

    async fn on(test_db: TestDb) -> Harness {
        let dir = tempfile::tempdir().expect("temp dir");
        let bus = Arc::new(
            EmbeddedBus::open(&dir.path().join("bus.db"))
                .await
                .expect("open bus"),
        );
        let (trigger, shutdown) = kernel::shutdown::channel();
        Harness {
            bus,
            test_db,
            client: reqwest::Client::new(),
            trigger,
            shutdown,
            _dir: dir,
        }
    }

    /// Starts an instance on the harness's database handle; `workers` runs its relay,
    /// consumers and deadline worker.
    pub async fn instance(&self, config: SagasConfig, workers: bool) -> Instance {
        self.instance_on(self.test_db.db.clone(), config, workers)
            .await
    }

    /// Starts an instance on its own database handle, like a second replica.
    pub async fn replica(&self, config: SagasConfig) -> Instance {
        let db = self.test_db.another_handle().await;
        self.instance_on(db, config, true).await
    }

    async fn instance_on(&self, db: Db, config: SagasConfig, workers: bool) -> Instance {
        let sagas = Sagas::start(db, self.bus.clone(), config)
            .await
            .expect("start sagas");
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let address = format!("http://{}", listener.local_addr().expect("local addr"));
        tokio::spawn(web::serve(
            listener,
            sagas.router(),
            self.shutdown.clone().wait(),
        ));
        if workers {
            sagas
                .spawn_workers(self.shutdown.clone())
                .await
                .expect("spawn workers");
        }
        Instance { sagas, address }
    }

    pub async fn cleanup(self) {
        self.trigger.fire();
        self.test_db.cleanup().await;
    }

    pub async fn publish(&self, message: &Msg) {
        self.bus
            .publish(message.topic, std::slice::from_ref(&message.envelope))
            .await
            .expect("publish");
    }

    /// Subscribes a fresh observer group to `topic`; returns it and its group name.
    pub async fn observe(&self, topic: &str) -> (Box<dyn Subscription>, String) {
        let group = format!("test-{}", Uuid::new_v4().simple());
        let subscription = self
            .bus
            .subscribe(topic, &group, SubscribeOptions::default())
            .await
            .expect("subscribe observer");
        (subscription, group)
    }

    /// Waits for the saga to exist and satisfy `accept`.
    pub async fn wait_saga(
        &self,
        saga_id: Uuid,
        what: &str,
        accept: impl Fn(&StoredSaga) -> bool,
    ) -> StoredSaga {
        let db = &self.test_db.db;
        testkit::eventually(DEADLINE, what, || async {
            repo::find(db, saga_id)
                .await
                .expect("read saga")
                .filter(|stored| accept(stored))
        })
        .await
    }

    /// Waits until everything committed to the outbox has reached the bus.
    pub async fn wait_outbox_empty(&self) {
        let db = &self.test_db.db;
        testkit::eventually(DEADLINE, "the outbox to drain", || async {
            (storage::outbox::backlog(db).await.expect("backlog") == 0).then_some(())
        })
        .await
    }

    pub async fn log(&self, saga_id: Uuid) -> Vec<LogEntry> {
        repo::log(&self.test_db.db, saga_id).await.expect("log")
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

/// A message as another service would publish it: its topic and envelope.
#[derive(Debug, Clone)]
pub struct Msg {
    pub topic: &'static str,
    pub envelope: Envelope,
}

impl Msg {
    pub fn id(&self) -> Uuid {
        self.envelope.id
    }
}

fn msg<E: IntegrationEvent>(source: &str, event: &E, cause: Option<&Msg>) -> Msg {
    let context = cause
        .map(|cause| EnvelopeContext::caused_by(&cause.envelope))
        .unwrap_or_default();
    Msg {
        topic: E::TOPIC,
        envelope: Envelope::wrap(source, event, context),
    }
}

/// One onboarding's ids and the messages the other services publish for it.
#[derive(Debug, Clone)]
pub struct Onboarding {
    pub saga_id: Uuid,
    pub onboarding_id: Uuid,
    pub partner_id: Uuid,
    pub contrato_id: Uuid,
    pub email: String,
}

impl Onboarding {
    pub fn new() -> Onboarding {
        let saga_id = Uuid::now_v7();
        Onboarding {
            saga_id,
            onboarding_id: Uuid::now_v7(),
            partner_id: Uuid::now_v7(),
            contrato_id: Uuid::now_v7(),
            email: format!("ana-{}@example.com", saga_id.simple()),
        }
    }

    /// The BFF's command: `sagaid` on the envelope, `saga_id` in the payload.
    pub fn create_partner(&self) -> Msg {
        let mut message = msg(
            "bff",
            &CreatePartner {
                onboarding_id: self.onboarding_id,
                saga_id: Some(self.saga_id),
                nombre: "Ana Saga".into(),
                email: self.email.clone(),
                telefono: None,
                direccion: None,
                tipo: Some("AFILIADO".into()),
                terminos: Some(json!({"monto": 60000})),
            },
            None,
        );
        message.envelope.sagaid = Some(self.saga_id);
        message
    }

    pub fn partner_creado(&self, cause: &Msg) -> Msg {
        msg(
            "integraciones",
            &PartnerCreado {
                partner_id: self.partner_id,
                nombre: "Ana Saga".into(),
                tipo: "AFILIADO".into(),
                email: self.email.clone(),
                onboarding_id: Some(self.onboarding_id),
                terminos: None,
            },
            Some(cause),
        )
    }

    pub fn partner_creation_failed(&self, cause: &Msg, code: &str) -> Msg {
        msg(
            "integraciones",
            &PartnerCreationFailed {
                onboarding_id: self.onboarding_id,
                error_code: code.into(),
                error_message: "a partner with that e-mail exists".into(),
            },
            Some(cause),
        )
    }

    pub fn contrato_creado(&self, cause: &Msg) -> Msg {
        msg(
            "alianzas",
            &ContratoCreado {
                contrato_id: self.contrato_id,
                partner_id: self.partner_id,
                onboarding_id: Some(self.onboarding_id),
                tipo: "CPA".into(),
                monto: "60000.00".parse().expect("amount"),
                moneda: "USD".into(),
                condiciones: None,
                fecha_inicio: "2025-01-01".into(),
                fecha_fin: None,
                estado: "pendiente".into(),
            },
            Some(cause),
        )
    }

    pub fn contrato_creado_failed(&self, cause: &Msg) -> Msg {
        msg(
            "alianzas",
            &ContratoCreadoFailed {
                partner_id: self.partner_id,
                onboarding_id: Some(self.onboarding_id),
                error_code: "DATOS_INVALIDOS".into(),
                error_message: "monto negativo".into(),
            },
            Some(cause),
        )
    }

    pub fn contrato_aprobado(&self, cause: &Msg) -> Msg {
        msg(
            "compliance",
            &ContratoAprobado {
                contrato_id: self.contrato_id,
                partner_id: self.partner_id,
                onboarding_id: Some(self.onboarding_id),
                validaciones_pasadas: vec!["MONTO".into()],
            },
            Some(cause),
        )
    }

    pub fn contrato_rechazado(&self, cause: &Msg) -> Msg {
        msg(
            "compliance",
            &ContratoRechazado {
                contrato_id: self.contrato_id,
                partner_id: self.partner_id,
                onboarding_id: Some(self.onboarding_id),
                causa_rechazo: "monto sobre el límite".into(),
                validacion_fallida: "MONTO_INVALIDO".into(),
            },
            Some(cause),
        )
    }

    /// integraciones' answer to a `DesactivarPartner` the saga published.
    pub fn partner_desactivado(&self, cause: &Envelope) -> Msg {
        let mut message = msg(
            "integraciones",
            &PartnerDesactivado {
                partner_id: self.partner_id,
                motivo: Some("onboarding fallido".into()),
            },
            None,
        );
        let context = EnvelopeContext::caused_by(cause);
        message.envelope.sagaid = context.sagaid;
        message.envelope.correlationid = context.correlationid;
        message.envelope.causationid = context.causationid;
        message
    }
}

/// The `tipo_evento` and `estado_procesamiento` of each log row, in order.
pub fn story(log: &[LogEntry]) -> Vec<(String, &'static str)> {
    log.iter()
        .map(|entry| {
            (
                entry.tipo_evento.clone(),
                entry.estado_procesamiento.as_str(),
            )
        })
        .collect()
}

pub fn rows(pairs: &[(&str, &'static str)]) -> Vec<(String, &'static str)> {
    pairs
        .iter()
        .map(|(tipo, estado)| ((*tipo).to_owned(), *estado))
        .collect()
}
