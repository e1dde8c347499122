//! The programs API over a real socket: every endpoint, every error code, both body shapes of
//! `POST /programas`, `Idempotency-Key`, pagination and filters, and the events each write
//! publishes. One smoke test runs on PostgreSQL.

use contracts::topics;
use serde_json::{json, Value};
use testkit::bus::next_matching;
use testkit::http::{campos, expect_problem};
use uuid::Uuid;

use crate::helpers::{flat_body, nested_body, spawn_app, spawn_app_with, Backend, Options};

#[tokio::test]
async fn the_originals_flat_sample_creates_a_program_found_under_the_same_id() {
    let app = spawn_app().await;
    let response = app.post("/programas", &flat_body()).await;
    assert_eq!(response.status(), 201);
    let location = response
        .headers()
        .get("location")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_owned();
    let created: Value = response.json().await.unwrap();
    let id = created["id"].as_str().unwrap().to_owned();
    assert_eq!(location, format!("/programas/{id}"));

    let fetched = app.get_json(&format!("/programas/{id}")).await;
    assert_eq!(fetched["id"], id);
    assert_eq!(fetched, created);
    assert_eq!(fetched["nombre"], "Programa Verano");
    assert_eq!(fetched["brand_id"], "brand-1");
    assert_eq!(fetched["tipo"], "AFILIADOS");
    assert_eq!(fetched["estado"], "BORRADOR");
    assert_eq!(
        fetched["vigencia"],
        json!({"inicio": "2025-06-01", "fin": "2025-08-31"})
    );
    assert_eq!(
        fetched["terminos"],
        json!({"modelo": "CPA", "moneda": "USD", "tarifa_base": "25.50", "tope": "100.00"})
    );
    assert_eq!(fetched["afiliaciones"], json!([]));
    app.cleanup().await;
}

#[tokio::test]
async fn the_nested_body_creates_a_program_and_publishes_programa_creado() {
    let app = spawn_app().await;
    let (mut events, _) = app.stage.observe(topics::PROGRAM_EVENTS).await;
    let created = app.create_programa(nested_body("Invierno", "b-7")).await;
    assert_eq!(created["tipo"], "INFLUENCERS");
    assert_eq!(created["terminos"]["tope"], "9.99");
    assert_eq!(created["presupuesto"], "5000.00");
    let event = next_matching(&mut events, "ProgramaCreado", |e| {
        e.event_type == "ProgramaCreado"
    })
    .await;
    assert_eq!(event.data.value()["programa_id"], created["id"]);
    assert_eq!(event.data.value()["estado"], "BORRADOR");
    assert_eq!(event.dataschema, "urn:alpes:ProgramaCreado:v1");
    assert_eq!(event.source, "/alpes/campanias");
    app.cleanup().await;
}

#[tokio::test]
async fn a_program_created_active_is_activated_and_a_closed_one_is_refused() {
    let app = spawn_app().await;
    let (mut events, _) = app.stage.observe(topics::PROGRAM_EVENTS).await;
    let mut body = flat_body();
    body["estado"] = json!("ACTIVO");
    let created = app.create_programa(body).await;
    assert_eq!(created["estado"], "ACTIVO");
    next_matching(&mut events, "ProgramaActivado", |e| {
        e.event_type == "ProgramaActivado" && e.data.value()["programa_id"] == created["id"]
    })
    .await;

    for estado in ["CERRADO", "SUSPENDIDO", "activo", "X"] {
        let mut body = flat_body();
        body["estado"] = json!(estado);
        let problem =
            expect_problem(app.post("/programas", &body).await, 400, "DATOS_INVALIDOS").await;
        assert_eq!(campos(&problem), ["estado"], "{estado}");
    }
    app.cleanup().await;
}

