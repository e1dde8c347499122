//! The contracts and templates API over a real socket: every endpoint and error code,
//! problem+json for bad input, optimistic concurrency, time travel, pagination and the
//! original's aliases.

use contracts::topics;
use serde_json::{json, Value};
use uuid::Uuid;

use testkit::bus::next_matching;
use testkit::http::{campos, expect_problem};

use crate::helpers::{contrato_body, spawn_app, spawn_app_on_postgres, TestApp};

async fn post(app: &TestApp, path: &str, body: Value) -> reqwest::Response {
    app.client
        .post(app.url(path))
        .json(&body)
        .send()
        .await
        .unwrap()
}

async fn put(app: &TestApp, path: &str, body: Value) -> reqwest::Response {
    app.client
        .put(app.url(path))
        .json(&body)
        .send()
        .await
        .unwrap()
}

/// Creates a contract and activates it through the consumer path (a compliance approval).
async fn active_contract(app: &TestApp) -> String {
    let created = app.create_contrato(contrato_body(Uuid::now_v7())).await;
    let id: Uuid = created["id"].as_str().unwrap().parse().unwrap();
    let approval = contracts::compliance::ContratoAprobado {
        contrato_id: id,
        partner_id: created["partner_id"].as_str().unwrap().parse().unwrap(),
        onboarding_id: None,
        validaciones_pasadas: vec![],
    };
    let envelope = kernel::Envelope::wrap("compliance", &approval, Default::default());
    app.service.handler().handle(&envelope).await.unwrap();
    id.to_string()
}

#[tokio::test]
async fn creating_a_contract_answers_201_with_location_and_publishes_contrato_creado() {
    let app = spawn_app().await;
    let mut created_topic = app.observe(topics::CONTRACT_CREATED).await;
    let partner_id = Uuid::now_v7();
    let response = post(&app, "/contratos", contrato_body(partner_id)).await;
    assert_eq!(response.status(), 201);
    let location = response.headers()["location"].to_str().unwrap().to_owned();
    let body: Value = response.json().await.unwrap();
    let id = body["id"].as_str().unwrap().to_owned();
    assert_eq!(location, format!("/contratos/{id}"));
    assert_eq!(body["estado"], "pendiente");
    assert_eq!(body["version"], 1);
    assert_eq!(body["monto"], "25.00");
    assert_eq!(body["tipo"], "CPA");
    assert_eq!(body["fecha_inicio"], "2026-01-01");
    assert_eq!(body["fecha_fin"], "2099-12-31");
    assert_eq!(body["onboarding_id"], Value::Null);
    assert!(body["fecha_creacion"].as_str().unwrap().ends_with('Z'));

    let (status, fetched) = app.get_json(&location).await;
    assert_eq!(status, 200);
    assert_eq!(fetched, body);

    let event = next_matching(&mut created_topic, "ContratoCreado", |e| {
        e.data.value()["contrato_id"] == id.as_str()
    })
    .await;
    assert_eq!(event.event_type, "ContratoCreado");
    assert_eq!(event.data.value()["partner_id"], partner_id.to_string());
    assert_eq!(event.data.value()["estado"], "pendiente");
    assert_eq!(event.data.value()["monto"], "25.00");
    app.cleanup().await;
}

#[tokio::test]
async fn a_retried_create_with_the_same_idempotency_key_creates_one_contract() {
    let app = spawn_app().await;
    let partner_id = Uuid::now_v7();
    let send = |body: Value, key: &'static str| {
        app.client
            .post(app.url("/contratos"))
            .header("Idempotency-Key", key)
            .json(&body)
            .send()
    };
    let first = send(contrato_body(partner_id), "k-1").await.unwrap();
    assert_eq!(first.status(), 201);
    let location = first.headers()["location"].clone();
    let first: Value = first.json().await.unwrap();
    let again = send(contrato_body(partner_id), "k-1").await.unwrap();
    assert_eq!(again.status(), 201);
    assert_eq!(again.headers()["location"], location);
    assert_eq!(again.json::<Value>().await.unwrap(), first);
    let (_, list) = app
        .get_json(&format!("/contratos?partner_id={partner_id}"))
        .await;
    assert_eq!(list["total"], 1);
    let mut other = contrato_body(partner_id);
    other["monto"] = json!("1.00");
    let response = send(other, "k-1").await.unwrap();
    expect_problem(response, 422, "IDEMPOTENCY_KEY_REUTILIZADA").await;
    app.cleanup().await;
}

