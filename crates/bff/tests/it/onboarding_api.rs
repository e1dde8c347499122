//! The onboarding write over a real socket: every invalid field reported, the 202 with its
//! `Location`, the onboarding row and its `CreatePartner` in the outbox, the command on a real
//! embedded bus with `sagaid`, idempotent retries, and the BFF's small routes.

use contracts::partners::CreatePartner;
use contracts::topics;
use serde_json::{json, Value};
use uuid::Uuid;

use testkit::bus::next_matching;
use testkit::db::TestDb;
use testkit::http::{campos, expect_problem};

use crate::helpers::{
    onboarding_count, outbox_rows, spawn_app, spawn_app_on, unused_upstreams, SCHEMA,
};

fn form(email: &str) -> Value {
    json!({
        "nombre": "  Ana Pérez ",
        "email": email,
        "telefono": "+57 300",
        "tipo": "INFLUENCER",
        "terminos": {"monto": 60000, "moneda": "USD"},
    })
}

#[tokio::test]
async fn every_invalid_field_is_listed_and_nothing_is_written() {
    let app = spawn_app(unused_upstreams()).await;
    let response = app
        .post_partner(
            &json!({
                "nombre": "",
                "email": "not-an-address",
                "telefono": "1".repeat(51),
                "direccion": "x".repeat(501),
                "tipo": "SOCIO",
                "terminos": {"monto": "12.345"},
            }),
            None,
        )
        .await;
    let problem = expect_problem(response, 400, "DATOS_INVALIDOS").await;
    assert_eq!(
        campos(&problem),
        [
            "nombre",
            "email",
            "telefono",
            "direccion",
            "tipo",
            "terminos.monto"
        ]
    );

    let response = app.post_partner(&json!({"terminos": [1, 2]}), None).await;
    let problem = expect_problem(response, 400, "DATOS_INVALIDOS").await;
    assert_eq!(campos(&problem), ["nombre", "email", "terminos"]);

    let response = app
        .post_partner(&json!({"nombre": 7, "email": "ana@example.com"}), None)
        .await;
    let problem = expect_problem(response, 400, "DATOS_INVALIDOS").await;
    assert_eq!(campos(&problem), ["nombre"]);

    assert_eq!(onboarding_count(app.db()).await, 0);
    assert!(outbox_rows(app.db()).await.is_empty());
    app.cleanup().await;
}

#[tokio::test]
async fn a_malformed_body_or_content_type_is_a_problem_not_a_500() {
    let app = spawn_app(unused_upstreams()).await;
    let response = app
        .client
        .post(app.url("/api/v1/partners"))
        .header("content-type", "application/json")
        .body("{\"nombre\":")
        .send()
        .await
        .unwrap();
    expect_problem(response, 400, "JSON_INVALIDO").await;
    let response = app
        .client
        .post(app.url("/api/v1/partners"))
        .body("nombre=Ana")
        .send()
        .await
        .unwrap();
    expect_problem(response, 415, "TIPO_CONTENIDO_NO_SOPORTADO").await;
    let response = app.post_partner(&json!([1]), None).await;
    expect_problem(response, 400, "DATOS_INVALIDOS").await;
    app.cleanup().await;
}

#[tokio::test]
async fn an_accepted_onboarding_answers_202_and_writes_its_command_to_the_outbox() {
    let app = spawn_app(unused_upstreams()).await;
    let response = app.post_partner(&form("Ana@Example.com"), None).await;
    assert_eq!(response.status(), 202);
    let location = response.headers()["location"].to_str().unwrap().to_owned();
    let body: Value = response.json().await.unwrap();
    let onboarding_id: Uuid = body["onboarding_id"].as_str().unwrap().parse().unwrap();
    let saga_id: Uuid = body["saga_id"].as_str().unwrap().parse().unwrap();
    assert_ne!(onboarding_id, saga_id);
    let status_url = format!("/api/v1/onboarding/{onboarding_id}");
    assert_eq!(
        body,
        json!({
            "onboarding_id": onboarding_id,
            "saga_id": saga_id,
            "estado": "INICIADA",
            "status_url": status_url,
        })
    );
    assert_eq!(location, status_url);

    let stored = bff::storage::find_onboarding(app.bff.db(), onboarding_id)
        .await
        .unwrap()
        .expect("onboarding row");
    assert_eq!(stored.saga_id, saga_id);
    assert_eq!(stored.nombre, "Ana Pérez");
    assert_eq!(stored.email, "Ana@Example.com");
    assert_eq!(stored.tipo, "INFLUENCER");

    let rows = outbox_rows(app.db()).await;
    assert_eq!(rows.len(), 1);
    let (topic, envelope) = &rows[0];
    assert_eq!(topic, topics::CREATE_PARTNER);
    assert_eq!(envelope.event_type, "CreatePartner");
    assert_eq!(envelope.source, "/alpes/bff");
    assert_eq!(envelope.sagaid, Some(saga_id));
    let command: CreatePartner = envelope.decode().unwrap();
    assert_eq!(
        command,
        CreatePartner {
            onboarding_id,
            saga_id: Some(saga_id),
            nombre: "Ana Pérez".into(),
            email: "Ana@Example.com".into(),
            telefono: Some("+57 300".into()),
            direccion: None,
            tipo: Some("INFLUENCER".into()),
            terminos: Some(json!({"monto": 60000, "moneda": "USD"})),
        }
    );
    assert_eq!(
        stored.solicitud["terminos"],
        json!({"monto": 60000, "moneda": "USD"})
    );
    app.cleanup().await;
}

