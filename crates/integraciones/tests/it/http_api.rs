//! The partners API over a real socket: every endpoint, every error code, problem+json for bad
//! input, idempotent retries, pagination and filters, and the operational routes.

use contracts::topics;
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};

use testkit::bus::next_matching;
use testkit::http::{campos, expect_problem, PROBLEM_JSON};

use crate::helpers::{spawn_app, spawn_app_on_postgres, TestApp};

/// Sends `body` as JSON with `method` to `path` of the app.
async fn send_json(app: &TestApp, method: Method, path: &str, body: &Value) -> reqwest::Response {
    app.client
        .request(method, app.url(path))
        .json(body)
        .send()
        .await
        .unwrap()
}

fn is_utc_rfc3339(value: &Value) -> bool {
    value
        .as_str()
        .and_then(|text| {
            chrono::DateTime::parse_from_rfc3339(text)
                .ok()
                .map(|_| text)
        })
        .is_some_and(|text| text.ends_with('Z'))
}

async fn add_integracion(app: &TestApp, partner_id: &str, body: Value) -> reqwest::Response {
    app.client
        .post(app.url(&format!("/api/v1/partners/{partner_id}/integraciones")))
        .json(&body)
        .send()
        .await
        .unwrap()
}

#[tokio::test]
async fn creating_a_partner_answers_201_with_location_and_defaults() {
    let app = spawn_app().await;
    let response = send_json(
        &app,
        Method::POST,
        "/api/v1/partners",
        &json!({"nombre": "  Ana  ", "email": "Ana@Example.com", "telefono": "555"}),
    )
    .await;
    assert_eq!(response.status(), StatusCode::CREATED);
    let location = response.headers()["location"].to_str().unwrap().to_owned();
    let body: Value = response.json().await.unwrap();
    let id = body["id"].as_str().unwrap();
    assert_eq!(location, format!("/api/v1/partners/{id}"));
    assert_eq!(body["nombre"], "Ana");
    assert_eq!(body["email"], "Ana@Example.com");
    assert_eq!(body["tipo"], "AFILIADO");
    assert_eq!(body["estado"], "ACTIVO");
    assert_eq!(body["estado_kyc"], "PENDIENTE");
    assert_eq!(body["direccion"], Value::Null);
    assert_eq!(body["integraciones"], json!([]));
    assert!(is_utc_rfc3339(&body["fecha_creacion"]), "{body}");
    assert!(is_utc_rfc3339(&body["fecha_actualizacion"]), "{body}");

    let fetched: Value = app.get_json(&location).await;
    assert_eq!(fetched, body);
}

#[tokio::test]
async fn the_collection_accepts_a_trailing_slash() {
    let app = spawn_app().await;
    let response = send_json(
        &app,
        Method::POST,
        "/api/v1/partners/",
        &json!({"nombre": "Ana", "email": "slash@example.com", "tipo": "EMBAJADOR"}),
    )
    .await;
    assert_eq!(response.status(), StatusCode::CREATED);
    let list: Value = app.get_json("/api/v1/partners/").await;
    assert_eq!(list["total"], 1);
}

#[tokio::test]
async fn invalid_input_lists_every_invalid_field() {
    let app = spawn_app().await;
    let response = send_json(
        &app,
        Method::POST,
        "/api/v1/partners",
        &json!({"nombre": ""}),
    )
    .await;
    let problem = expect_problem(response, 400, "DATOS_INVALIDOS").await;
    assert_eq!(campos(&problem), ["nombre", "email"]);

    let response = app
        .client
        .post(app.url("/api/v1/partners"))
        .json(
            &json!({"nombre": "x".repeat(256), "email": "no-at", "telefono": "1".repeat(51),
            "direccion": "d".repeat(501), "tipo": "X"}),
        )
        .send()
        .await
        .unwrap();
    let problem = expect_problem(response, 400, "DATOS_INVALIDOS").await;
    assert_eq!(
        campos(&problem),
        ["nombre", "email", "telefono", "direccion", "tipo"]
    );
}

#[tokio::test]
async fn a_duplicate_email_in_any_case_is_409() {
    let app = spawn_app().await;
    app.create_partner(json!({"nombre": "A", "email": "dup@example.com"}))
        .await;
    let response = send_json(
        &app,
        Method::POST,
        "/api/v1/partners",
        &json!({"nombre": "B", "email": " DUP@example.COM "}),
    )
    .await;
    expect_problem(response, 409, "EMAIL_EXISTENTE").await;
}

