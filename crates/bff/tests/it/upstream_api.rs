//! The aggregated reads against real HTTP stub servers: a partner with its contracts, account
//! and saga; the list proxied with its query string; an onboarding's status from the saga log;
//! and every way an upstream can fail: 500 → 502, silence → 504, nothing listening → 502,
//! its own 4xx passed through. Never a 200 on failure.

use std::sync::Arc;
use std::time::{Duration, Instant};

use bff::BffConfig;
use serde_json::{json, Value};
use uuid::Uuid;

use testkit::http::expect_problem;

use crate::helpers::{spawn_app, TestApp};
use crate::stubs::{
    alianzas, failing, hanging, integraciones, serve, unreachable_url, Canned, SagaCanned,
    Upstreams,
};

/// A short timeout, so the 504 tests stay fast.
const SHORT: Duration = Duration::from_millis(300);

async fn partner_detail(app: &TestApp, partner_id: Uuid) -> reqwest::Response {
    app.get(&format!("/api/v1/partners/{partner_id}")).await
}

async fn status_of(app: &TestApp, onboarding: &Value) -> reqwest::Response {
    app.get(onboarding["status_url"].as_str().unwrap()).await
}

fn form() -> Value {
    json!({"nombre": "Ana", "email": "ana@example.com", "tipo": "INFLUENCER"})
}

/// Canned data for one partner and a BFF whose three upstreams serve it.
async fn app_over_healthy_upstreams(saga: SagaCanned, cuenta: bool) -> (Arc<Canned>, TestApp) {
    let canned = Canned::new(saga, cuenta);
    let upstreams = Upstreams::healthy(&canned).await;
    let app = spawn_app(upstreams.config()).await;
    (canned, app)
}

/// Asserts that the partner's aggregated detail is the problem `status` with `codigo`.
async fn expect_detail_problem(app: &TestApp, partner_id: Uuid, status: u16, codigo: &str) {
    expect_problem(partner_detail(app, partner_id).await, status, codigo).await;
}

/// Starts an onboarding and asserts that its status is the problem `status` with `codigo`.
async fn expect_status_problem(app: &TestApp, status: u16, codigo: &str) {
    let onboarding = app.start_onboarding(&form()).await;
    expect_problem(status_of(app, &onboarding).await, status, codigo).await;
}

#[tokio::test]
async fn a_partner_is_aggregated_with_contracts_account_and_saga() {
    let (canned, app) = app_over_healthy_upstreams(SagaCanned::Completada, true).await;
    let response = partner_detail(&app, canned.partner_id).await;
    assert_eq!(response.status(), 200);
    let body: Value = response.json().await.unwrap();
    // Every field integraciones sent is kept.
    for (campo, value) in canned.partner().as_object().unwrap() {
        assert_eq!(&body[campo], value, "{campo}");
    }
    assert_eq!(
        body["contratos"],
        json!([canned.otro_contrato(), canned.contrato()])
    );
    assert_eq!(body["cuenta_financiera"], canned.cuenta());
    assert_eq!(body["saga"]["estado"], "COMPLETADA");
    assert_eq!(body["saga"]["partner_id"], json!(canned.partner_id));
    app.cleanup().await;
}

#[tokio::test]
async fn a_partner_without_account_or_saga_has_nulls() {
    let (canned, app) = app_over_healthy_upstreams(SagaCanned::Missing, false).await;
    let body: Value = partner_detail(&app, canned.partner_id)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(body["id"], json!(canned.partner_id));
    assert_eq!(body["cuenta_financiera"], Value::Null);
    assert_eq!(body["saga"], Value::Null);
    assert_eq!(body["contratos"].as_array().map(Vec::len), Some(2));
    app.cleanup().await;
}

#[tokio::test]
async fn an_unknown_partner_is_404_even_when_other_services_fail() {
    let canned = Canned::new(SagaCanned::Completada, true);
    let config = BffConfig::new(
        serve(integraciones(canned.clone())).await,
        serve(failing()).await,
        unreachable_url(),
    );
    let app = spawn_app(config).await;
    let response = partner_detail(&app, Uuid::now_v7()).await;
    expect_problem(response, 404, "PARTNER_NO_ENCONTRADO").await;
    app.cleanup().await;
}