#[tokio::test]
async fn every_invalid_field_is_reported_by_its_name() {
    let app = spawn_app().await;
    let problem = expect_problem(
        app.post(
            "/programas",
            &json!({
                "nombre": " ",
                "tipo": "OTRO",
                "vigencia_inicio": "2025-08-31",
                "vigencia_fin": "2025-06-01",
                "term_modelo": "revshare",
                "term_moneda": "DOLAR",
                "term_tarifa_base": "1.234",
                "presupuesto": -1,
                "afiliaciones": ["not-a-uuid"]
            }),
        )
        .await,
        400,
        "DATOS_INVALIDOS",
    )
    .await;
    let mut sorted = campos(&problem);
    sorted.sort();
    assert_eq!(
        sorted,
        [
            "afiliaciones",
            "brand_id",
            "nombre",
            "presupuesto",
            "term_modelo",
            "term_moneda",
            "term_tarifa_base",
            "tipo",
            "vigencia_fin",
        ]
    );

    let mut nested = nested_body("N", "b");
    nested["terminos"]["tope"] = json!("1.00");
    nested["vigencia"]["inicio"] = json!("2025-02-30");
    let problem = expect_problem(
        app.post("/programas", &nested).await,
        400,
        "DATOS_INVALIDOS",
    )
    .await;
    assert_eq!(campos(&problem), ["vigencia.inicio", "terminos.tope"]);

    let problem = expect_problem(
        app.post("/programas", &json!({})).await,
        400,
        "DATOS_INVALIDOS",
    )
    .await;
    assert!(campos(&problem).contains(&"vigencia.inicio".to_owned()));
    assert!(campos(&problem).contains(&"terminos.tarifa_base".to_owned()));

    let mut negative = flat_body();
    negative["term_tarifa_base"] = json!(-5);
    let problem = expect_problem(
        app.post("/programas", &negative).await,
        400,
        "DATOS_INVALIDOS",
    )
    .await;
    assert_eq!(campos(&problem), ["term_tarifa_base"]);
    app.cleanup().await;
}

#[tokio::test]
async fn malformed_bodies_and_ids_are_problems_never_500s() {
    let app = spawn_app().await;
    let response = app
        .client
        .post(app.url("/programas"))
        .header("content-type", "application/json")
        .body("{not json")
        .send()
        .await
        .unwrap();
    expect_problem(response, 400, "JSON_INVALIDO").await;
    let response = app
        .client
        .post(app.url("/programas"))
        .body("{}")
        .send()
        .await
        .unwrap();
    expect_problem(response, 415, "TIPO_CONTENIDO_NO_SOPORTADO").await;
    expect_problem(
        app.get("/programas/not-a-uuid").await,
        400,
        "DATOS_INVALIDOS",
    )
    .await;
    let mut wrong_type = flat_body();
    wrong_type["nombre"] = json!(42);
    expect_problem(
        app.post("/programas", &wrong_type).await,
        400,
        "DATOS_INVALIDOS",
    )
    .await;
    app.cleanup().await;
}

#[tokio::test]
async fn an_unknown_program_is_programa_no_encontrado_everywhere() {
    let app = spawn_app().await;
    let id = Uuid::now_v7();
    expect_problem(
        app.get(&format!("/programas/{id}")).await,
        404,
        "PROGRAMA_NO_ENCONTRADO",
    )
    .await;
    for action in ["activar", "suspender", "cerrar"] {
        expect_problem(
            app.post(&format!("/programas/{id}/{action}"), &json!({}))
                .await,
            404,
            "PROGRAMA_NO_ENCONTRADO",
        )
        .await;
    }
    expect_problem(
        app.post(
            &format!("/programas/{id}/afiliaciones"),
            &json!({"afiliado_id": Uuid::now_v7()}),
        )
        .await,
        404,
        "PROGRAMA_NO_ENCONTRADO",
    )
    .await;
    expect_problem(
        app.put(
            &format!("/programas/{id}/afiliaciones/{}", Uuid::now_v7()),
            &json!({"estado": "BAJA"}),
        )
        .await,
        404,
        "PROGRAMA_NO_ENCONTRADO",
    )
    .await;
    app.cleanup().await;
}