#[tokio::test]
async fn malformed_bodies_are_problems_never_500() {
    let app = spawn_app().await;
    let no_content_type = app
        .client
        .post(app.url("/api/v1/partners"))
        .body(r#"{"nombre":"A","email":"a@example.com"}"#)
        .send()
        .await
        .unwrap();
    assert_eq!(no_content_type.status(), StatusCode::UNSUPPORTED_MEDIA_TYPE);
    assert_eq!(no_content_type.headers()["content-type"], PROBLEM_JSON);

    let broken = app
        .client
        .post(app.url("/api/v1/partners"))
        .header("content-type", "application/json")
        .body("{not json")
        .send()
        .await
        .unwrap();
    assert_eq!(broken.status(), StatusCode::BAD_REQUEST);
    assert_eq!(broken.headers()["content-type"], PROBLEM_JSON);

    let wrong_type = send_json(
        &app,
        Method::POST,
        "/api/v1/partners",
        &json!({"nombre": 5, "email": "a@example.com"}),
    )
    .await;
    expect_problem(wrong_type, 400, "DATOS_INVALIDOS").await;

    let huge = send_json(
        &app,
        Method::POST,
        "/api/v1/partners",
        &json!({"nombre": "n".repeat(300 * 1024), "email": "a@example.com"}),
    )
    .await;
    assert_eq!(huge.status(), StatusCode::PAYLOAD_TOO_LARGE);
    assert_eq!(huge.headers()["content-type"], PROBLEM_JSON);
}

#[tokio::test]
async fn an_unknown_partner_is_404_and_a_malformed_id_400() {
    let app = spawn_app().await;
    let id = uuid::Uuid::now_v7();
    let response = app
        .client
        .get(app.url(&format!("/api/v1/partners/{id}")))
        .send()
        .await
        .unwrap();
    expect_problem(response, 404, "PARTNER_NO_ENCONTRADO").await;
    for (method, path) in [
        (reqwest::Method::PUT, format!("/api/v1/partners/{id}")),
        (reqwest::Method::DELETE, format!("/api/v1/partners/{id}")),
        (reqwest::Method::PUT, format!("/api/v1/partners/{id}/kyc")),
        (
            reqwest::Method::POST,
            format!("/api/v1/partners/{id}/integraciones"),
        ),
    ] {
        let body = if path.ends_with("kyc") {
            json!({"estado_kyc": "APROBADO"})
        } else if path.ends_with("integraciones") {
            json!({"tipo": "API", "nombre": "x"})
        } else {
            json!({"nombre": "x"})
        };
        let response = app
            .client
            .request(method, app.url(&path))
            .json(&body)
            .send()
            .await
            .unwrap();
        expect_problem(response, 404, "PARTNER_NO_ENCONTRADO").await;
    }
    let response = app
        .client
        .get(app.url("/api/v1/partners/not-a-uuid"))
        .send()
        .await
        .unwrap();
    expect_problem(response, 400, "DATOS_INVALIDOS").await;
}

#[tokio::test]
async fn an_update_tells_absent_from_null() {
    let app = spawn_app().await;
    let partner = app
        .create_partner(
            json!({"nombre": "Ana", "email": "upd@example.com", "telefono": "555",
            "direccion": "Calle 1", "tipo": "INFLUENCER"}),
        )
        .await;
    let path = format!("/api/v1/partners/{}", partner["id"].as_str().unwrap());
    let response = send_json(
        &app,
        Method::PUT,
        &path,
        &json!({"nombre": "Ana María", "telefono": null}),
    )
    .await;
    assert_eq!(response.status(), StatusCode::OK);
    let updated: Value = response.json().await.unwrap();
    assert_eq!(updated["nombre"], "Ana María");
    assert_eq!(updated["telefono"], Value::Null);
    assert_eq!(updated["direccion"], "Calle 1", "absent fields are kept");
    assert_eq!(updated["tipo"], "INFLUENCER");
    assert_eq!(updated["email"], "upd@example.com");

    let response = send_json(
        &app,
        Method::PUT,
        &path,
        &json!({"nombre": null, "tipo": "NINGUNO"}),
    )
    .await;
    let problem = expect_problem(response, 400, "DATOS_INVALIDOS").await;
    assert_eq!(campos(&problem), ["nombre", "tipo"]);

    let response = send_json(
        &app,
        Method::PUT,
        &path,
        &json!({"tipo": null, "direccion": null}),
    )
    .await;
    let cleared: Value = response.json().await.unwrap();
    assert_eq!(cleared["tipo"], "AFILIADO", "a cleared tipo is the default");
    assert_eq!(cleared["direccion"], Value::Null);
}

#[tokio::test]
async fn deleting_revokes_integrations_frees_the_email_and_is_final() {
    let app = spawn_app().await;
    let partner = app
        .create_partner(json!({"nombre": "Ana", "email": "del@example.com"}))
        .await;
    let id = partner["id"].as_str().unwrap();
    let response = add_integracion(&app, id, json!({"tipo": "API", "nombre": "tienda"})).await;
    assert_eq!(response.status(), StatusCode::CREATED);
    let path = format!("/api/v1/partners/{id}");

    let response = app.client.delete(app.url(&path)).send().await.unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(
        response.json::<Value>().await.unwrap(),
        json!({"partner_id": id})
    );

    let deleted: Value = app.get_json(&path).await;
    assert_eq!(deleted["estado"], "ELIMINADO");
    let integracion = &deleted["integraciones"][0];
    assert_eq!(integracion["activa"], false);
    assert!(is_utc_rfc3339(&integracion["fecha_revocacion"]));

    let again = app.client.delete(app.url(&path)).send().await.unwrap();
    expect_problem(again, 410, "PARTNER_YA_ELIMINADO").await;
    let update = send_json(&app, Method::PUT, &path, &json!({"nombre": "Otra"})).await;
    expect_problem(update, 410, "PARTNER_ELIMINADO").await;
    let kyc = send_json(
        &app,
        Method::PUT,
        &format!("{path}/kyc"),
        &json!({"estado_kyc": "APROBADO"}),
    )
    .await;
    expect_problem(kyc, 410, "PARTNER_ELIMINADO").await;
    let integracion = add_integracion(&app, id, json!({"tipo": "API", "nombre": "x"})).await;
    expect_problem(integracion, 410, "PARTNER_ELIMINADO").await;

    app.create_partner(json!({"nombre": "Nueva", "email": "DEL@example.com"}))
        .await;
}

#[tokio::test]
async fn kyc_is_recorded_and_published_with_the_previous_state() {
    let app = spawn_app().await;
    let mut events = app.observe(topics::PARTNER_EVENTS).await;
    let partner = app
        .create_partner(json!({"nombre": "Ana", "email": "kyc@example.com"}))
        .await;
    let id = partner["id"].as_str().unwrap();
    let path = format!("/api/v1/partners/{id}/kyc");

    let response = app
        .client
        .put(app.url(&path))
        .json(
            &json!({"estado_kyc": "APROBADO", "documentos": {"cedula": "123"},
            "comentarios": "todo en orden"}),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["estado_kyc"], "APROBADO");
    assert_eq!(body["documentos_kyc"], json!({"cedula": "123"}));

    let event = next_matching(&mut events, "KYCVerificado", |e| {
        e.event_type == "KYCVerificado"
    })
    .await;
    assert_eq!(event.subject, id);
    assert_eq!(event.data.value()["estado_kyc_anterior"], "PENDIENTE");
    assert_eq!(event.data.value()["estado_kyc_nuevo"], "APROBADO");
    assert_eq!(event.data.value()["observaciones"], "todo en orden");

    let unknown = send_json(&app, Method::PUT, &path, &json!({"estado_kyc": "QUIZAS"})).await;
    let problem = expect_problem(unknown, 400, "ESTADO_KYC_INVALIDO").await;
    assert_eq!(campos(&problem), ["estado_kyc"]);
    let bad_documents = send_json(
        &app,
        Method::PUT,
        &path,
        &json!({"estado_kyc": "RECHAZADO", "documentos": [1]}),
    )
    .await;
    expect_problem(bad_documents, 400, "DATOS_INVALIDOS").await;
}

#[tokio::test]
async fn integrations_are_added_shown_without_configuracion_and_validated() {
    let app = spawn_app().await;
    let partner = app
        .create_partner(json!({"nombre": "Ana", "email": "int@example.com"}))
        .await;
    let id = partner["id"].as_str().unwrap();
    let response = add_integracion(
        &app,
        id,
        json!({"tipo": "WEBHOOK", "nombre": "hook", "descripcion": "pedidos",
            "configuracion": {"secret": "s3cr3t"}}),
    )
    .await;
    assert_eq!(response.status(), StatusCode::CREATED);
    let created: Value = response.json().await.unwrap();
    assert_eq!(created["tipo"], "WEBHOOK");
    assert_eq!(created["activa"], true);
    assert_eq!(created["partner_id"], id);
    assert!(created.get("configuracion").is_none());

    let detail = app
        .client
        .get(app.url(&format!("/api/v1/partners/{id}")))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(!detail.contains("s3cr3t"), "{detail}");
    assert!(!detail.contains("configuracion"), "{detail}");
    let detail: Value = serde_json::from_str(&detail).unwrap();
    assert_eq!(detail["integraciones"][0], created);

    let bad_tipo = add_integracion(&app, id, json!({"tipo": "FTP", "nombre": "x"})).await;
    let problem = expect_problem(bad_tipo, 400, "TIPO_INTEGRACION_INVALIDO").await;
    assert_eq!(campos(&problem), ["tipo"]);
    let no_nombre = add_integracion(&app, id, json!({"tipo": "BATCH"})).await;
    let problem = expect_problem(no_nombre, 400, "DATOS_INVALIDOS").await;
    assert_eq!(campos(&problem), ["nombre"]);
}

#[tokio::test]
async fn integrations_are_revoked_once_by_either_route() {
    let app = spawn_app().await;
    let partner = app
        .create_partner(json!({"nombre": "Ana", "email": "revoke@example.com"}))
        .await;
    let id = partner["id"].as_str().unwrap();
    let mut ids = Vec::new();
    for nombre in ["a", "b"] {
        let created: Value = add_integracion(&app, id, json!({"tipo": "API", "nombre": nombre}))
            .await
            .json()
            .await
            .unwrap();
        ids.push(created["id"].as_str().unwrap().to_owned());
    }

    let flat = format!("/api/v1/partners/integraciones/{}/revocar", ids[0]);
    let response = app.client.put(app.url(&flat)).send().await.unwrap();
    assert_eq!(response.status(), StatusCode::OK, "no body at all is fine");
    let revoked: Value = response.json().await.unwrap();
    assert_eq!(revoked["activa"], false);
    assert_eq!(revoked["motivo_revocacion"], Value::Null);
    let again = app.client.put(app.url(&flat)).send().await.unwrap();
    expect_problem(again, 410, "INTEGRACION_YA_REVOCADA").await;

    let nested = format!("/api/v1/partners/{id}/integraciones/{}/revocar", ids[1]);
    let response = send_json(
        &app,
        Method::PUT,
        &nested,
        &json!({"motivo": "clave expuesta"}),
    )
    .await;
    assert_eq!(response.status(), StatusCode::OK);
    let revoked: Value = response.json().await.unwrap();
    assert_eq!(revoked["motivo_revocacion"], "clave expuesta");

    let unknown = uuid::Uuid::now_v7();
    let missing = app
        .client
        .put(app.url(&format!("/api/v1/partners/integraciones/{unknown}/revocar")))
        .send()
        .await
        .unwrap();
    expect_problem(missing, 404, "INTEGRACION_NO_ENCONTRADA").await;
    let other = app
        .create_partner(json!({"nombre": "Otro", "email": "other@example.com"}))
        .await;
    let wrong_partner = app
        .client
        .put(app.url(&format!(
            "/api/v1/partners/{}/integraciones/{}/revocar",
            other["id"].as_str().unwrap(),
            ids[1]
        )))
        .send()
        .await
        .unwrap();
    expect_problem(wrong_partner, 404, "INTEGRACION_NO_ENCONTRADA").await;
    let no_partner = app
        .client
        .put(app.url(&format!(
            "/api/v1/partners/{unknown}/integraciones/{}/revocar",
            ids[1]
        )))
        .send()
        .await
        .unwrap();
    expect_problem(no_partner, 404, "PARTNER_NO_ENCONTRADO").await;
}

#[tokio::test]
async fn the_list_filters_and_pages_with_next_cursor() {
    let app = spawn_app().await;
    for index in 0..7 {
        let tipo = if index % 2 == 0 {
            "INFLUENCER"
        } else {
            "AFILIADO"
        };
        app.create_partner(json!({"nombre": format!("Tienda {index}"),
            "email": format!("list{index}@example.com"), "tipo": tipo}))
            .await;
    }
    let mut seen = Vec::new();
    let mut cursor: Option<String> = None;
    let mut pages = 0;
    loop {
        let mut url = app.url("/api/v1/partners?limit=3");
        if let Some(cursor) = &cursor {
            url.push_str(&format!("&cursor={cursor}"));
        }
        let page: Value = app
            .client
            .get(url)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        pages += 1;
        assert_eq!(page["total"], 7);
        for item in page["items"].as_array().unwrap() {
            assert!(item.get("integraciones").is_none());
            seen.push(item["id"].as_str().unwrap().to_owned());
        }
        match page["next_cursor"].as_str() {
            Some(next) => cursor = Some(next.to_owned()),
            None => break,
        }
    }
    assert_eq!(pages, 3);
    assert_eq!(seen.len(), 7);
    let mut sorted = seen.clone();
    sorted.sort();
    sorted.dedup();
    assert_eq!(sorted.len(), 7, "no partner twice");

    let get = |query: &'static str| {
        let client = app.client.clone();
        let url = app.url(&format!("/api/v1/partners?{query}"));
        async move { client.get(url).send().await.unwrap() }
    };
    let influencers: Value = get("tipo=INFLUENCER").await.json().await.unwrap();
    assert_eq!(influencers["total"], 4);
    let searched: Value = get("q=TIENDA%203").await.json().await.unwrap();
    assert_eq!(searched["total"], 1);
    let by_email: Value = get("q=LIST5@").await.json().await.unwrap();
    assert_eq!(by_email["items"][0]["email"], "list5@example.com");
    let combined: Value = get("estado=ACTIVO&estado_kyc=PENDIENTE&tipo=AFILIADO")
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(combined["total"], 3);

    let problem = expect_problem(get("estado=BORRADO&tipo=X").await, 400, "DATOS_INVALIDOS").await;
    assert_eq!(campos(&problem), ["estado", "tipo"]);
    expect_problem(get("limit=0").await, 400, "DATOS_INVALIDOS").await;
    expect_problem(get("limit=abc").await, 400, "DATOS_INVALIDOS").await;
    expect_problem(get("cursor=nope").await, 400, "DATOS_INVALIDOS").await;
}