#[tokio::test]
async fn fecha_inicio_defaults_to_today_and_monto_accepts_numbers() {
    let app = spawn_app().await;
    let body =
        json!({"partner_id": Uuid::now_v7(), "tipo": "revshare", "monto": 10.5, "moneda": "EUR"});
    let created = app.create_contrato(body).await;
    assert_eq!(
        created["fecha_inicio"],
        kernel::now().date_naive().to_string()
    );
    assert_eq!(created["monto"], "10.50");
    assert_eq!(created["fecha_fin"], Value::Null);
    assert_eq!(created["condiciones"], Value::Null);
    app.cleanup().await;
}

#[tokio::test]
async fn bad_input_is_400_datos_invalidos_listing_every_field() {
    let app = spawn_app().await;
    let response = post(
        &app,
        "/contratos",
        json!({"partner_id": "x", "tipo": "trueque", "monto": -1, "moneda": "usd",
               "fecha_inicio": "2025-02-30"}),
    )
    .await;
    let problem = expect_problem(response, 400, "DATOS_INVALIDOS").await;
    assert_eq!(
        campos(&problem),
        ["partner_id", "tipo", "monto", "moneda", "fecha_inicio"]
    );
    let response = post(
        &app,
        "/contratos",
        json!({"partner_id": Uuid::now_v7(), "tipo": "CPA", "monto": "1.234", "moneda": "USD",
               "fecha_inicio": "2025-02-01", "fecha_fin": "2025-01-01"}),
    )
    .await;
    let problem = expect_problem(response, 400, "DATOS_INVALIDOS").await;
    assert_eq!(campos(&problem), ["monto", "fecha_fin"]);
    let response = post(&app, "/contratos", json!({})).await;
    let problem = expect_problem(response, 400, "DATOS_INVALIDOS").await;
    assert_eq!(campos(&problem), ["partner_id", "tipo", "monto", "moneda"]);
    // Malformed JSON and a missing content type are 4xx problems too.
    let response = app
        .client
        .post(app.url("/contratos"))
        .header("content-type", "application/json")
        .body("{")
        .send()
        .await
        .unwrap();
    expect_problem(response, 400, "JSON_INVALIDO").await;
    let response = app
        .client
        .post(app.url("/contratos"))
        .body("{}")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 415);
    app.cleanup().await;
}

#[tokio::test]
async fn an_unknown_or_malformed_contract_id_is_404_or_400() {
    let app = spawn_app().await;
    let unknown = Uuid::now_v7();
    for path in [
        format!("/contratos/{unknown}"),
        format!("/contratos/{unknown}/eventos"),
        format!("/contratos/{unknown}?version=1"),
    ] {
        let response = app.client.get(app.url(&path)).send().await.unwrap();
        expect_problem(response, 404, "CONTRATO_NO_ENCONTRADO").await;
    }
    let response = post(&app, &format!("/contratos/{unknown}/suspender"), json!({})).await;
    expect_problem(response, 404, "CONTRATO_NO_ENCONTRADO").await;
    let response = put(
        &app,
        &format!("/contratos/{unknown}"),
        json!({"version": 1}),
    )
    .await;
    expect_problem(response, 404, "CONTRATO_NO_ENCONTRADO").await;
    let response = app
        .client
        .get(app.url("/contratos/not-a-uuid"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 400);
    app.cleanup().await;
}

#[tokio::test]
async fn put_changes_terms_with_the_expected_version_and_a_stale_one_is_409() {
    let app = spawn_app().await;
    let created = app.create_contrato(contrato_body(Uuid::now_v7())).await;
    let path = format!("/contratos/{}", created["id"].as_str().unwrap());
    let response = put(
        &app,
        &path,
        json!({"version": 1, "monto": 30, "condiciones": null, "fecha_fin": "2098-06-30"}),
    )
    .await;
    assert_eq!(response.status(), 200);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["version"], 2);
    assert_eq!(body["monto"], "30.00");
    assert_eq!(body["condiciones"], Value::Null);
    assert_eq!(body["fecha_fin"], "2098-06-30");
    assert_eq!(body["moneda"], "USD");

    let response = put(&app, &path, json!({"version": 1, "monto": 31})).await;
    expect_problem(response, 409, "CONFLICTO_VERSION").await;
    let response = put(&app, &path, json!({"monto": 31})).await;
    let problem = expect_problem(response, 400, "DATOS_INVALIDOS").await;
    assert_eq!(campos(&problem), ["version"]);
    let response = put(
        &app,
        &path,
        json!({"version": 2, "moneda": "dollars", "fecha_fin": "2020-01-01"}),
    )
    .await;
    let problem = expect_problem(response, 400, "DATOS_INVALIDOS").await;
    assert_eq!(campos(&problem), ["moneda"]);
    let response = put(
        &app,
        &path,
        json!({"version": 2, "fecha_fin": "2020-01-01"}),
    )
    .await;
    let problem = expect_problem(response, 400, "DATOS_INVALIDOS").await;
    assert_eq!(campos(&problem), ["fecha_fin"]);
    // The same terms again: nothing changes, the version stays.
    let response = put(&app, &path, json!({"version": 2, "monto": "30.00"})).await;
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["version"], 2);
    app.cleanup().await;
}