#[tokio::test]
async fn the_relay_publishes_create_partner_with_the_saga_id_on_the_bus() {
    let app = spawn_app_on(TestDb::sqlite(SCHEMA).await, unused_upstreams(), true).await;
    let mut commands = app.observe(topics::CREATE_PARTNER).await;
    let response = app
        .client
        .post(app.url("/api/v1/partners/"))
        .json(&json!({"nombre": "Bea", "email": "bea@example.com"}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 202);
    let body: Value = response.json().await.unwrap();

    let envelope = next_matching(&mut commands, "CreatePartner", |envelope| {
        envelope.data.value()["onboarding_id"] == body["onboarding_id"]
    })
    .await;
    assert_eq!(
        envelope.sagaid.map(|id| id.to_string()),
        body["saga_id"].as_str().map(str::to_owned)
    );
    let command: CreatePartner = envelope.decode().unwrap();
    assert_eq!(command.nombre, "Bea");
    assert_eq!(command.tipo.as_deref(), Some("AFILIADO"));
    assert_eq!(command.terminos, None);
    assert_eq!(
        command.saga_id.map(|id| id.to_string()).as_deref(),
        body["saga_id"].as_str()
    );
    app.cleanup().await;
}

#[tokio::test]
async fn an_idempotent_retry_is_replayed_and_a_reused_key_refused() {
    let app = spawn_app(unused_upstreams()).await;
    let body = json!({"nombre": "Ana", "email": "ana@example.com", "terminos": {"monto": "10.50", "moneda": "EUR"}});
    let first = app.post_partner(&body, Some("key-1")).await;
    assert_eq!(first.status(), 202);
    let first_location = first.headers()["location"].clone();
    let first_body: Value = first.json().await.unwrap();

    // Same body with its keys in another order: the same request.
    let reordered = json!({"terminos": {"moneda": "EUR", "monto": "10.50"}, "email": "ana@example.com", "nombre": "Ana"});
    let again = app.post_partner(&reordered, Some("key-1")).await;
    assert_eq!(again.status(), 202);
    assert_eq!(again.headers()["location"], first_location);
    assert_eq!(again.headers()["content-type"], "application/json");
    let again_body: Value = again.json().await.unwrap();
    assert_eq!(again_body, first_body);
    assert_eq!(onboarding_count(app.db()).await, 1);
    assert_eq!(outbox_rows(app.db()).await.len(), 1);

    let other = json!({"nombre": "Otra", "email": "ana@example.com"});
    let reused = app.post_partner(&other, Some("key-1")).await;
    expect_problem(reused, 422, "IDEMPOTENCY_KEY_REUTILIZADA").await;

    let blank = app.post_partner(&body, Some(" ")).await;
    let problem = expect_problem(blank, 400, "DATOS_INVALIDOS").await;
    assert_eq!(campos(&problem), ["Idempotency-Key"]);

    let fresh = app.post_partner(&body, Some("key-2")).await;
    assert_eq!(fresh.status(), 202);
    let fresh_body: Value = fresh.json().await.unwrap();
    assert_ne!(fresh_body["onboarding_id"], first_body["onboarding_id"]);
    assert_eq!(onboarding_count(app.db()).await, 2);
    app.cleanup().await;
}

#[tokio::test]
async fn concurrent_twins_of_one_idempotent_request_start_one_onboarding() {
    let app = spawn_app(unused_upstreams()).await;
    let body = form("twin@example.com");
    let (a, b, c) = tokio::join!(
        app.post_partner(&body, Some("twin")),
        app.post_partner(&body, Some("twin")),
        app.post_partner(&body, Some("twin")),
    );
    let mut ids = Vec::new();
    for response in [a, b, c] {
        assert_eq!(response.status(), 202);
        let body: Value = response.json().await.unwrap();
        ids.push(body["onboarding_id"].clone());
    }
    assert!(ids.windows(2).all(|pair| pair[0] == pair[1]), "{ids:?}");
    assert_eq!(onboarding_count(app.db()).await, 1);
    assert_eq!(outbox_rows(app.db()).await.len(), 1);
    app.cleanup().await;
}

#[tokio::test]
async fn an_onboarding_not_started_here_is_404_and_a_bad_id_400() {
    let app = spawn_app(unused_upstreams()).await;
    let response = app
        .get(&format!("/api/v1/onboarding/{}", Uuid::now_v7()))
        .await;
    expect_problem(response, 404, "ONBOARDING_NO_ENCONTRADO").await;
    let response = app.get("/api/v1/onboarding/not-a-uuid").await;
    expect_problem(response, 400, "DATOS_INVALIDOS").await;
    let response = app.get("/api/v1/partners/not-a-uuid").await;
    expect_problem(response, 400, "DATOS_INVALIDOS").await;
    app.cleanup().await;
}

#[tokio::test]
async fn ping_answers_pong_and_the_openapi_document_lists_every_endpoint() {
    let app = spawn_app(unused_upstreams()).await;
    let response = app.get("/ping").await;
    assert_eq!(response.status(), 200);
    assert!(response.headers()["content-type"]
        .to_str()
        .unwrap()
        .starts_with("text/plain"));
    assert_eq!(response.text().await.unwrap(), "pong");

    let document: Value = app.get("/openapi.json").await.json().await.unwrap();
    let paths = document["paths"].as_object().unwrap();
    for path in [
        "/ping",
        "/api/v1/partners",
        "/api/v1/partners/{partner_id}",
        "/api/v1/onboarding/{onboarding_id}",
    ] {
        assert!(
            paths.contains_key(path),
            "{path} missing: {:?}",
            paths.keys()
        );
    }
    assert!(document["paths"]["/api/v1/partners"]["post"]["responses"]["202"].is_object());
    assert_eq!(app.get("/health").await.status(), 200);
    assert_eq!(app.get("/ready").await.status(), 200);
    app.cleanup().await;
}
