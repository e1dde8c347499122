//! The `/sagas` API over a real socket: a saga with its ordered log, 404 and 400 as
//! problem+json, the manual review (approve, reject, retried decisions, refused transitions),
//! and the list with its filters and pagination.

use contracts::topics;
use reqwest::StatusCode;
use sagas::domain::EstadoSaga;
use serde_json::{json, Value};
use uuid::Uuid;

use testkit::bus::next_matching;

use crate::helpers::{config, Harness, Instance, Onboarding};

async fn get(harness: &Harness, app: &Instance, path: &str) -> (StatusCode, Value) {
    let response = harness.client.get(app.url(path)).send().await.unwrap();
    let status = response.status();
    (status, response.json().await.unwrap())
}

async fn review(
    harness: &Harness,
    app: &Instance,
    saga_id: Uuid,
    body: Value,
) -> (StatusCode, Value) {
    let response = harness
        .client
        .post(app.url(&format!("/sagas/{saga_id}/revision")))
        .json(&body)
        .send()
        .await
        .unwrap();
    let status = response.status();
    if status.is_client_error() {
        assert_eq!(
            response.headers()["content-type"],
            "application/problem+json"
        );
    }
    (status, response.json().await.unwrap())
}

/// Drives a saga to `PENDIENTE_REVISION` through the bus.
async fn pending_review(harness: &Harness) -> Onboarding {
    let onboarding = Onboarding::new();
    let [create, creado, contrato, rechazado] = onboarding.through_rejection();
    harness
        .publish_all(&[&create, &creado, &contrato, &rechazado])
        .await;
    harness
        .wait_saga(onboarding.saga_id, "the review wait", |s| {
            s.saga.estado == EstadoSaga::PendienteRevision
        })
        .await;
    onboarding
}

#[tokio::test]
async fn a_saga_is_served_with_its_ordered_log() {
    let harness = Harness::sqlite().await;
    let app = harness.instance(config(), true).await;
    let onboarding = pending_review(&harness).await;
    let (status, body) = get(&harness, &app, &format!("/sagas/{}", onboarding.saga_id)).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body["saga_id"], onboarding.saga_id.to_string());
    assert_eq!(body["onboarding_id"], onboarding.onboarding_id.to_string());
    assert_eq!(body["partner_id"], onboarding.partner_id.to_string());
    assert_eq!(body["contrato_id"], onboarding.contrato_id.to_string());
    assert_eq!(body["estado"], "PENDIENTE_REVISION");
    assert_eq!(body["causa"], "MONTO_INVALIDO");
    assert_eq!(body["ultimo_paso"], "RevisionContrato");
    assert_eq!(body["paso_deadline"], Value::Null);
    let eventos = body["eventos"].as_array().unwrap();
    let tipos: Vec<&str> = eventos
        .iter()
        .map(|e| e["tipo_evento"].as_str().unwrap())
        .collect();
    assert_eq!(
        tipos,
        [
            "CreatePartner",
            "PartnerCreado",
            "ContratoCreado",
            "ContratoRechazado",
            "RevisionContrato"
        ]
    );
    let first = &eventos[0];
    assert_eq!(first["estado_procesamiento"], "PROCESADO");
    assert_eq!(first["evento_data"]["email"], onboarding.email);
    assert_eq!(first["evento_data"]["terminos"], json!({"monto": 60000}));
    let recibido = first["recibido_en"].as_str().unwrap();
    assert!(recibido.ends_with('Z'), "{recibido}");
    assert!(first["procesado_en"].is_string());
    harness.cleanup().await;
}

#[tokio::test]
async fn unknown_sagas_are_404_and_malformed_ids_400() {
    let harness = Harness::sqlite().await;
    let app = harness.instance(config(), false).await;
    let (status, body) = get(&harness, &app, &format!("/sagas/{}", Uuid::now_v7())).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_eq!(body["codigo"], "SAGA_NO_ENCONTRADA");
    let (status, body) = get(&harness, &app, "/sagas/not-a-uuid").await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(body["codigo"], "DATOS_INVALIDOS");
    let (status, body) = review(
        &harness,
        &app,
        Uuid::now_v7(),
        json!({"decision": "aprobar"}),
    )
    .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_eq!(body["codigo"], "SAGA_NO_ENCONTRADA");
    harness.cleanup().await;
}