#[tokio::test]
async fn lifecycle_endpoints_move_the_contract_and_refuse_illegal_transitions() {
    let app = spawn_app().await;
    let mut estados = app.observe(topics::CONTRACT_EVENTS).await;
    let pending = app.create_contrato(contrato_body(Uuid::now_v7())).await;
    let pending_id = pending["id"].as_str().unwrap();
    let response = post(
        &app,
        &format!("/contratos/{pending_id}/suspender"),
        json!({}),
    )
    .await;
    let problem = expect_problem(response, 409, "TRANSICION_INVALIDA").await;
    assert!(problem["detail"].as_str().unwrap().contains("pendiente"));

    let id = active_contract(&app).await;
    let (status, body) = app
        .post_json(
            &format!("/contratos/{id}/suspender"),
            json!({"motivo": "fraude"}),
        )
        .await;
    assert_eq!((status, body["estado"].as_str()), (200, Some("suspendido")));
    let event = next_matching(&mut estados, "ContratoEstadoCambiado", |e| {
        e.data.value()["contrato_id"] == id.as_str()
            && e.data.value()["evento"] == "ContratoSuspendido"
    })
    .await;
    assert_eq!(event.data.value()["estado_anterior"], "activo");
    assert_eq!(event.data.value()["estado_nuevo"], "suspendido");
    assert_eq!(event.data.value()["motivo"], "fraude");

    let response = post(&app, &format!("/contratos/{id}/suspender"), json!({})).await;
    expect_problem(response, 409, "TRANSICION_INVALIDA").await;
    // The body is optional.
    let response = app
        .client
        .post(app.url(&format!("/contratos/{id}/reactivar")))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let (status, body) = app
        .post_json(
            &format!("/contratos/{id}/terminar"),
            json!({"motivo": "fin"}),
        )
        .await;
    assert_eq!((status, body["estado"].as_str()), (200, Some("cancelado")));
    assert_eq!(body["version"], 5);
    let response = post(&app, &format!("/contratos/{id}/reactivar"), json!({})).await;
    expect_problem(response, 409, "TRANSICION_INVALIDA").await;
    let response = post(
        &app,
        &format!("/contratos/{id}/terminar"),
        json!({"motivo": "x".repeat(501)}),
    )
    .await;
    expect_problem(response, 400, "DATOS_INVALIDOS").await;
    app.cleanup().await;
}