#[tokio::test]
async fn an_idempotent_create_is_replayed_exactly_and_a_reused_key_refused() {
    let app = spawn_app().await;
    let mut created_events = app.observe(topics::PARTNER_CREATED).await;
    let body = json!({"nombre": "Ana", "email": "idem@example.com"});
    let send = |body: Value| {
        let client = app.client.clone();
        let url = app.url("/api/v1/partners");
        async move {
            client
                .post(url)
                .header("Idempotency-Key", "key-1")
                .json(&body)
                .send()
                .await
                .unwrap()
        }
    };
    let first = send(body.clone()).await;
    assert_eq!(first.status(), StatusCode::CREATED);
    let first_location = first.headers()["location"].clone();
    let first_body = first.text().await.unwrap();

    // Same content, different layout: still the same request.
    let second = send(json!({"email": "idem@example.com", "nombre": "Ana"})).await;
    assert_eq!(second.status(), StatusCode::CREATED);
    assert_eq!(second.headers()["location"], first_location);
    assert_eq!(second.headers()["content-type"], "application/json");
    assert_eq!(second.text().await.unwrap(), first_body);

    let reused = send(json!({"nombre": "Otra", "email": "otra@example.com"})).await;
    expect_problem(reused, 422, "IDEMPOTENCY_KEY_REUTILIZADA").await;

    let list: Value = app.get_json("/api/v1/partners").await;
    assert_eq!(list["total"], 1);
    let partner: Value = serde_json::from_str(&first_body).unwrap();
    next_matching(&mut created_events, "PartnerCreado", |e| {
        e.subject == partner["id"].as_str().unwrap()
    })
    .await;
    app.outbox_drained().await;

    let response = app
        .client
        .post(app.url("/api/v1/partners"))
        .header("Idempotency-Key", "")
        .json(&body)
        .send()
        .await
        .unwrap();
    expect_problem(response, 400, "DATOS_INVALIDOS").await;
}