#[tokio::test]
async fn approving_a_review_publishes_revision_aprobada_and_completes_once() {
    let harness = Harness::sqlite().await;
    let (mut resolved, resolved_group) = harness.observe(topics::REVIEW_RESOLVED).await;
    let (_commands, commands_group) = harness.observe(topics::DEACTIVATE_PARTNER).await;
    let app = harness.instance(config(), true).await;
    let onboarding = pending_review(&harness).await;

    let body = json!({"decision": "aprobar", "comentarios": "monto acordado con el partner"});
    let (status, saga) = review(&harness, &app, onboarding.saga_id, body.clone()).await;
    assert_eq!(status, StatusCode::OK, "{saga}");
    assert_eq!(saga["estado"], "COMPLETADA");
    assert_eq!(saga["causa"], Value::Null);
    assert_eq!(saga["ultimo_paso"], "RevisionAprobada");
    let eventos = saga["eventos"].as_array().unwrap();
    assert_eq!(eventos.len(), 6);
    assert_eq!(eventos[5]["tipo_evento"], "RevisionAprobada");

    let event = next_matching(&mut resolved, "RevisionAprobada", |e| {
        e.sagaid == Some(onboarding.saga_id)
    })
    .await;
    assert_eq!(event.event_type, "RevisionAprobada");
    assert_eq!(
        event.data.value(),
        json!({
            "saga_id": onboarding.saga_id,
            "contrato_id": onboarding.contrato_id,
            "partner_id": onboarding.partner_id,
            "comentarios": "monto acordado con el partner",
        })
    );
    assert_eq!(
        event.causationid,
        Some(eventos[4]["event_id"].as_str().unwrap().parse().unwrap())
    );

    // A retried identical decision: the same state, nothing new.
    let (status, again) = review(&harness, &app, onboarding.saga_id, body).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(again, saga);
    // The other decision is too late.
    let (status, problem) = review(
        &harness,
        &app,
        onboarding.saga_id,
        json!({"decision": "rechazar"}),
    )
    .await;
    assert_eq!(status, StatusCode::CONFLICT);
    assert_eq!(problem["codigo"], "TRANSICION_INVALIDA");

    harness.wait_outbox_empty().await;
    assert_eq!(harness.bus.pending(&resolved_group).await.unwrap(), 0);
    assert_eq!(harness.bus.pending(&commands_group).await.unwrap(), 0);
    harness.cleanup().await;
}