#[tokio::test]
async fn the_event_stream_is_listed_oldest_first_and_time_travel_replays_it() {
    let app = spawn_app().await;
    let id = active_contract(&app).await;
    let between = kernel::now();
    app.post_json(
        &format!("/contratos/{id}/suspender"),
        json!({"motivo": "m"}),
    )
    .await;
    let (status, eventos) = app.get_json(&format!("/contratos/{id}/eventos")).await;
    assert_eq!(status, 200);
    assert_eq!(eventos["total"], 3);
    let items = eventos["items"].as_array().unwrap();
    let tipos: Vec<_> = items.iter().map(|e| e["tipo"].as_str().unwrap()).collect();
    assert_eq!(
        tipos,
        ["ContratoCreado", "ContratoAprobado", "ContratoSuspendido"]
    );
    assert_eq!(items[0]["version"], 1);
    assert_eq!(items[0]["schema_version"], 2);
    assert_eq!(items[0]["data"]["monto"], "25.00");
    assert_eq!(items[2]["data"]["motivo"], "m");
    assert!(items[2]["ocurrido_en"].as_str().unwrap().ends_with('Z'));

    let (_, v1) = app.get_json(&format!("/contratos/{id}?version=1")).await;
    assert_eq!(
        (v1["estado"].as_str(), v1["version"].as_i64()),
        (Some("pendiente"), Some(1))
    );
    let at = between.to_rfc3339_opts(chrono::SecondsFormat::Micros, true);
    let (_, then) = app
        .get_json(&format!("/contratos/{id}?at={}", at.replace('+', "%2B")))
        .await;
    assert_eq!(
        (then["estado"].as_str(), then["version"].as_i64()),
        (Some("activo"), Some(2))
    );
    let (_, now) = app.get_json(&format!("/contratos/{id}")).await;
    assert_eq!(now["estado"], "suspendido");

    for (query, campo) in [
        ("version=0", "version"),
        ("version=x", "version"),
        ("version=9", "version"),
        ("at=yesterday", "at"),
        ("version=1&at=2025-01-01T00:00:00Z", "at"),
    ] {
        let response = app
            .client
            .get(app.url(&format!("/contratos/{id}?{query}")))
            .send()
            .await
            .unwrap();
        let problem = expect_problem(response, 400, "DATOS_INVALIDOS").await;
        assert_eq!(campos(&problem), [campo], "{query}");
    }
    let response = app
        .client
        .get(app.url(&format!("/contratos/{id}?at=2000-01-01T00:00:00Z")))
        .send()
        .await
        .unwrap();
    expect_problem(response, 404, "CONTRATO_NO_ENCONTRADO").await;
    app.cleanup().await;
}

#[tokio::test]
async fn the_list_filters_and_pages() {
    let app = spawn_app().await;
    let partner = Uuid::now_v7();
    for tipo in ["CPA", "CPC", "CPA"] {
        let mut body = contrato_body(partner);
        body["tipo"] = json!(tipo);
        app.create_contrato(body).await;
    }
    app.create_contrato(contrato_body(Uuid::now_v7())).await;
    let (_, page) = app
        .get_json(&format!("/contratos?partner_id={partner}&limit=2"))
        .await;
    assert_eq!(page["total"], 3);
    assert_eq!(page["items"].as_array().unwrap().len(), 2);
    let cursor = page["next_cursor"].as_str().unwrap();
    let (_, rest) = app
        .get_json(&format!(
            "/contratos?partner_id={partner}&limit=2&cursor={cursor}"
        ))
        .await;
    assert_eq!(rest["items"].as_array().unwrap().len(), 1);
    assert_eq!(rest["next_cursor"], Value::Null);
    let (_, cpa) = app
        .get_json(&format!(
            "/contratos?partner_id={partner}&tipo=CPA&estado=pendiente"
        ))
        .await;
    assert_eq!(cpa["total"], 2);
    let (_, all) = app.get_json("/contratos").await;
    assert_eq!(all["total"], 4);
    let response = app
        .client
        .get(app.url("/contratos?estado=ACTIVO&tipo=x&partner_id=1&limit=0&cursor=zz"))
        .send()
        .await
        .unwrap();
    let problem = expect_problem(response, 400, "DATOS_INVALIDOS").await;
    assert_eq!(
        campos(&problem),
        ["partner_id", "estado", "tipo", "limit", "cursor"]
    );
    app.cleanup().await;
}

