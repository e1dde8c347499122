//! The onboarding saga end to end: every test drives the BFF over HTTP, as a client would, and
//! checks the outcome in each service that owns a piece of it. Each scenario runs twice: in
//! embedded mode (one process, SQLite, the embedded bus) and distributed (one OS process per
//! service with two replicas of alianzas and compliance, PostgreSQL and NATS JetStream).

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use alpes::platform::{Mode, Platform, ServiceName};
use kernel::Bus;
use serde_json::{json, Value};
use testkit::deployment::Distributed;

const DEADLINE: Duration = Duration::from_secs(30);

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Deploy {
    Embedded,
    Distributed,
}

enum Running {
    InProcess {
        platform: Platform,
        bus: embedded_bus::EmbeddedBus,
    },
    Processes(Distributed),
}

struct TestPlatform {
    running: Option<Running>,
    client: reqwest::Client,
    _data: tempfile::TempDir,
}

struct Options {
    deploy: Deploy,
    units: Vec<ServiceName>,
    step_timeout_secs: u64,
    duplicate_deliveries: bool,
}

impl Options {
    fn on(deploy: Deploy) -> Self {
        Self {
            deploy,
            units: ServiceName::ALL.to_vec(),
            step_timeout_secs: 300,
            duplicate_deliveries: false,
        }
    }
}

impl TestPlatform {
    async fn start(options: Options) -> TestPlatform {
        let data = tempfile::tempdir().unwrap();
        let running = match options.deploy {
            Deploy::Embedded => Self::in_process(&options, data.path()).await,
            Deploy::Distributed => Self::processes(&options).await,
        };
        TestPlatform {
            running: Some(running),
            client: reqwest::Client::builder()
                .timeout(Duration::from_secs(10))
                .build()
                .unwrap(),
            _data: data,
        }
    }

    async fn in_process(options: &Options, data: &Path) -> Running {
        let mut settings = crate::in_process_settings(data);
        settings.sagas.step_timeout_secs = options.step_timeout_secs;
        let bus = alpes::platform::open_embedded_bus(data).await.unwrap();
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
        Running::InProcess { platform, bus }
    }

    /// One `alpes serve` process per unit on fresh PostgreSQL databases and a fresh NATS
    /// prefix, with two replicas of alianzas (and its saga log) and of compliance.
    async fn processes(options: &Options) -> Running {
        assert!(
            !options.duplicate_deliveries,
            "duplicated deliveries are an in-process bus"
        );
        let units: Vec<&str> = options.units.iter().map(|unit| unit.as_str()).collect();
        let step_timeout = options.step_timeout_secs.to_string();
        Running::Processes(
            Distributed::start(
                Path::new(env!("CARGO_BIN_EXE_alpes")),
                &units,
                &[("ALPES_SAGAS_STEP_TIMEOUT_SECS", &step_timeout)],
            )
            .await,
        )
    }

