//! The onboarding saga end to end in embedded mode: every test drives the BFF over HTTP, as a
//! client would, and checks the outcome in each service that owns a piece of it.

use std::sync::Arc;
use std::time::Duration;

use alpes::platform::{Mode, Platform, ServiceName};
use alpes::settings::Settings;
use kernel::Bus;
use serde_json::{json, Value};

const DEADLINE: Duration = Duration::from_secs(30);

struct TestPlatform {
    platform: Option<Platform>,
    bus: embedded_bus::EmbeddedBus,
    client: reqwest::Client,
    _data: tempfile::TempDir,
}

struct Options {
    units: Vec<ServiceName>,
    step_timeout_secs: u64,
    duplicate_deliveries: bool,
}

impl Default for Options {
    fn default() -> Self {
        Self {
            units: ServiceName::ALL.to_vec(),
            step_timeout_secs: 300,
            duplicate_deliveries: false,
        }
    }
}

impl TestPlatform {
    async fn start(options: Options) -> TestPlatform {
        let data = tempfile::tempdir().unwrap();
        let mut settings = Settings::default();
        settings.data_dir = data.path().to_path_buf();
        settings.ports = alpes::settings::Ports {
            integraciones: 0,
            alianzas: 0,
            compliance: 0,
            campanias: 0,
            bff: 0,
        };
        settings.sagas.step_timeout_secs = options.step_timeout_secs;
        let bus = alpes::platform::open_embedded_bus(data.path())
            .await
            .unwrap();
        let shared: Arc<dyn Bus> = if options.duplicate_deliveries {
            Arc::new(testkit::duplicating_bus::DuplicatingBus::new(Arc::new(
                bus.clone(),
            )))
        } else {
            Arc::new(bus.clone())
        };
        let platform = Platform::start_with_bus(&settings, &options.units, Mode::Up, shared)
            .await
            .unwrap();
        TestPlatform {
            platform: Some(platform),
            bus,
            client: reqwest::Client::builder()
                .timeout(Duration::from_secs(10))
                .build()
                .unwrap(),
            _data: data,
        }
    }

    fn url(&self, unit: &str) -> String {
        self.platform.as_ref().unwrap().url(unit).unwrap()
    }

    async fn get(&self, url: String) -> (u16, Value) {
        let response = self.client.get(url).send().await.unwrap();
        let status = response.status().as_u16();
        (status, response.json().await.unwrap_or(Value::Null))
    }