#[tokio::test]
async fn an_idempotent_integration_is_created_once() {
    let app = spawn_app().await;
    let partner = app
        .create_partner(json!({"nombre": "Ana", "email": "idem-int@example.com"}))
        .await;
    let id = partner["id"].as_str().unwrap();
    let send = || {
        app.client
            .post(app.url(&format!("/api/v1/partners/{id}/integraciones")))
            .header("Idempotency-Key", "int-1")
            .json(&json!({"tipo": "API", "nombre": "tienda"}))
            .send()
    };
    let first = send().await.unwrap();
    assert_eq!(first.status(), StatusCode::CREATED);
    let first = first.text().await.unwrap();
    let second = send().await.unwrap();
    assert_eq!(second.status(), StatusCode::CREATED);
    assert_eq!(second.text().await.unwrap(), first);
    let detail: Value = app.get_json(&format!("/api/v1/partners/{id}")).await;
    assert_eq!(detail["integraciones"].as_array().unwrap().len(), 1);
}

#[tokio::test]
async fn creating_a_partner_publishes_partner_creado_through_the_outbox() {
    let app = spawn_app().await;
    let mut created = app.observe(topics::PARTNER_CREATED).await;
    let partner = app
        .create_partner(json!({"nombre": "Ana", "email": "pub@example.com", "tipo": "CORPORATIVO"}))
        .await;
    let id = partner["id"].as_str().unwrap();
    let event = next_matching(&mut created, "PartnerCreado", |e| e.subject == id).await;
    assert_eq!(event.event_type, "PartnerCreado");
    assert_eq!(event.source, "/alpes/integraciones");
    assert_eq!(event.data.value()["tipo"], "CORPORATIVO");
    assert_eq!(event.data.value()["email"], "pub@example.com");
    assert_eq!(event.data.value()["onboarding_id"], Value::Null);
}