    fn url(&self, unit: &str) -> String {
        match self.running.as_ref().unwrap() {
            Running::InProcess { platform, .. } => platform.url(unit).unwrap(),
            Running::Processes(deployment) => deployment.url(unit),
        }
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

    /// SIGKILL to the last replica of `unit`, as a crash of that machine would.
    async fn kill_replica(&mut self, unit: ServiceName) {
        let Some(Running::Processes(deployment)) = self.running.as_mut() else {
            panic!("only a multi-process deployment has replicas to kill");
        };
        deployment.kill_replica(unit.as_str()).await;
    }

    async fn stop(mut self) {
        match self.running.take().unwrap() {
            Running::InProcess { platform, bus } => {
                platform.stop().await;
                bus.close().await;
            }
            Running::Processes(deployment) => deployment.stop().await,
        }
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

async fn the_happy_path_completes_with_an_active_contract_and_account(deploy: Deploy) {
    let platform = TestPlatform::start(Options::on(deploy)).await;
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

async fn a_duplicate_email_fails_the_saga_through_partner_creation_failed(deploy: Deploy) {
    let platform = TestPlatform::start(Options::on(deploy)).await;
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

async fn rejected_terms_wait_for_review_and_approval_completes(deploy: Deploy) {
    let platform = TestPlatform::start(Options::on(deploy)).await;
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

async fn a_rejected_review_fails_the_saga_and_deactivates_the_partner(deploy: Deploy) {
    let platform = TestPlatform::start(Options::on(deploy)).await;
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

async fn a_contract_that_cannot_be_created_is_compensated(deploy: Deploy) {
    let platform = TestPlatform::start(Options::on(deploy)).await;
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

async fn a_saga_that_stalls_past_its_deadline_fails_with_timeout_and_is_compensated(
    deploy: Deploy,
) {
    // compliance is down: the saga stalls after ContratoCreado.
    let platform = TestPlatform::start(Options {
        units: vec![
            ServiceName::Integraciones,
            ServiceName::Alianzas,
            ServiceName::Bff,
        ],
        step_timeout_secs: 1,
        ..Options::on(deploy)
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
        ..Options::on(Deploy::Embedded)
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

async fn an_affiliation_follows_its_partner_through_onboarding_and_deletion(deploy: Deploy) {
    let platform = TestPlatform::start(Options::on(deploy)).await;
    let campanias = platform.url("campanias");
    let created = platform
        .client
        .post(format!("{campanias}/programas"))
        .json(&json!({
            "nombre": "Programa Verano", "brand_id": "brand-1", "tipo": "AFILIADOS",
            "estado": "ACTIVO", "vigencia_inicio": "2026-06-01", "vigencia_fin": "2027-08-31",
            "term_modelo": "CPA", "term_moneda": "USD", "term_tarifa_base": 25.5, "term_tope": 100,
            "afiliaciones": []
        }))
        .send()
        .await
        .unwrap();
    assert_eq!(created.status(), 201);
    let programa: Value = created.json().await.unwrap();
    let programa_id = programa["id"].as_str().unwrap().to_owned();

    // Terms over the limit hold the onboarding in review: the partner exists, not yet eligible.
    let email = "summer@campaigns.test";
    let (onboarding_id, saga_id) = platform
        .onboard(json!({"nombre": "Summer", "email": email, "terminos": {"monto": 90000}}))
        .await;
    let status = platform
        .wait_for(&onboarding_id, "PENDIENTE_REVISION")
        .await;
    let partner_id = partner_id_of(&status);
    let affiliated = platform
        .client
        .post(format!("{campanias}/programas/{programa_id}/afiliaciones"))
        .json(&json!({"afiliado_id": partner_id}))
        .send()
        .await
        .unwrap();
    assert_eq!(affiliated.status(), 201);
    let affiliation: Value = affiliated.json().await.unwrap();
    assert_eq!(affiliation["estado"], "PENDIENTE", "{affiliation}");

    platform.review(&saga_id, "aprobar").await;
    platform.wait_for(&onboarding_id, "COMPLETADA").await;
    let affiliation_state = |wanted: &'static str| {
        let url = format!("{campanias}/programas/{programa_id}");
        let partner_id = partner_id.clone();
        let platform = &platform;
        async move {
            testkit::eventually(
                DEADLINE,
                &format!("the affiliation to be {wanted}"),
                || async {
                    let (_, programa) = platform.get(url.clone()).await;
                    programa["afiliaciones"]
                        .as_array()?
                        .iter()
                        .find(|a| a["afiliado_id"] == partner_id.as_str() && a["estado"] == wanted)
                        .cloned()
                },
            )
            .await
        }
    };
    affiliation_state("ACTIVA").await;

    // The partner's view through the BFF lists the program.
    let (code, view) = platform
        .get(format!(
            "{}/api/v1/partners/{partner_id}",
            platform.url("bff")
        ))
        .await;
    assert_eq!(code, 200);
    let programas = view["programas"]
        .as_array()
        .expect("the view lists programs");
    assert!(
        programas.iter().any(|p| p["id"] == programa_id.as_str()),
        "{view}"
    );

    // The completed onboarding told the partner exactly once.
    let notificaciones = format!("{campanias}/notificaciones?destinatario={email}");
    let sent = testkit::eventually(
        DEADLINE,
        "the partner's notification to be sent",
        || async {
            let (_, page) = platform.get(notificaciones.clone()).await;
            let items = page["items"].as_array()?.clone();
            items
                .iter()
                .all(|n| n["estado"] == "ENVIADA")
                .then_some(items)
                .filter(|i| !i.is_empty())
        },
    )
    .await;
    assert_eq!(sent.len(), 1, "one notification to the partner: {sent:?}");
    assert_eq!(sent[0]["tipo_evento"], "OnboardingEstadoCambiado");
    assert_eq!(sent[0]["intentos"], 1);

    let deleted = platform
        .client
        .delete(format!(
            "{}/api/v1/partners/{partner_id}",
            platform.url("integraciones")
        ))
        .send()
        .await
        .unwrap();
    assert_eq!(deleted.status(), 200);
    affiliation_state("SUSPENDIDA").await;
    platform.stop().await;
}

/// Runs each scenario in both deployments.
macro_rules! in_both_deployments {
    ($($name:ident),* $(,)?) => {
        mod embedded {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    super::$name(super::Deploy::Embedded).await;
                }
            )*
        }
        mod distributed {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    super::$name(super::Deploy::Distributed).await;
                }
            )*
        }
    };
}

in_both_deployments!(
    the_happy_path_completes_with_an_active_contract_and_account,
    a_duplicate_email_fails_the_saga_through_partner_creation_failed,
    rejected_terms_wait_for_review_and_approval_completes,
    a_rejected_review_fails_the_saga_and_deactivates_the_partner,
    a_contract_that_cannot_be_created_is_compensated,
    a_saga_that_stalls_past_its_deadline_fails_with_timeout_and_is_compensated,
    an_affiliation_follows_its_partner_through_onboarding_and_deletion,
);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn distributed_onboardings_survive_a_compliance_replica_killed_midway() {
    const ONBOARDINGS: usize = 200;
    let mut platform = TestPlatform::start(Options::on(Deploy::Distributed)).await;
    let mut onboardings = Vec::new();
    for batch in 0..ONBOARDINGS / 20 {
        let requests = (0..20).map(|i| {
            let n = batch * 20 + i;
            platform.onboard(
                json!({"nombre": format!("Replica {n}"), "email": format!("r{n}@replicas.test")}),
            )
        });
        onboardings.extend(futures_util::future::join_all(requests).await);
        if batch == 3 {
            platform.kill_replica(ServiceName::Compliance).await;
        }
    }
    // A delivery held by the killed replica comes back after its ack wait (30 s).
    let sagas = format!(
        "{}/sagas?estado=COMPLETADA&limit=1",
        platform.url("alianzas")
    );
    testkit::eventually(
        Duration::from_secs(120),
        "every onboarding to complete",
        || async {
            let (_, page) = platform.get(sagas.clone()).await;
            (page["total"] == ONBOARDINGS).then_some(())
        },
    )
    .await;
    let (_, contracts) = platform
        .get(format!("{}/contratos?limit=500", platform.url("alianzas")))
        .await;
    let items = contracts["items"].as_array().unwrap();
    let partners: std::collections::HashSet<&str> = items
        .iter()
        .map(|c| c["partner_id"].as_str().unwrap())
        .collect();
    assert_eq!(items.len(), ONBOARDINGS, "one contract per partner");
    assert_eq!(partners.len(), ONBOARDINGS);
    let (_, report) = platform
        .get(format!(
            "{}/reportes/financieros",
            platform.url("compliance")
        ))
        .await;
    assert_eq!(
        report["totales"]["cuentas_activas"], ONBOARDINGS,
        "one account per partner"
    );
    assert_eq!(
        report["totales"]["contratos_aprobados"], ONBOARDINGS,
        "one outcome per contract"
    );
    assert_eq!(onboardings.len(), ONBOARDINGS);
    platform.stop().await;
}
