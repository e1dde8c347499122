//! Test support: the saga database's schema for `testkit::db`, saga service instances over a
//! `testkit::service::Stage` (replicas share one database and one embedded bus), and envelopes
//! published the way the other services publish them (each caused by the one before).

use std::sync::Arc;
use std::time::Duration;

use contracts::compliance::{ContratoAprobado, ContratoRechazado};
use contracts::contratos::{ContratoCreado, ContratoCreadoFailed};
use contracts::partners::{
    CreatePartner, PartnerCreado, PartnerCreationFailed, PartnerDesactivado,
};
use embedded_bus::EmbeddedBus;
use kernel::{Envelope, EnvelopeContext, IntegrationEvent, Subscription};
use sagas::storage::{self as repo, LogEntry, StoredSaga};
use sagas::{Sagas, SagasConfig};
use serde_json::json;
use storage::Db;
use testkit::db::{Schema, TestDb};
use testkit::service::Stage;
use testkit::DEADLINE;
use uuid::Uuid;

/// The saga database, for `TestDb::sqlite` and `TestDb::postgres`.
pub const SCHEMA: Schema = Schema {
    component: "sagas",
    migrations: sagas::MIGRATIONS,
};

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
    pub client: reqwest::Client,
    stage: Stage,
}

pub fn config() -> SagasConfig {
    SagasConfig {
        step_timeout: Duration::from_secs(300),
        timeout_check_interval: Duration::from_millis(20),
    }
}

impl Harness {
    pub async fn sqlite() -> Harness {
        Self::on(TestDb::sqlite(SCHEMA).await).await
    }

    pub async fn postgres() -> Harness {
        Self::on(TestDb::postgres(SCHEMA).await).await
    }

    async fn on(test_db: TestDb) -> Harness {
        let stage = Stage::new(test_db).await;
        Harness {
            bus: stage.bus(),
            client: stage.client.clone(),
            stage,
        }
    }

    /// The harness's handle on the saga database.
    pub fn db(&self) -> &Db {
        self.stage.db()
    }

    /// Starts an instance on the harness's database handle; `workers` runs its relay,
    /// consumers and deadline worker.
    pub async fn instance(&self, config: SagasConfig, workers: bool) -> Instance {
        self.instance_on(self.db().clone(), config, workers).await
    }

    /// Starts an instance on its own database handle, like a second replica.
    pub async fn replica(&self, config: SagasConfig) -> Instance {
        let db = self.stage.test_db.another_handle().await;
        self.instance_on(db, config, true).await
    }

    async fn instance_on(&self, db: Db, config: SagasConfig, workers: bool) -> Instance {
        let sagas = Sagas::start(db, self.stage.bus(), config)
            .await
            .expect("start sagas");
        let address = self.stage.serve(sagas.router()).await;
        if workers {
            sagas
                .spawn_workers(self.stage.shutdown())
                .await
                .expect("spawn workers");
        }
        Instance { sagas, address }
    }

    pub async fn cleanup(self) {
        self.stage.cleanup().await;
    }

    pub async fn publish(&self, message: &Msg) {
        testkit::bus::publish(self.bus.as_ref(), message.topic, &message.envelope).await;
    }

    /// Publishes `messages` in the order given.
    pub async fn publish_all(&self, messages: &[&Msg]) {
        for message in messages {
            self.publish(message).await;
        }
    }

    /// Subscribes a fresh observer group to `topic`; returns it and its group name.
    pub async fn observe(&self, topic: &str) -> (Box<dyn Subscription>, String) {
        self.stage.observe(topic).await
    }

    /// Waits for the saga to exist and satisfy `accept`.
    pub async fn wait_saga(
        &self,
        saga_id: Uuid,
        what: &str,
        accept: impl Fn(&StoredSaga) -> bool,
    ) -> StoredSaga {
        let db = self.db();
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
        let db = self.db();
        testkit::eventually(DEADLINE, "the outbox to drain", || async {
            (storage::outbox::backlog(db).await.expect("backlog") == 0).then_some(())
        })
        .await
    }

    pub async fn log(&self, saga_id: Uuid) -> Vec<LogEntry> {
        repo::log(self.db(), saga_id).await.expect("log")
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

    /// The messages up to compliance's approval, each caused by the one before:
    /// `[CreatePartner, PartnerCreado, ContratoCreado, ContratoAprobado]`.
    pub fn through_approval(&self) -> [Msg; 4] {
        let create = self.create_partner();
        let creado = self.partner_creado(&create);
        let contrato = self.contrato_creado(&creado);
        let aprobado = self.contrato_aprobado(&contrato);
        [create, creado, contrato, aprobado]
    }

    /// The messages up to compliance's rejection, each caused by the one before:
    /// `[CreatePartner, PartnerCreado, ContratoCreado, ContratoRechazado]`.
    pub fn through_rejection(&self) -> [Msg; 4] {
        let create = self.create_partner();
        let creado = self.partner_creado(&create);
        let contrato = self.contrato_creado(&creado);
        let rechazado = self.contrato_rechazado(&contrato);
        [create, creado, contrato, rechazado]
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