    /// Starts an onboarding through the BFF; returns (onboarding_id, saga_id).
    async fn onboard(&self, body: Value) -> (String, String) {
        let response = self
            .client
            .post(format!("{}/api/v1/partners", self.url("bff")))
            .json(&body)
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 202);
        let location = response.headers()["location"].to_str().unwrap().to_owned();
        let accepted: Value = response.json().await.unwrap();
        assert_eq!(accepted["estado"], "INICIADA");
        let onboarding_id = accepted["onboarding_id"].as_str().unwrap().to_owned();
        assert_eq!(location, format!("/api/v1/onboarding/{onboarding_id}"));
        assert_eq!(accepted["status_url"], location);
        (
            onboarding_id,
            accepted["saga_id"].as_str().unwrap().to_owned(),
        )
    }

    /// Polls the BFF's onboarding status until it reaches `estado`.
    async fn wait_for(&self, onboarding_id: &str, estado: &str) -> Value {
        let url = format!("{}/api/v1/onboarding/{onboarding_id}", self.url("bff"));
        testkit::eventually(
            DEADLINE,
            &format!("onboarding {onboarding_id} to be {estado}"),
            || {
                let request = self.client.get(url.clone()).send();
                async move {
                    let status: Value = request.await.ok()?.json().await.ok()?;
                    (status["estado"] == estado).then_some(status)
                }
            },
        )
        .await
    }

    async fn contracts_of(&self, partner_id: &str) -> Vec<Value> {
        let (status, page) = self
            .get(format!(
                "{}/contratos?partner_id={partner_id}",
                self.url("alianzas")
            ))
            .await;
        assert_eq!(status, 200);
        page["items"].as_array().unwrap().clone()
    }

    /// Polls until the partner's single contract is in `estado`.
    async fn wait_for_contract(&self, partner_id: &str, estado: &str) -> Value {
        testkit::eventually(
            DEADLINE,
            &format!("the contract of {partner_id} to be {estado}"),
            || async {
                let contracts = self.contracts_of(partner_id).await;
                assert!(
                    contracts.len() <= 1,
                    "one contract per partner: {contracts:?}"
                );
                contracts.into_iter().find(|c| c["estado"] == estado)
            },
        )
        .await
    }

    async fn wait_for_account(&self, partner_id: &str) -> Value {
        let url = format!("{}/compliance/cuentas/{partner_id}", self.url("compliance"));
        testkit::eventually(
            DEADLINE,
            &format!("the account of {partner_id}"),
            || async {
                let (status, account) = self.get(url.clone()).await;
                (status == 200).then_some(account)
            },
        )
        .await
    }

    async fn wait_for_partner(&self, partner_id: &str, estado: &str) -> Value {
        let url = format!("{}/api/v1/partners/{partner_id}", self.url("integraciones"));
        testkit::eventually(
            DEADLINE,
            &format!("partner {partner_id} to be {estado}"),
            || async {
                let (status, partner) = self.get(url.clone()).await;
                (status == 200 && partner["estado"] == estado).then_some(partner)
            },
        )
        .await
    }

    async fn review(&self, saga_id: &str, decision: &str) {
        let response = self
            .client
            .post(format!("{}/sagas/{saga_id}/revision", self.url("alianzas")))
            .json(&json!({"decision": decision, "comentarios": "checked by an operator"}))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 200, "{:?}", response.text().await);
    }

    async fn stop(mut self) {
        self.platform.take().unwrap().stop().await;
        self.bus.close().await;
    }
}

fn partner_id_of(status: &Value) -> String {
    status["partner_id"]
        .as_str()
        .unwrap_or_else(|| panic!("the status names the real partner: {status}"))
        .to_owned()
}