#[tokio::test]
async fn the_operational_routes_work() {
    let app = spawn_app().await;
    let health = app.client.get(app.url("/health")).send().await.unwrap();
    assert_eq!(health.status(), StatusCode::OK);
    let ready = app.client.get(app.url("/ready")).send().await.unwrap();
    assert_eq!(ready.status(), StatusCode::OK);

    let docs = app.client.get(app.url("/docs")).send().await.unwrap();
    assert_eq!(docs.status(), StatusCode::OK);
    assert!(docs.headers()["content-type"]
        .to_str()
        .unwrap()
        .starts_with("text/html"));

    let openapi: Value = app.get_json("/openapi.json").await;
    assert!(openapi["openapi"].as_str().unwrap().starts_with("3."));
    assert!(openapi["components"]["schemas"]["PartnerDto"].is_object());
    let paths = openapi["paths"].as_object().unwrap();
    for path in [
        "/api/v1/partners",
        "/api/v1/partners/{partner_id}",
        "/api/v1/partners/{partner_id}/kyc",
        "/api/v1/partners/{partner_id}/integraciones",
        "/api/v1/partners/integraciones/{integracion_id}/revocar",
        "/api/v1/partners/{partner_id}/integraciones/{integracion_id}/revocar",
    ] {
        assert!(paths.contains_key(path), "missing {path}");
    }

    let metrics = app
        .client
        .get(app.url("/metrics"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        metrics.contains("alpes_outbox_backlog{service=\"integraciones\"} "),
        "{metrics}"
    );

    let unknown = app.client.get(app.url("/nope")).send().await.unwrap();
    assert_eq!(unknown.status(), StatusCode::NOT_FOUND);
    assert_eq!(unknown.headers()["content-type"], PROBLEM_JSON);
}

/// Concurrent twins of one idempotent request get one partner and one answer; concurrent
/// creates of one e-mail without a key get exactly one 201, the rest 409.
async fn concurrent_writes_are_decided_by_the_database(app: &TestApp) {
    let twins = (0..6).map(|_| {
        app.client
            .post(app.url("/api/v1/partners"))
            .header("Idempotency-Key", "twin")
            .json(&json!({"nombre": "Twin", "email": "twin@example.com"}))
            .send()
    });
    let mut bodies = Vec::new();
    for response in join_all(twins).await {
        let response = response.unwrap();
        assert_eq!(response.status(), StatusCode::CREATED);
        bodies.push(response.text().await.unwrap());
    }
    bodies.dedup();
    assert_eq!(bodies.len(), 1, "every twin gets the first answer");

    let racers = (0..6).map(|index| {
        app.client
            .post(app.url("/api/v1/partners"))
            .json(&json!({"nombre": format!("Racer {index}"), "email": "RACE@example.com"}))
            .send()
    });
    let mut statuses: Vec<u16> = Vec::new();
    for response in join_all(racers).await {
        statuses.push(response.unwrap().status().as_u16());
    }
    statuses.sort();
    assert_eq!(statuses, [201, 409, 409, 409, 409, 409]);

    let list: Value = app.get_json("/api/v1/partners").await;
    assert_eq!(list["total"], 2);
}

/// Runs the requests in parallel tasks and collects their answers in order.
async fn join_all<F>(futures: impl Iterator<Item = F>) -> Vec<F::Output>
where
    F: std::future::Future + Send + 'static,
    F::Output: Send + 'static,
{
    let handles: Vec<_> = futures.map(tokio::spawn).collect();
    let mut outputs = Vec::with_capacity(handles.len());
    for handle in handles {
        outputs.push(handle.await.expect("request task"));
    }
    outputs
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_writes_on_sqlite() {
    let app = spawn_app().await;
    concurrent_writes_are_decided_by_the_database(&app).await;
    app.cleanup().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_writes_on_postgres() {
    let app = spawn_app_on_postgres().await;
    concurrent_writes_are_decided_by_the_database(&app).await;
    app.cleanup().await;
}

#[tokio::test]
async fn a_create_on_postgres_publishes_its_event_and_a_taken_email_writes_nothing() {
    let app = spawn_app_on_postgres().await;
    let mut created_events = app.observe(topics::PARTNER_CREATED).await;
    let body = json!({"nombre": "Ana PG", "email": "one-statement@pg.example.com"});
    let partner = app.create_partner(body.clone()).await;
    let event = next_matching(&mut created_events, "PartnerCreado", |e| {
        e.subject == partner["id"].as_str().unwrap()
    })
    .await;
    assert_eq!(event.data.value()["email"], "one-statement@pg.example.com");
    app.outbox_drained().await;

    let taken = app
        .client
        .post(app.url("/api/v1/partners"))
        .json(&json!({"nombre": "Otra", "email": "ONE-STATEMENT@pg.example.com"}))
        .send()
        .await
        .unwrap();
    expect_problem(taken, 409, "EMAIL_EXISTENTE").await;
    // Neither a partner nor an outbox row came of the refused create.
    let list: Value = app.get_json("/api/v1/partners").await;
    assert_eq!(list["total"], 1);
    assert_eq!(storage::outbox::backlog(app.service.db()).await.unwrap(), 0);
    app.cleanup().await;
}

#[tokio::test]
async fn the_api_works_on_postgres() {
    let app = spawn_app_on_postgres().await;
    let partner = app
        .create_partner(json!({"nombre": "Ana PG", "email": "api@pg.example.com"}))
        .await;
    let id = partner["id"].as_str().unwrap();
    let created: Value = add_integracion(&app, id, json!({"tipo": "REAL_TIME", "nombre": "rt"}))
        .await
        .json()
        .await
        .unwrap();
    let kyc = send_json(
        &app,
        Method::PUT,
        &format!("/api/v1/partners/{id}/kyc"),
        &json!({"estado_kyc": "REQUIERE_DOCUMENTOS"}),
    )
    .await;
    assert_eq!(kyc.status(), StatusCode::OK);
    let revoke = app
        .client
        .put(app.url(&format!(
            "/api/v1/partners/integraciones/{}/revocar",
            created["id"].as_str().unwrap()
        )))
        .json(&json!({"motivo": "fin"}))
        .send()
        .await
        .unwrap();
    assert_eq!(revoke.status(), StatusCode::OK);
    let list: Value = app
        .get_json("/api/v1/partners?q=PG&estado_kyc=REQUIERE_DOCUMENTOS")
        .await;
    assert_eq!(list["total"], 1);
    let deleted = app
        .client
        .delete(app.url(&format!("/api/v1/partners/{id}")))
        .send()
        .await
        .unwrap();
    assert_eq!(deleted.status(), StatusCode::OK);
    app.outbox_drained().await;
    app.cleanup().await;
}
