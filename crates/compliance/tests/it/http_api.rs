//! The compliance API over a real socket: the dry run, account registration and reads, the
//! rule configuration, the report, and every error as problem+json.

use reqwest::Method;
use serde_json::{json, Value};
use uuid::Uuid;

use testkit::http::campos;

use crate::helpers::{contrato, in_saga, spawn_app, spawn_app_with, TestApp};

fn propuesta(partner_id: Uuid, monto: Value) -> Value {
    json!({
        "partner_id": partner_id,
        "tipo": "CPA",
        "monto": monto,
        "moneda": "USD",
        "fecha_inicio": "2025-01-01",
        "fecha_fin": "2025-12-31"
    })
}

async fn validate(app: &TestApp, body: &Value) -> (u16, Value) {
    app.send_json(Method::POST, "/partners/validate", body)
        .await
}

#[tokio::test]
async fn validate_approves_a_good_contract_for_a_known_partner_without_side_effects() {
    let app = spawn_app_with(Default::default(), false).await;
    let partner_id = Uuid::now_v7();
    app.know_partner(partner_id, "ana@example.com").await;
    let (status, body) = validate(&app, &propuesta(partner_id, json!("1500.50"))).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(
        body,
        json!({
            "aprobado": true,
            "validaciones_pasadas": ["MONTO_Y_LIMITES", "MONEDA_Y_JURISDICCION", "PARTNER_Y_REPUTACION", "ESTADO_Y_VIGENCIA"],
            "validacion_fallida": null,
            "causa_rechazo": null
        })
    );
    // A dry run: no account, no event, nothing recorded.
    let (status, _) = app
        .get_json(&format!("/compliance/cuentas/{partner_id}"))
        .await;
    assert_eq!(status, 404);
    assert_eq!(storage::outbox::backlog(app.db()).await.unwrap(), 0);
    let (_, reporte) = app.get_json("/reportes/financieros").await;
    assert_eq!(reporte["totales"]["contratos_aprobados"], 0);
    app.cleanup().await;
}

#[tokio::test]
async fn validate_reports_the_first_failing_rule() {
    let app = spawn_app().await;
    let partner_id = Uuid::now_v7();
    app.know_partner(partner_id, "ana@example.com").await;

    let (status, body) = validate(&app, &propuesta(partner_id, json!(60000))).await;
    assert_eq!(status, 200);
    assert_eq!(body["aprobado"], false);
    assert_eq!(body["validacion_fallida"], "MONTO_INVALIDO");
    assert_eq!(body["validaciones_pasadas"], json!([]));
    assert!(body["causa_rechazo"].as_str().unwrap().contains("60000.00"));

    let (_, body) = validate(&app, &propuesta(partner_id, json!(-1))).await;
    assert_eq!(body["validacion_fallida"], "MONTO_INVALIDO");

    let mut gbp = propuesta(partner_id, json!(10));
    gbp["moneda"] = json!("GBP");
    let (_, body) = validate(&app, &gbp).await;
    assert_eq!(body["validacion_fallida"], "MONEDA_NO_PERMITIDA");
    assert_eq!(body["validaciones_pasadas"], json!(["MONTO_Y_LIMITES"]));

    let (_, body) = validate(&app, &propuesta(Uuid::now_v7(), json!(10))).await;
    assert_eq!(body["validacion_fallida"], "PARTNER_INVALIDO");

    let mut activo = propuesta(partner_id, json!(10));
    activo["estado"] = json!("activo");
    let (_, body) = validate(&app, &activo).await;
    assert_eq!(body["validacion_fallida"], "ESTADO_INVALIDO");

    let mut al_reves = propuesta(partner_id, json!(10));
    al_reves["fecha_fin"] = json!("2024-12-31");
    let (_, body) = validate(&app, &al_reves).await;
    assert_eq!(body["validacion_fallida"], "ESTADO_INVALIDO");
    assert_eq!(body["validaciones_pasadas"].as_array().unwrap().len(), 3);
    app.cleanup().await;
}