fn timeline_types(status: &Value) -> Vec<String> {
    status["timeline"]
        .as_array()
        .unwrap()
        .iter()
        .map(|entry| entry["tipo_evento"].as_str().unwrap().to_owned())
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_happy_path_completes_with_an_active_contract_and_account() {
    let platform = TestPlatform::start(Options::default()).await;
    let (onboarding_id, saga_id) = platform
        .onboard(json!({"nombre": "Ana", "email": "ana@happy.test", "tipo": "INFLUENCER"}))
        .await;
    let status = platform.wait_for(&onboarding_id, "COMPLETADA").await;
    assert_eq!(status["saga_id"], saga_id);
    let partner_id = partner_id_of(&status);
    assert_ne!(
        partner_id, onboarding_id,
        "the temporary id is linked to the real one"
    );
    let types = timeline_types(&status);
    for step in [
        "CreatePartner",
        "PartnerCreado",
        "ContratoCreado",
        "ContratoAprobado",
    ] {
        assert!(types.iter().any(|t| t == step), "{step} in {types:?}");
    }
    assert_eq!(status["compliance"]["resultado"], "APROBADO");

    let contract = platform.wait_for_contract(&partner_id, "activo").await;
    assert_eq!(contract["partner_id"], partner_id.as_str());
    let account = platform.wait_for_account(&partner_id).await;
    assert_eq!(account["estado"], "ACTIVE");

    let (code, aggregated) = platform
        .get(format!(
            "{}/api/v1/partners/{partner_id}",
            platform.url("bff")
        ))
        .await;
    assert_eq!(code, 200);
    assert_eq!(aggregated["email"], "ana@happy.test");
    assert_eq!(aggregated["contratos"].as_array().unwrap().len(), 1);
    assert_eq!(aggregated["cuenta_financiera"]["estado"], "ACTIVE");
    platform.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_duplicate_email_fails_the_saga_through_partner_creation_failed() {
    let platform = TestPlatform::start(Options::default()).await;
    let (first, _) = platform
        .onboard(json!({"nombre": "Eva", "email": "eva@dup.test"}))
        .await;
    platform.wait_for(&first, "COMPLETADA").await;
    let (second, _) = platform
        .onboard(json!({"nombre": "Eva Again", "email": "EVA@dup.test"}))
        .await;
    let status = platform.wait_for(&second, "FALLIDA").await;
    assert_eq!(status["causa"], "EMAIL_EXISTENTE");
    assert!(timeline_types(&status)
        .iter()
        .any(|t| t == "PartnerCreationFailed"));
    platform.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rejected_terms_wait_for_review_and_approval_completes() {
    let platform = TestPlatform::start(Options::default()).await;
    let (onboarding_id, saga_id) = platform
        .onboard(json!({"nombre": "Big", "email": "big@review.test", "terminos": {"monto": 60000}}))
        .await;
    let status = platform
        .wait_for(&onboarding_id, "PENDIENTE_REVISION")
        .await;
    assert_eq!(status["compliance"]["resultado"], "RECHAZADO");
    assert_eq!(status["compliance"]["validacion_fallida"], "MONTO_INVALIDO");
    let partner_id = partner_id_of(&status);
    platform.wait_for_contract(&partner_id, "en_revision").await;

    platform.review(&saga_id, "aprobar").await;
    platform.wait_for(&onboarding_id, "COMPLETADA").await;
    platform.wait_for_contract(&partner_id, "activo").await;
    assert_eq!(
        platform.wait_for_account(&partner_id).await["estado"],
        "ACTIVE"
    );
    platform.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rejected_review_fails_the_saga_and_deactivates_the_partner() {
    let platform = TestPlatform::start(Options::default()).await;
    let (onboarding_id, saga_id) = platform
        .onboard(json!({"nombre": "Nope", "email": "nope@review.test", "terminos": {"monto": "60000.00"}}))
        .await;
    let status = platform
        .wait_for(&onboarding_id, "PENDIENTE_REVISION")
        .await;
    let partner_id = partner_id_of(&status);
    platform.review(&saga_id, "rechazar").await;
    let status = platform.wait_for(&onboarding_id, "FALLIDA").await;
    assert_eq!(status["causa"], "REVISION_RECHAZADA");
    platform.wait_for_contract(&partner_id, "rechazado").await;
    platform.wait_for_partner(&partner_id, "INACTIVO").await;
    let (code, _) = platform
        .get(format!(
            "{}/compliance/cuentas/{partner_id}",
            platform.url("compliance")
        ))
        .await;
    assert_eq!(code, 404, "no financial account for a rejected partner");
    platform.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_contract_that_cannot_be_created_is_compensated() {
    let platform = TestPlatform::start(Options::default()).await;
    let (onboarding_id, _) = platform
        .onboard(json!({"nombre": "Barter", "email": "barter@fail.test", "terminos": {"tipo": "trueque"}}))
        .await;
    let status = platform.wait_for(&onboarding_id, "FALLIDA").await;
    assert!(timeline_types(&status)
        .iter()
        .any(|t| t == "ContratoCreadoFailed"));
    let partner_id = partner_id_of(&status);
    platform.wait_for_partner(&partner_id, "INACTIVO").await;
    assert!(platform.contracts_of(&partner_id).await.is_empty());
    let status = platform
        .wait_for_timeline(&onboarding_id, "PartnerDesactivado")
        .await;
    assert_eq!(status["estado"], "FALLIDA");
    platform.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_saga_that_stalls_past_its_deadline_fails_with_timeout_and_is_compensated() {
    // compliance is down: the saga stalls after ContratoCreado.
    let platform = TestPlatform::start(Options {
        units: vec![
            ServiceName::Integraciones,
            ServiceName::Alianzas,
            ServiceName::Bff,
        ],
        step_timeout_secs: 1,
        ..Options::default()
    })
    .await;
    let (onboarding_id, _) = platform
        .onboard(json!({"nombre": "Slow", "email": "slow@timeout.test"}))
        .await;
    let status = platform.wait_for(&onboarding_id, "FALLIDA").await;
    assert_eq!(status["causa"], "TIMEOUT");
    assert!(timeline_types(&status).iter().any(|t| t == "SagaTimeout"));
    let partner_id = partner_id_of(&status);
    platform.wait_for_partner(&partner_id, "INACTIVO").await;
    platform.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_event_delivered_twice_changes_nothing_a_second_time() {
    let platform = TestPlatform::start(Options {
        duplicate_deliveries: true,
        ..Options::default()
    })
    .await;
    let (happy, _) = platform
        .onboard(json!({"nombre": "Twice", "email": "twice@dup.test"}))
        .await;
    let (reviewed, saga_id) = platform
        .onboard(json!({"nombre": "Twice Review", "email": "twice-review@dup.test", "terminos": {"monto": 70000}}))
        .await;
    let happy_status = platform.wait_for(&happy, "COMPLETADA").await;
    let happy_partner = partner_id_of(&happy_status);
    platform.wait_for_contract(&happy_partner, "activo").await;
    platform.wait_for_account(&happy_partner).await;

    platform.wait_for(&reviewed, "PENDIENTE_REVISION").await;
    platform.review(&saga_id, "aprobar").await;
    let reviewed_status = platform.wait_for(&reviewed, "COMPLETADA").await;
    let reviewed_partner = partner_id_of(&reviewed_status);
    platform
        .wait_for_contract(&reviewed_partner, "activo")
        .await;
    platform.wait_for_account(&reviewed_partner).await;

    for (status, partner_id) in [
        (&happy_status, &happy_partner),
        (&reviewed_status, &reviewed_partner),
    ] {
        assert_eq!(
            platform.contracts_of(partner_id).await.len(),
            1,
            "no second contract"
        );
        let timeline = status["timeline"].as_array().unwrap();
        assert!(
            timeline
                .iter()
                .all(|e| e["estado_procesamiento"] != "ERROR"),
            "a duplicate never reaches the saga's rules: {timeline:?}"
        );
        let mut types = timeline_types(status);
        let count = types.len();
        types.sort();
        types.dedup();
        assert_eq!(types.len(), count, "each step is logged once: {timeline:?}");
    }
    let (_, partners) = platform
        .get(format!(
            "{}/api/v1/partners?limit=500",
            platform.url("integraciones")
        ))
        .await;
    assert_eq!(partners["total"], 2, "no second partner");
    let (_, report) = platform
        .get(format!(
            "{}/reportes/financieros",
            platform.url("compliance")
        ))
        .await;
    assert_eq!(
        report["totales"]["cuentas_activas"], 2,
        "no second account: {report}"
    );
    assert_eq!(
        report["totales"]["contratos_aprobados"], 1,
        "one outcome per contract: {report}"
    );
    assert_eq!(
        report["totales"]["contratos_rechazados"], 1,
        "one outcome per contract: {report}"
    );
    platform.stop().await;
}

impl TestPlatform {
    async fn wait_for_timeline(&self, onboarding_id: &str, step: &str) -> Value {
        let url = format!("{}/api/v1/onboarding/{onboarding_id}", self.url("bff"));
        testkit::eventually(
            DEADLINE,
            &format!("{step} in the timeline of {onboarding_id}"),
            || {
                let request = self.client.get(url.clone()).send();
                async move {
                    let status: Value = request.await.ok()?.json().await.ok()?;
                    timeline_types(&status)
                        .iter()
                        .any(|t| t == step)
                        .then_some(status)
                }
            },
        )
        .await
    }
}