#[tokio::test]
async fn the_list_is_proxied_with_its_query_string_and_upstream_4xx_passed_through() {
    let (canned, app) = app_over_healthy_upstreams(SagaCanned::Completada, true).await;

    let response = app
        .get("/api/v1/partners?tipo=INFLUENCER&q=ana%20p&limit=10")
        .await;
    assert_eq!(response.status(), 200);
    let page: Value = response.json().await.unwrap();
    assert_eq!(page["query"], "tipo=INFLUENCER&q=ana%20p&limit=10");
    assert_eq!(page["total"], 1);
    assert_eq!(page["items"][0]["id"], json!(canned.partner_id));

    let plain: Value = app.get("/api/v1/partners/").await.json().await.unwrap();
    assert_eq!(plain["query"], Value::Null);

    let refused = app.get("/api/v1/partners?estado=MALO").await;
    let problem = expect_problem(refused, 400, "DATOS_INVALIDOS").await;
    assert_eq!(problem["detail"], "stub says DATOS_INVALIDOS");
    app.cleanup().await;
}

#[tokio::test]
async fn an_upstream_500_is_a_502_problem() {
    let canned = Canned::new(SagaCanned::Completada, true);
    let broken = serve(failing()).await;
    let app = spawn_app(BffConfig::new(&broken, &broken, &broken)).await;
    let problem = expect_problem(app.get("/api/v1/partners").await, 502, "UPSTREAM_ERROR").await;
    assert!(!problem["detail"].as_str().unwrap().contains("stack trace"));
    expect_detail_problem(&app, canned.partner_id, 502, "UPSTREAM_ERROR").await;
    app.cleanup().await;

    // Only the account service failing still fails the aggregate.
    let healthy = Upstreams::healthy(&canned).await;
    let app = spawn_app(BffConfig::new(
        &healthy.integraciones,
        &healthy.alianzas,
        &broken,
    ))
    .await;
    expect_detail_problem(&app, canned.partner_id, 502, "UPSTREAM_ERROR").await;
    app.cleanup().await;
}

#[tokio::test]
async fn an_upstream_that_never_answers_is_a_504_within_the_timeout() {
    let canned = Canned::new(SagaCanned::Completada, true);
    let silent = serve(hanging()).await;
    let healthy = Upstreams::healthy(&canned).await;
    let config = BffConfig::new(&silent, &healthy.alianzas, &healthy.compliance)
        .with_upstream_timeout(SHORT);
    let app = spawn_app(config).await;

    let started = Instant::now();
    expect_problem(app.get("/api/v1/partners").await, 504, "UPSTREAM_TIMEOUT").await;
    expect_detail_problem(&app, canned.partner_id, 504, "UPSTREAM_TIMEOUT").await;
    // Both calls waited about the timeout each, not the client's own patience.
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "{:?}",
        started.elapsed()
    );
    app.cleanup().await;

    // A silent saga log makes the aggregate a 504 too.
    let config = BffConfig::new(&healthy.integraciones, &silent, &healthy.compliance)
        .with_upstream_timeout(SHORT);
    let app = spawn_app(config).await;
    expect_detail_problem(&app, canned.partner_id, 504, "UPSTREAM_TIMEOUT").await;
    app.cleanup().await;
}

#[tokio::test]
async fn an_unreachable_upstream_is_a_502() {
    let canned = Canned::new(SagaCanned::Completada, true);
    let nowhere = unreachable_url();
    let app = spawn_app(BffConfig::new(&nowhere, &nowhere, &nowhere)).await;
    expect_problem(app.get("/api/v1/partners").await, 502, "UPSTREAM_ERROR").await;
    expect_detail_problem(&app, canned.partner_id, 502, "UPSTREAM_ERROR").await;
    expect_status_problem(&app, 502, "UPSTREAM_ERROR").await;
    app.cleanup().await;
}