#[tokio::test]
async fn rejecting_a_review_publishes_revision_rechazada_and_the_compensation() {
    let harness = Harness::sqlite().await;
    let (mut resolved, _) = harness.observe(topics::REVIEW_RESOLVED).await;
    let (mut commands, _) = harness.observe(topics::DEACTIVATE_PARTNER).await;
    let app = harness.instance(config(), true).await;
    let onboarding = pending_review(&harness).await;

    let (status, saga) = review(
        &harness,
        &app,
        onboarding.saga_id,
        json!({"decision": "rechazar"}),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{saga}");
    assert_eq!(saga["estado"], "FALLIDA");
    assert_eq!(saga["causa"], "REVISION_RECHAZADA");
    let tipos: Vec<&str> = saga["eventos"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["tipo_evento"].as_str().unwrap())
        .collect();
    assert_eq!(tipos[5..], ["RevisionRechazada", "DesactivarPartner"]);

    let rejected = next_matching(&mut resolved, "RevisionRechazada", |e| {
        e.sagaid == Some(onboarding.saga_id)
    })
    .await;
    assert_eq!(rejected.event_type, "RevisionRechazada");
    assert_eq!(rejected.data.value()["comentarios"], Value::Null);
    let command = next_matching(&mut commands, "DesactivarPartner", |e| {
        e.sagaid == Some(onboarding.saga_id)
    })
    .await;
    assert_eq!(command.causationid, Some(rejected.id));
    assert_eq!(
        command.data.value()["partner_id"],
        onboarding.partner_id.to_string()
    );

    let (status, again) = review(
        &harness,
        &app,
        onboarding.saga_id,
        json!({"decision": "rechazar", "comentarios": "otra vez"}),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(again["eventos"].as_array().unwrap().len(), 7);

    // integraciones closes the compensation; the decision is still "already rejected".
    harness
        .publish(&onboarding.partner_desactivado(&command))
        .await;
    harness
        .wait_saga(onboarding.saga_id, "the compensation to close", |s| {
            s.saga.ultimo_paso == sagas::domain::Paso::PartnerDesactivado
        })
        .await;
    let (status, _) = review(
        &harness,
        &app,
        onboarding.saga_id,
        json!({"decision": "rechazar"}),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    harness.cleanup().await;
}

#[tokio::test]
async fn bad_decisions_are_400_and_sagas_not_in_review_are_409() {
    let harness = Harness::sqlite().await;
    let app = harness.instance(config(), false).await;
    let onboarding = Onboarding::new();
    app.sagas
        .saga_handler()
        .dispatch(&onboarding.create_partner().envelope)
        .await
        .unwrap();
    for body in [
        json!({"decision": "quizas"}),
        json!({}),
        json!({"decision": "APROBAR"}),
        json!({"decision": "aprobar", "comentarios": "x".repeat(2001)}),
    ] {
        let (status, problem) = review(&harness, &app, onboarding.saga_id, body.clone()).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
        assert_eq!(problem["codigo"], "DATOS_INVALIDOS");
        assert!(!problem["errores"].as_array().unwrap().is_empty());
    }
    let response = harness
        .client
        .post(app.url(&format!("/sagas/{}/revision", onboarding.saga_id)))
        .body("decision=aprobar")
        .send()
        .await
        .unwrap();
    assert!(response.status().is_client_error());

    let (status, problem) = review(
        &harness,
        &app,
        onboarding.saga_id,
        json!({"decision": "aprobar"}),
    )
    .await;
    assert_eq!(status, StatusCode::CONFLICT);
    assert_eq!(problem["codigo"], "TRANSICION_INVALIDA");
    harness.cleanup().await;
}

#[tokio::test]
async fn sagas_are_listed_with_filters_and_pages() {
    let harness = Harness::sqlite().await;
    let app = harness.instance(config(), false).await;
    let handler = app.sagas.saga_handler();
    let mut onboardings = Vec::new();
    for failed in [false, true, true] {
        let onboarding = Onboarding::new();
        let create = onboarding.create_partner();
        handler.dispatch(&create.envelope).await.unwrap();
        if failed {
            let message = onboarding.partner_creation_failed(&create, "EMAIL_EXISTENTE");
            handler.dispatch(&message.envelope).await.unwrap();
        } else {
            let message = onboarding.partner_creado(&create);
            handler.dispatch(&message.envelope).await.unwrap();
        }
        onboardings.push(onboarding);
    }

    let (status, page) = get(&harness, &app, "/sagas").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(page["total"], 3);
    assert_eq!(page["items"].as_array().unwrap().len(), 3);
    assert!(
        page["items"][0].get("eventos").is_none(),
        "lists carry no log"
    );

    let (_, page) = get(&harness, &app, "/sagas?estado=FALLIDA&limit=1").await;
    assert_eq!(page["total"], 2);
    assert_eq!(
        page["items"][0]["saga_id"],
        onboardings[1].saga_id.to_string()
    );
    let cursor = page["next_cursor"].as_str().unwrap().to_owned();
    let (_, next) = get(
        &harness,
        &app,
        &format!("/sagas?estado=FALLIDA&limit=1&cursor={cursor}"),
    )
    .await;
    assert_eq!(
        next["items"][0]["saga_id"],
        onboardings[2].saga_id.to_string()
    );
    assert_eq!(next["next_cursor"], Value::Null);

    let partner = onboardings[0].partner_id;
    let (_, page) = get(&harness, &app, &format!("/sagas?partner_id={partner}")).await;
    assert_eq!(page["total"], 1);
    assert_eq!(page["items"][0]["estado"], "INICIADA");
    assert!(page["items"][0]["paso_deadline"].is_string());
    let onboarding_id = onboardings[2].onboarding_id;
    let (_, page) = get(
        &harness,
        &app,
        &format!("/sagas?onboarding_id={onboarding_id}"),
    )
    .await;
    assert_eq!(
        page["items"][0]["saga_id"],
        onboardings[2].saga_id.to_string()
    );

    for query in ["estado=PERDIDA", "partner_id=x", "limit=0", "cursor=nope"] {
        let (status, problem) = get(&harness, &app, &format!("/sagas?{query}")).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{query}");
        assert_eq!(problem["codigo"], "DATOS_INVALIDOS");
    }
    harness.cleanup().await;
}

#[tokio::test]
async fn the_openapi_document_and_metrics_describe_the_saga_log() {
    let harness = Harness::sqlite().await;
    let app = harness.instance(config(), false).await;
    let (status, document) = get(&harness, &app, "/openapi.json").await;
    assert_eq!(status, StatusCode::OK);
    for path in ["/sagas", "/sagas/{saga_id}", "/sagas/{saga_id}/revision"] {
        assert!(document["paths"].get(path).is_some(), "{path}");
    }
    app.sagas
        .saga_handler()
        .dispatch(&Onboarding::new().create_partner().envelope)
        .await
        .unwrap();
    let metrics = harness
        .client
        .get(app.url("/metrics"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        metrics.contains("alpes_sagas{estado=\"INICIADA\"} 1"),
        "{metrics}"
    );
    harness.cleanup().await;
}