#[tokio::test]
async fn templates_have_defaults_and_are_editable() {
    let app = spawn_app().await;
    let (status, list) = app.get_json("/plantillas").await;
    assert_eq!(status, 200);
    assert_eq!(list["total"], 4);
    let (_, afiliado) = app.get_json("/plantillas/AFILIADO").await;
    assert_eq!(
        (
            afiliado["tipo"].as_str(),
            afiliado["monto"].as_str(),
            afiliado["moneda"].as_str(),
            afiliado["duracion_dias"].as_i64()
        ),
        (Some("CPA"), Some("25.00"), Some("USD"), Some(365))
    );
    let (_, influencer) = app.get_json("/plantillas/INFLUENCER").await;
    assert_eq!(
        (influencer["tipo"].as_str(), influencer["monto"].as_str()),
        (Some("CPC"), Some("0.50"))
    );
    let (_, embajador) = app.get_json("/plantillas/EMBAJADOR").await;
    assert_eq!(
        (embajador["tipo"].as_str(), embajador["monto"].as_str()),
        (Some("revshare"), Some("10.00"))
    );
    let (_, corporativo) = app.get_json("/plantillas/CORPORATIVO").await;
    assert_eq!(
        (corporativo["tipo"].as_str(), corporativo["monto"].as_str()),
        (Some("fijo"), Some("5000.00"))
    );

    let response = put(
        &app,
        "/plantillas/INFLUENCER",
        json!({"tipo": "CPL", "monto": "1.25", "moneda": "EUR", "duracion_dias": 90}),
    )
    .await;
    assert_eq!(response.status(), 200);
    let (_, edited) = app.get_json("/plantillas/INFLUENCER").await;
    assert_eq!(
        (
            edited["tipo"].as_str(),
            edited["monto"].as_str(),
            edited["moneda"].as_str(),
            edited["duracion_dias"].as_i64(),
            edited["condiciones"].is_null()
        ),
        (Some("CPL"), Some("1.25"), Some("EUR"), Some(90), true)
    );
    let response = post(
        &app,
        "/plantillas",
        json!({"tipo_partner": "CORPORATIVO", "tipo": "fijo", "monto": 6000, "moneda": "USD",
               "condiciones": "mensual", "duracion_dias": 730}),
    )
    .await;
    assert_eq!(response.status(), 200, "an existing template is replaced");
    assert_eq!(response.headers()["location"], "/plantillas/CORPORATIVO");
    let (_, corporativo) = app.get_json("/plantillas/CORPORATIVO").await;
    assert_eq!(corporativo["monto"], "6000.00");

    let response = post(
        &app,
        "/plantillas",
        json!({"tipo_partner": "X", "tipo": "trueque", "monto": -1, "duracion_dias": 0}),
    )
    .await;
    let problem = expect_problem(response, 400, "DATOS_INVALIDOS").await;
    assert_eq!(
        campos(&problem),
        ["tipo_partner", "tipo", "monto", "moneda", "duracion_dias"]
    );
    let response = app
        .client
        .get(app.url("/plantillas/OTRO"))
        .send()
        .await
        .unwrap();
    let problem = expect_problem(response, 400, "DATOS_INVALIDOS").await;
    assert_eq!(campos(&problem), ["tipo_partner"]);
    app.cleanup().await;
}

#[tokio::test]
async fn the_legacy_aliases_answer_pong_and_create_a_contract() {
    let app = spawn_app().await;
    let response = app.client.get(app.url("/posts/ping")).send().await.unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(response.text().await.unwrap(), "pong");
    let response = post(&app, "/posts/", contrato_body(Uuid::now_v7())).await;
    assert_eq!(response.status(), 201);
    let body: Value = response.json().await.unwrap();
    let (status, _) = app
        .get_json(&format!("/contratos/{}", body["id"].as_str().unwrap()))
        .await;
    assert_eq!(status, 200);
    let response = post(&app, "/posts/", json!({"tipo": "CPA"})).await;
    expect_problem(response, 400, "DATOS_INVALIDOS").await;
    app.cleanup().await;
}

#[tokio::test]
async fn the_operational_routes_describe_the_api() {
    let app = spawn_app().await;
    let (status, openapi) = app.get_json("/openapi.json").await;
    assert_eq!(status, 200);
    for path in [
        "/contratos",
        "/contratos/{contrato_id}/eventos",
        "/plantillas/{tipo_partner}",
        "/posts/ping",
    ] {
        assert!(openapi["paths"].get(path).is_some(), "{path} documented");
    }
    let response = app.client.get(app.url("/ready")).send().await.unwrap();
    assert_eq!(response.status(), 200);
    app.cleanup().await;
}

#[tokio::test]
async fn the_api_works_the_same_on_postgres() {
    let app = spawn_app_on_postgres().await;
    let created = app.create_contrato(contrato_body(Uuid::now_v7())).await;
    let path = format!("/contratos/{}", created["id"].as_str().unwrap());
    let response = put(&app, &path, json!({"version": 1, "monto": "40"})).await;
    assert_eq!(response.status(), 200);
    let response = put(&app, &path, json!({"version": 1, "monto": "41"})).await;
    expect_problem(response, 409, "CONFLICTO_VERSION").await;
    let (_, v1) = app.get_json(&format!("{path}?version=1")).await;
    assert_eq!(v1["monto"], "25.00");
    let (_, eventos) = app.get_json(&format!("{path}/eventos")).await;
    assert_eq!(eventos["total"], 2);
    let (_, list) = app.get_json("/contratos?estado=pendiente").await;
    assert_eq!(list["total"], 1);
    let (_, plantillas) = app.get_json("/plantillas").await;
    assert_eq!(plantillas["total"], 4);
    app.cleanup().await;
}