#[tokio::test]
async fn the_lifecycle_moves_over_http_and_illegal_ones_are_transicion_invalida() {
    let app = spawn_app().await;
    let (mut events, _) = app.stage.observe(topics::PROGRAM_EVENTS).await;
    let created = app.create_programa(flat_body()).await;
    let id = created["id"].as_str().unwrap();
    let step = |action: &'static str| {
        let path = format!("/programas/{id}/{action}");
        let app = &app;
        async move { app.client.post(app.url(&path)).send().await.unwrap() }
    };
    expect_problem(step("suspender").await, 409, "TRANSICION_INVALIDA").await;
    expect_problem(step("cerrar").await, 409, "TRANSICION_INVALIDA").await;
    for (action, estado) in [
        ("activar", "ACTIVO"),
        ("suspender", "SUSPENDIDO"),
        ("activar", "ACTIVO"),
        ("cerrar", "CERRADO"),
    ] {
        let response = step(action).await;
        assert_eq!(response.status(), 200, "{action}");
        let body: Value = response.json().await.unwrap();
        assert_eq!(body["estado"], estado);
    }
    expect_problem(step("activar").await, 409, "TRANSICION_INVALIDA").await;
    for expected in [
        "ProgramaActivado",
        "ProgramaSuspendido",
        "ProgramaActivado",
        "ProgramaCerrado",
    ] {
        let event =
            next_matching(&mut events, expected, |e| e.event_type != "ProgramaCreado").await;
        assert_eq!(event.event_type, expected);
        assert_eq!(event.data.value()["programa_id"], id);
    }
    assert_eq!(
        app.get_json(&format!("/programas/{id}")).await["estado"],
        "CERRADO"
    );
    app.cleanup().await;
}

#[tokio::test]
async fn affiliations_over_http_with_their_error_codes() {
    let app = spawn_app().await;
    let (mut events, _) = app.stage.observe(topics::PROGRAM_EVENTS).await;
    let created = app.create_programa(flat_body()).await;
    let id = created["id"].as_str().unwrap();
    let partner = Uuid::now_v7();

    let afiliacion = app.afiliar(id, partner).await;
    assert_eq!(
        afiliacion["estado"], "PENDIENTE",
        "an unknown partner waits for its onboarding"
    );
    assert_eq!(afiliacion["programa_id"], id);
    assert_eq!(afiliacion["fecha_baja"], Value::Null);
    let event = next_matching(&mut events, "AfiliacionCreada", |e| {
        e.event_type == "AfiliacionCreada"
    })
    .await;
    assert_eq!(event.data.value()["afiliado_id"], partner.to_string());
    assert_eq!(event.data.value()["estado"], "PENDIENTE");

    let path = format!("/programas/{id}/afiliaciones");
    expect_problem(
        app.post(&path, &json!({"afiliado_id": partner})).await,
        409,
        "AFILIACION_EXISTENTE",
    )
    .await;
    let problem = expect_problem(
        app.post(&path, &json!({"afiliado_id": "p-1"})).await,
        400,
        "DATOS_INVALIDOS",
    )
    .await;
    assert_eq!(campos(&problem), ["afiliado_id"]);
    expect_problem(app.post(&path, &json!({})).await, 400, "DATOS_INVALIDOS").await;

    let put_path = format!("/programas/{id}/afiliaciones/{partner}");
    expect_problem(
        app.put(&put_path, &json!({"estado": "ACTIVA"})).await,
        409,
        "PARTNER_NO_ELEGIBLE",
    )
    .await;
    for bad in [
        json!({"estado": "PENDIENTE"}),
        json!({"estado": "x"}),
        json!({}),
    ] {
        let problem = expect_problem(app.put(&put_path, &bad).await, 400, "DATOS_INVALIDOS").await;
        assert_eq!(campos(&problem), ["estado"]);
    }
    expect_problem(
        app.put(
            &format!("/programas/{id}/afiliaciones/{}", Uuid::now_v7()),
            &json!({"estado": "BAJA"}),
        )
        .await,
        404,
        "AFILIACION_NO_ENCONTRADA",
    )
    .await;

    let response = app.put(&put_path, &json!({"estado": "SUSPENDIDA"})).await;
    assert_eq!(response.status(), 200);
    let response = app.put(&put_path, &json!({"estado": "BAJA"})).await;
    assert_eq!(response.status(), 200);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["estado"], "BAJA");
    assert!(body["fecha_baja"].is_string());
    let event = next_matching(&mut events, "AfiliacionActualizada BAJA", |e| {
        e.event_type == "AfiliacionActualizada" && e.data.value()["estado_nuevo"] == "BAJA"
    })
    .await;
    assert_eq!(event.data.value()["estado_anterior"], "SUSPENDIDA");
    // Asking again for the state it has is answered, and changes nothing.
    assert_eq!(
        app.put(&put_path, &json!({"estado": "BAJA"}))
            .await
            .status(),
        200
    );
    expect_problem(
        app.put(&put_path, &json!({"estado": "SUSPENDIDA"})).await,
        409,
        "TRANSICION_INVALIDA",
    )
    .await;

    app.post(&format!("/programas/{id}/activar"), &json!({}))
        .await;
    app.post(&format!("/programas/{id}/cerrar"), &json!({}))
        .await;
    expect_problem(
        app.post(&path, &json!({"afiliado_id": Uuid::now_v7()}))
            .await,
        409,
        "PROGRAMA_CERRADO",
    )
    .await;
    app.cleanup().await;
}