#[tokio::test]
async fn an_onboarding_the_saga_log_has_not_recorded_is_iniciada() {
    let (_canned, app) = app_over_healthy_upstreams(SagaCanned::Missing, false).await;
    let onboarding = app.start_onboarding(&form()).await;
    let response = status_of(&app, &onboarding).await;
    assert_eq!(response.status(), 200);
    let body: Value = response.json().await.unwrap();
    assert_eq!(
        body,
        json!({
            "onboarding_id": onboarding["onboarding_id"],
            "saga_id": onboarding["saga_id"],
            "estado": "INICIADA",
            "causa": null,
            "partner_id": null,
            "contrato": null,
            "compliance": {
                "resultado": null,
                "validacion_fallida": null,
                "causa_rechazo": null,
                "cuenta": null,
            },
            "timeline": [],
        })
    );
    app.cleanup().await;
}

#[tokio::test]
async fn a_completed_onboarding_shows_partner_contract_approval_account_and_timeline() {
    let (canned, app) = app_over_healthy_upstreams(SagaCanned::Completada, true).await;
    let onboarding = app.start_onboarding(&form()).await;
    let body: Value = status_of(&app, &onboarding).await.json().await.unwrap();
    assert_eq!(body["saga_id"], onboarding["saga_id"]);
    assert_eq!(body["estado"], "COMPLETADA");
    assert_eq!(body["causa"], Value::Null);
    assert_eq!(body["partner_id"], json!(canned.partner_id));
    // The onboarding's own contract, picked by the id in the saga log, not merely the first.
    assert_eq!(body["contrato"], canned.contrato());
    assert_eq!(
        body["compliance"],
        json!({
            "resultado": "APROBADO",
            "validacion_fallida": null,
            "causa_rechazo": null,
            "cuenta": canned.cuenta(),
        })
    );
    let tipos: Vec<&str> = body["timeline"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["tipo_evento"].as_str().unwrap())
        .collect();
    assert_eq!(
        tipos,
        [
            "CreatePartner",
            "PartnerCreado",
            "ContratoCreado",
            "ContratoAprobado"
        ]
    );
    assert_eq!(
        body["timeline"][1],
        json!({
            "tipo_evento": "PartnerCreado",
            "estado_procesamiento": "PROCESADO",
            "recibido_en": "2025-01-01T00:00:00Z",
            "procesado_en": "2025-01-01T00:00:01Z",
            "evento_data": {"partner_id": canned.partner_id},
        })
    );
    app.cleanup().await;
}

#[tokio::test]
async fn a_rejected_contract_shows_the_failed_rule_and_no_account() {
    let (canned, app) = app_over_healthy_upstreams(SagaCanned::PendienteRevision, false).await;
    let onboarding = app.start_onboarding(&form()).await;
    let body: Value = status_of(&app, &onboarding).await.json().await.unwrap();
    assert_eq!(body["estado"], "PENDIENTE_REVISION");
    // The saga log left `partner_id` out: it comes from the PartnerCreado entry.
    assert_eq!(body["partner_id"], json!(canned.partner_id));
    assert_eq!(body["contrato"]["estado"], "en_revision");
    assert_eq!(
        body["compliance"],
        json!({
            "resultado": "RECHAZADO",
            "validacion_fallida": "MONTO_INVALIDO",
            "causa_rechazo": "monto above the limit",
            "cuenta": null,
        })
    );
    assert_eq!(body["timeline"].as_array().map(Vec::len), Some(5));
    app.cleanup().await;
}

#[tokio::test]
async fn a_silent_or_failing_saga_log_fails_the_status_honestly() {
    let silent = serve(hanging()).await;
    let nowhere = unreachable_url();
    let app =
        spawn_app(BffConfig::new(&nowhere, &silent, &nowhere).with_upstream_timeout(SHORT)).await;
    expect_status_problem(&app, 504, "UPSTREAM_TIMEOUT").await;
    app.cleanup().await;

    let broken = serve(failing()).await;
    let app = spawn_app(BffConfig::new(&nowhere, &broken, &nowhere)).await;
    expect_status_problem(&app, 502, "UPSTREAM_ERROR").await;
    app.cleanup().await;

    // The saga log answers, but the account service is down: still no 200.
    let canned = Canned::new(SagaCanned::Completada, true);
    let alianzas = serve(alianzas(canned.clone())).await;
    let app = spawn_app(BffConfig::new(&nowhere, &alianzas, &broken)).await;
    expect_status_problem(&app, 502, "UPSTREAM_ERROR").await;
    app.cleanup().await;
}
