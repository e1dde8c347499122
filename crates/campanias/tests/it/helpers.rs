//! Test support for this crate: a running service on a free port over a fresh database (SQLite
//! or PostgreSQL) and a fresh embedded bus, optionally behind a bus that delivers every message
//! twice; notifications go to a temporary directory unless a test says otherwise.

use std::sync::Arc;
use std::time::Duration;

use campanias::notificaciones::Sender;
use campanias::{Campanias, CampaniasConfig};
use kernel::{Bus, Envelope, EnvelopeContext, IntegrationEvent};
use serde_json::{json, Value};
use tempfile::TempDir;
use testkit::db::{Schema, TestDb};
use testkit::duplicating_bus::DuplicatingBus;
use testkit::service::Stage;
use uuid::Uuid;

pub use testkit::DEADLINE;

pub const SCHEMA: Schema = Schema {
    component: "campanias",
    migrations: campanias::MIGRATIONS,
};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

/// How a test wants its service.
pub struct Options {
    pub backend: Backend,
    pub workers: bool,
    /// Deliver every message twice to the service's consumers.
    pub duplicating: bool,
    /// `None`: the file sender in a temporary directory.
    pub config: Option<CampaniasConfig>,
    pub sender: Option<Arc<dyn Sender>>,
}

impl Default for Options {
    fn default() -> Self {
        Self {
            backend: Backend::Sqlite,
            workers: true,
            duplicating: false,
            config: None,
            sender: None,
        }
    }
}

pub struct TestApp {
    pub address: String,
    pub client: reqwest::Client,
    pub service: Campanias,
    pub stage: Stage,
    /// Where the default file sender writes.
    pub mail_dir: TempDir,
}

/// Fast retries so tests never wait long for a back-off.
pub fn test_config(mail_dir: &std::path::Path) -> CampaniasConfig {
    CampaniasConfig {
        operator_email: "ops@alpes.test".to_owned(),
        retry_base: Duration::from_millis(10),
        ..CampaniasConfig::with_file_sender(mail_dir)
    }
}

pub async fn spawn_app_with(options: Options) -> TestApp {
    let test_db = match options.backend {
        Backend::Sqlite => TestDb::sqlite(SCHEMA).await,
        Backend::Postgres => TestDb::postgres(SCHEMA).await,
    };
    let stage = Stage::new(test_db).await;
    let mail_dir = tempfile::tempdir().expect("mail dir");
    let bus: Arc<dyn Bus> = if options.duplicating {
        Arc::new(DuplicatingBus::new(stage.bus()))
    } else {
        stage.bus()
    };
    let config = options
        .config
        .unwrap_or_else(|| test_config(mail_dir.path()));
    let service = match options.sender {
        Some(sender) => Campanias::start_with_sender(stage.db().clone(), bus, config, sender).await,
        None => Campanias::start(stage.db().clone(), bus, config).await,
    }
    .expect("start service");
    let address = stage.serve(service.router()).await;
    if options.workers {
        service
            .spawn_workers(stage.shutdown())
            .await
            .expect("spawn workers");
    }
    TestApp {
        address,
        client: reqwest::Client::new(),
        service,
        stage,
        mail_dir,
    }
}

pub async fn spawn_app() -> TestApp {
    spawn_app_with(Options::default()).await
}

impl TestApp {
    pub async fn cleanup(self) {
        self.stage.cleanup().await;
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.address)
    }

    pub async fn post(&self, path: &str, body: &Value) -> reqwest::Response {
        self.client
            .post(self.url(path))
            .json(body)
            .send()
            .await
            .expect("request")
    }

    pub async fn put(&self, path: &str, body: &Value) -> reqwest::Response {
        self.client
            .put(self.url(path))
            .json(body)
            .send()
            .await
            .expect("request")
    }

    pub async fn get(&self, path: &str) -> reqwest::Response {
        self.client
            .get(self.url(path))
            .send()
            .await
            .expect("request")
    }

    pub async fn get_json(&self, path: &str) -> Value {
        let response = self.get(path).await;
        assert_eq!(response.status(), 200, "GET {path}");
        response.json().await.expect("json")
    }

    /// Creates a program through the API; returns its JSON.
    pub async fn create_programa(&self, body: Value) -> Value {
        let response = self.post("/programas", &body).await;
        assert_eq!(response.status(), 201, "create {body}");
        response.json().await.expect("json")
    }

    /// Affiliates a partner; returns the affiliation's JSON.
    pub async fn afiliar(&self, programa_id: &str, afiliado_id: Uuid) -> Value {
        let response = self
            .post(
                &format!("/programas/{programa_id}/afiliaciones"),
                &json!({ "afiliado_id": afiliado_id }),
            )
            .await;
        assert_eq!(response.status(), 201);
        response.json().await.expect("json")
    }

    /// The state of a partner's affiliation to a program, as the API shows it.
    pub async fn estado_afiliacion(&self, programa_id: &str, afiliado_id: Uuid) -> String {
        let programa = self.get_json(&format!("/programas/{programa_id}")).await;
        programa["afiliaciones"]
            .as_array()
            .expect("afiliaciones")
            .iter()
            .find(|a| a["afiliado_id"] == afiliado_id.to_string())
            .map(|a| a["estado"].as_str().unwrap_or_default().to_owned())
            .unwrap_or_default()
    }

    /// Publishes `event` on its topic, as its upstream owner would (through the real bus).
    pub async fn publish<E: IntegrationEvent>(&self, source: &str, event: &E) -> Envelope {
        let envelope = Envelope::wrap(source, event, EnvelopeContext::default());
        testkit::bus::publish(self.stage.bus().as_ref(), E::TOPIC, &envelope).await;
        envelope
    }

    /// Waits until every message published so far was handled and acknowledged by the
    /// service's consumers (with a duplicating bus: both deliveries of each).
    pub async fn settled(&self) {
        let bus = self.stage.bus();
        testkit::eventually(DEADLINE, "campanias to acknowledge every message", || {
            let bus = bus.clone();
            async move { (bus.pending("campanias").await.ok()? == 0).then_some(()) }
        })
        .await;
    }
}

/// The original's sample flat body.
pub fn flat_body() -> Value {
    json!({
        "nombre": "Programa Verano",
        "brand_id": "brand-1",
        "tipo": "AFILIADOS",
        "estado": "BORRADOR",
        "vigencia_inicio": "2025-06-01",
        "vigencia_fin": "2025-08-31",
        "term_modelo": "CPA",
        "term_moneda": "USD",
        "term_tarifa_base": 25.5,
        "term_tope": 100,
        "afiliaciones": []
    })
}

/// A nested body with `nombre` and `brand_id` of the caller's choice.
pub fn nested_body(nombre: &str, brand_id: &str) -> Value {
    json!({
        "nombre": nombre,
        "brand_id": brand_id,
        "tipo": "INFLUENCERS",
        "vigencia": {"inicio": "2025-01-01", "fin": "2025-12-31"},
        "terminos": {"modelo": "CPL", "moneda": "EUR", "tarifa_base": "3.10", "tope": "9.99"},
        "presupuesto": 5000
    })
}