#[tokio::test]
async fn affiliations_given_on_create_in_either_form() {
    let app = spawn_app().await;
    let (a, b) = (Uuid::now_v7(), Uuid::now_v7());
    let mut body = flat_body();
    body["afiliaciones"] = json!([a, {"afiliado_id": b}]);
    let created = app.create_programa(body).await;
    let afiliados: Vec<&str> = created["afiliaciones"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["afiliado_id"].as_str().unwrap())
        .collect();
    assert_eq!(afiliados, [a.to_string(), b.to_string()]);
    assert!(created["afiliaciones"]
        .as_array()
        .unwrap()
        .iter()
        .all(|a| a["estado"] == "PENDIENTE"));

    let mut twice = flat_body();
    twice["afiliaciones"] = json!([a, {"afiliado_id": a}]);
    let problem =
        expect_problem(app.post("/programas", &twice).await, 400, "DATOS_INVALIDOS").await;
    assert_eq!(campos(&problem), ["afiliaciones"]);
    app.cleanup().await;
}

#[tokio::test]
async fn the_list_filters_by_estado_brand_tipo_and_partner_and_pages() {
    let app = spawn_app().await;
    let partner = Uuid::now_v7();
    let mut ids = Vec::new();
    for i in 0..4 {
        let created = app
            .create_programa(nested_body(
                &format!("P{i}"),
                if i < 3 { "marca" } else { "otra" },
            ))
            .await;
        ids.push(created["id"].as_str().unwrap().to_owned());
    }
    app.create_programa(flat_body()).await;
    app.post(&format!("/programas/{}/activar", ids[0]), &json!({}))
        .await;
    app.afiliar(&ids[1], partner).await;
    app.afiliar(&ids[3], partner).await;

    let page = app.get_json("/programas?limit=2").await;
    assert_eq!(page["total"], 5);
    assert_eq!(page["items"].as_array().unwrap().len(), 2);
    let cursor = page["next_cursor"].as_str().unwrap().to_owned();
    assert_eq!(cursor, ids[1]);
    let next = app
        .get_json(&format!("/programas?limit=2&cursor={cursor}"))
        .await;
    assert_eq!(next["items"][0]["id"], ids[2]);

    let by = |query: &'static str| app.get_json(query);
    assert_eq!(by("/programas?brand_id=marca").await["total"], 3);
    assert_eq!(by("/programas?tipo=AFILIADOS").await["total"], 1);
    let activos = by("/programas?estado=ACTIVO").await;
    assert_eq!(activos["total"], 1);
    assert_eq!(activos["items"][0]["id"], ids[0]);
    let suyos = app
        .get_json(&format!("/programas?afiliado_id={partner}"))
        .await;
    assert_eq!(suyos["total"], 2);
    let suyos_ids: Vec<&str> = suyos["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["id"].as_str().unwrap())
        .collect();
    assert_eq!(suyos_ids, [ids[1].as_str(), ids[3].as_str()]);
    assert_eq!(suyos["items"][0]["afiliaciones"][0]["estado"], "PENDIENTE");
    assert_eq!(
        app.get_json(&format!("/programas?brand_id=marca&afiliado_id={partner}"))
            .await["total"],
        1
    );

    for bad in [
        "/programas?estado=X",
        "/programas?tipo=x",
        "/programas?afiliado_id=abc",
        "/programas?limit=0",
        "/programas?cursor=zzz",
        "/programas?limit=abc",
    ] {
        expect_problem(app.get(bad).await, 400, "DATOS_INVALIDOS").await;
    }
    app.cleanup().await;
}

#[tokio::test]
async fn an_idempotency_key_replays_the_first_creation() {
    let app = spawn_app().await;
    let send = |body: Value, key: &'static str| {
        let app = &app;
        async move {
            app.client
                .post(app.url("/programas"))
                .header("Idempotency-Key", key)
                .json(&body)
                .send()
                .await
                .unwrap()
        }
    };
    let first = send(flat_body(), "k-1").await;
    assert_eq!(first.status(), 201);
    let first_location = first.headers().get("location").cloned();
    let first: Value = first.json().await.unwrap();
    let again = send(flat_body(), "k-1").await;
    assert_eq!(again.status(), 201);
    assert_eq!(again.headers().get("location").cloned(), first_location);
    let again: Value = again.json().await.unwrap();
    assert_eq!(again, first);
    assert_eq!(app.get_json("/programas").await["total"], 1);

    let mut other = flat_body();
    other["nombre"] = json!("Otro");
    expect_problem(send(other, "k-1").await, 422, "IDEMPOTENCY_KEY_REUTILIZADA").await;
    let response = app
        .client
        .post(app.url("/programas"))
        .header("Idempotency-Key", " ")
        .json(&flat_body())
        .send()
        .await
        .unwrap();
    expect_problem(response, 400, "DATOS_INVALIDOS").await;
    app.cleanup().await;
}