#[tokio::test]
async fn validate_refuses_malformed_input_as_problem_json() {
    let app = spawn_app().await;
    let (status, body) = validate(
        &app,
        &json!({
            "partner_id": "nope",
            "tipo": "cpa",
            "monto": "1.234",
            "moneda": "DOLLAR",
            "estado": "raro",
            "fecha_inicio": "01/01/2025",
            "fecha_fin": "2025-13-01"
        }),
    )
    .await;
    assert_eq!(status, 400);
    assert_eq!(body["codigo"], "DATOS_INVALIDOS");
    assert_eq!(
        campos(&body),
        [
            "partner_id",
            "tipo",
            "monto",
            "moneda",
            "estado",
            "fecha_inicio",
            "fecha_fin"
        ]
    );

    let (status, body) = validate(&app, &json!({})).await;
    assert_eq!(status, 400);
    assert_eq!(
        campos(&body),
        ["partner_id", "tipo", "monto", "moneda", "fecha_inicio"]
    );

    let (status, body) = validate(&app, &json!({"monto": true})).await;
    assert_eq!(status, 400);
    assert!(campos(&body).contains(&"monto".to_owned()));

    let response = app
        .client
        .post(app.url("/partners/validate"))
        .body("{}")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 415);
    assert_eq!(
        response.headers()["content-type"],
        "application/problem+json"
    );
    let response = app
        .client
        .post(app.url("/partners/validate"))
        .header("content-type", "application/json")
        .body("{not json")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 400);
    app.cleanup().await;
}

#[tokio::test]
async fn register_creates_one_account_and_answers_the_existing_one_after() {
    let app = spawn_app().await;
    let partner_id = Uuid::now_v7();
    let response = app
        .client
        .post(app.url("/compliance/register"))
        .json(&json!({"partner_id": partner_id, "moneda": "cop"}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 201);
    assert_eq!(
        response.headers()["location"],
        format!("/compliance/cuentas/{partner_id}").as_str()
    );
    let created: Value = response.json().await.unwrap();
    assert_eq!(created["partner_id"], partner_id.to_string());
    assert_eq!(created["estado"], "ACTIVE");
    assert_eq!(created["moneda"], "COP");
    assert_eq!(created["metodo_pago"], "BANK_TRANSFER");
    assert_eq!(
        created["impuestos"],
        json!([{"nombre": "IVA", "porcentaje": "19.00"}, {"nombre": "RETENCION_FUENTE", "porcentaje": "11.00"}])
    );
    assert!(created["enable_at"].as_str().unwrap().ends_with('Z'));

    let (status, again) = app
        .send_json(
            Method::POST,
            "/compliance/register",
            &json!({"partner_id": partner_id, "moneda": "USD", "metodo_pago": "PAYPAL"}),
        )
        .await;
    assert_eq!(status, 200, "the existing account, not a second one");
    assert_eq!(again, created);

    let (status, fetched) = app
        .get_json(&format!("/compliance/cuentas/{partner_id}"))
        .await;
    assert_eq!(status, 200);
    assert_eq!(fetched, created);
    assert_eq!(
        compliance::storage::count_accounts(app.db(), partner_id)
            .await
            .unwrap(),
        1
    );
    app.cleanup().await;
}

#[tokio::test]
async fn register_refuses_bad_input() {
    let app = spawn_app().await;
    let (status, body) = app
        .send_json(
            Method::POST,
            "/compliance/register",
            &json!({"partner_id": "x", "moneda": "", "metodo_pago": "CHEQUE"}),
        )
        .await;
    assert_eq!(status, 400);
    assert_eq!(body["codigo"], "DATOS_INVALIDOS");
    assert_eq!(campos(&body), ["partner_id", "moneda", "metodo_pago"]);
    let (status, body) = app
        .send_json(
            Method::POST,
            "/compliance/register",
            &json!({"partner_id": 5}),
        )
        .await;
    assert_eq!(status, 400, "{body}");
    app.cleanup().await;
}

#[tokio::test]
async fn an_unknown_account_is_404_and_a_bad_id_400() {
    let app = spawn_app().await;
    let (status, body) = app
        .get_json(&format!("/compliance/cuentas/{}", Uuid::now_v7()))
        .await;
    assert_eq!(status, 404);
    assert_eq!(body["codigo"], "CUENTA_NO_ENCONTRADA");
    assert_eq!(body["status"], 404);
    let (status, body) = app.get_json("/compliance/cuentas/not-a-uuid").await;
    assert_eq!(status, 400);
    assert_eq!(body["codigo"], "DATOS_INVALIDOS");
    app.cleanup().await;
}

#[tokio::test]
async fn accounts_are_listed_in_pages_with_filters() {
    let app = spawn_app().await;
    let mut ids = Vec::new();
    for moneda in ["USD", "EUR", "USD"] {
        let partner_id = Uuid::now_v7();
        let (status, _) = app
            .send_json(
                Method::POST,
                "/compliance/register",
                &json!({"partner_id": partner_id, "moneda": moneda}),
            )
            .await;
        assert_eq!(status, 201);
        ids.push(partner_id.to_string());
    }
    let (status, page) = app.get_json("/compliance/cuentas?limit=2").await;
    assert_eq!(status, 200);
    assert_eq!(page["total"], 3);
    assert_eq!(page["items"].as_array().unwrap().len(), 2);
    let cursor = page["next_cursor"].as_str().unwrap().to_owned();
    assert_eq!(cursor, ids[1]);
    let (_, page) = app
        .get_json(&format!("/compliance/cuentas?limit=2&cursor={cursor}"))
        .await;
    assert_eq!(page["items"][0]["partner_id"], ids[2].as_str());
    assert_eq!(page["next_cursor"], Value::Null);

    let (_, page) = app
        .get_json("/compliance/cuentas?moneda=usd&estado=ACTIVE")
        .await;
    assert_eq!(page["total"], 2);
    let (status, body) = app
        .get_json("/compliance/cuentas?estado=ACTIVO&limit=0")
        .await;
    assert_eq!(status, 400);
    assert_eq!(campos(&body), ["estado", "limit"]);
    app.cleanup().await;
}

#[tokio::test]
async fn the_rules_start_with_the_defaults_and_change_at_run_time() {
    let app = spawn_app().await;
    let (status, reglas) = app.get_json("/compliance/reglas").await;
    assert_eq!(status, 200);
    assert_eq!(reglas["limite_monto"], "50000.00");
    assert_eq!(
        reglas["monedas_permitidas"],
        json!(["COP", "EUR", "MXN", "USD"])
    );
    assert_eq!(reglas["partners_bloqueados"], json!([]));
    assert_eq!(reglas["emails_bloqueados"], json!([]));

    let blocked = Uuid::now_v7();
    let (status, changed) = app
        .send_json(
            Method::PUT,
            "/compliance/reglas",
            &json!({
                "limite_monto": 100,
                "partners_bloqueados": [blocked],
                "emails_bloqueados": ["Fraude@Example.com"]
            }),
        )
        .await;
    assert_eq!(status, 200, "{changed}");
    assert_eq!(changed["limite_monto"], "100.00");
    assert_eq!(
        changed["monedas_permitidas"],
        json!(["COP", "EUR", "MXN", "USD"]),
        "a field left out keeps its value"
    );
    assert_eq!(changed["partners_bloqueados"], json!([blocked]));
    assert_eq!(changed["emails_bloqueados"], json!(["fraude@example.com"]));
    let (_, reread) = app.get_json("/compliance/reglas").await;
    assert_eq!(reread, changed);

    // The dry run uses the change at once.
    let partner_id = Uuid::now_v7();
    app.know_partner(partner_id, "ana@example.com").await;
    let (_, body) = validate(&app, &propuesta(partner_id, json!("100.01"))).await;
    assert_eq!(body["validacion_fallida"], "MONTO_INVALIDO");
    let (_, body) = validate(&app, &propuesta(blocked, json!(1))).await;
    assert_eq!(body["validacion_fallida"], "PARTNER_INVALIDO");
    let fraude = Uuid::now_v7();
    app.know_partner(fraude, "FRAUDE@example.com").await;
    let (_, body) = validate(&app, &propuesta(fraude, json!(1))).await;
    assert_eq!(body["validacion_fallida"], "PARTNER_INVALIDO");

    let (status, changed) = app
        .send_json(
            Method::PUT,
            "/compliance/reglas",
            &json!({"monedas_permitidas": ["usd", "GBP", "USD"], "emails_bloqueados": []}),
        )
        .await;
    assert_eq!(status, 200);
    assert_eq!(changed["monedas_permitidas"], json!(["GBP", "USD"]));
    assert_eq!(changed["emails_bloqueados"], json!([]));
    assert_eq!(changed["limite_monto"], "100.00");
    app.cleanup().await;
}

#[tokio::test]
async fn invalid_rules_are_refused_and_change_nothing() {
    let app = spawn_app().await;
    let (_, before) = app.get_json("/compliance/reglas").await;
    for (body, campo) in [
        (json!({"limite_monto": -1}), "limite_monto"),
        (json!({"limite_monto": "mucho"}), "limite_monto"),
        (json!({"monedas_permitidas": []}), "monedas_permitidas"),
        (
            json!({"monedas_permitidas": ["EURO"]}),
            "monedas_permitidas",
        ),
        (json!({"partners_bloqueados": ["x"]}), "partners_bloqueados"),
        (
            json!({"emails_bloqueados": ["sin-arroba"]}),
            "emails_bloqueados",
        ),
    ] {
        let (status, problem) = app
            .send_json(Method::PUT, "/compliance/reglas", &body)
            .await;
        assert_eq!(status, 400, "{body}");
        assert_eq!(problem["codigo"], "DATOS_INVALIDOS");
        assert_eq!(campos(&problem), [campo], "{body}");
    }
    let (status, problem) = app
        .send_json(
            Method::PUT,
            "/compliance/reglas",
            &json!({"monedas_permitidas": "USD"}),
        )
        .await;
    assert_eq!(status, 400);
    assert_eq!(problem["codigo"], "DATOS_INVALIDOS");
    let (_, after) = app.get_json("/compliance/reglas").await;
    assert_eq!(after, before);
    app.cleanup().await;
}

#[tokio::test]
async fn the_financial_report_totals_decisions_and_accounts_by_currency() {
    let app = spawn_app_with(Default::default(), false).await;
    let handler = app.service.contrato_creado_handler();
    let partner_a = Uuid::now_v7();
    let partner_b = Uuid::now_v7();
    app.know_partner(partner_a, "a@example.com").await;
    app.know_partner(partner_b, "b@example.com").await;
    for (partner, monto, moneda) in [
        (partner_a, "1000.10", "USD"),
        (partner_a, "0.20", "USD"),
        (partner_b, "60000", "USD"),
        (partner_b, "250.00", "COP"),
    ] {
        handler
            .handle(&in_saga(&contrato(partner, monto, moneda)))
            .await
            .unwrap();
    }
    let (status, reporte) = app.get_json("/reportes/financieros").await;
    assert_eq!(status, 200, "{reporte}");
    assert_eq!(
        reporte["totales"],
        json!({
            "contratos_aprobados": 3,
            "contratos_rechazados": 1,
            "cuentas_activas": 2,
            "cuentas_inactivas": 0,
            "cuentas_suspendidas": 0
        })
    );
    assert_eq!(
        reporte["por_moneda"],
        json!([
            {"moneda": "COP", "contratos_aprobados": 1, "contratos_rechazados": 0,
             "monto_comprometido": "250.00", "monto_rechazado": "0.00",
             "cuentas_activas": 1, "cuentas_inactivas": 0, "cuentas_suspendidas": 0},
            {"moneda": "USD", "contratos_aprobados": 2, "contratos_rechazados": 1,
             "monto_comprometido": "1000.30", "monto_rechazado": "60000.00",
             "cuentas_activas": 1, "cuentas_inactivas": 0, "cuentas_suspendidas": 0}
        ])
    );
    let today = chrono::Utc::now().date_naive();
    let (_, hoy) = app
        .get_json(&format!(
            "/reportes/financieros?desde={today}&hasta={today}"
        ))
        .await;
    assert_eq!(hoy["desde"], today.to_string());
    assert_eq!(hoy["totales"]["contratos_aprobados"], 3);
    let (_, antes) = app
        .get_json("/reportes/financieros?desde=2000-01-01&hasta=2000-12-31")
        .await;
    assert_eq!(antes["totales"]["contratos_aprobados"], 0);
    assert_eq!(antes["por_moneda"], json!([]));
    app.cleanup().await;
}

#[tokio::test]
async fn the_report_refuses_a_bad_period() {
    let app = spawn_app().await;
    let (status, body) = app
        .get_json("/reportes/financieros?desde=2025-02-01&hasta=2025-01-01")
        .await;
    assert_eq!(status, 400);
    assert_eq!(body["codigo"], "DATOS_INVALIDOS");
    assert_eq!(campos(&body), ["desde"]);
    let (status, body) = app.get_json("/reportes/financieros?hasta=ayer").await;
    assert_eq!(status, 400);
    assert_eq!(campos(&body), ["hasta"]);
    app.cleanup().await;
}

#[tokio::test]
async fn the_openapi_document_lists_every_endpoint() {
    let app = spawn_app().await;
    let (status, document) = app.get_json("/openapi.json").await;
    assert_eq!(status, 200);
    for path in [
        "/partners/validate",
        "/compliance/register",
        "/compliance/cuentas",
        "/compliance/cuentas/{partner_id}",
        "/compliance/reglas",
        "/reportes/financieros",
    ] {
        assert!(document["paths"].get(path).is_some(), "{path}");
    }
    let response = app.client.get(app.url("/health")).send().await.unwrap();
    assert_eq!(response.status(), 200);
    let response = app.client.get(app.url("/ready")).send().await.unwrap();
    assert_eq!(response.status(), 200);
    app.cleanup().await;
}