#[tokio::test]
async fn the_openapi_document_lists_every_endpoint() {
    let app = spawn_app().await;
    let document = app.get_json("/openapi.json").await;
    let paths = document["paths"].as_object().unwrap();
    for path in [
        "/programas",
        "/programas/{programa_id}",
        "/programas/{programa_id}/activar",
        "/programas/{programa_id}/suspender",
        "/programas/{programa_id}/cerrar",
        "/programas/{programa_id}/afiliaciones",
        "/programas/{programa_id}/afiliaciones/{afiliado_id}",
        "/notificaciones",
    ] {
        assert!(paths.contains_key(path), "{path}");
    }
    assert_eq!(app.get("/health").await.status(), 200);
    assert_eq!(app.get("/ready").await.status(), 200);
    app.cleanup().await;
}

#[tokio::test]
async fn the_api_works_on_postgres() {
    let app = spawn_app_with(Options {
        backend: Backend::Postgres,
        ..Options::default()
    })
    .await;
    let created = app.create_programa(flat_body()).await;
    let id = created["id"].as_str().unwrap();
    assert_eq!(app.get_json(&format!("/programas/{id}")).await["id"], id);
    let partner = Uuid::now_v7();
    assert_eq!(app.afiliar(id, partner).await["estado"], "PENDIENTE");
    let response = app
        .post(&format!("/programas/{id}/activar"), &json!({}))
        .await;
    assert_eq!(response.status(), 200);
    assert_eq!(
        app.get_json(&format!("/programas?afiliado_id={partner}&estado=ACTIVO"))
            .await["total"],
        1
    );
    app.cleanup().await;
}
