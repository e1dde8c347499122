//! The consumers through the real embedded bus: `PartnerCreado` creates exactly one contract
//! per partner (template or proposed terms, or `ContratoCreadoFailed`), and compliance
//! outcomes and review decisions move it, tolerating redelivery and out-of-order arrival.

use alianzas::AlianzasConfig;
use contracts::compliance::{ContratoAprobado, ContratoRechazado};
use contracts::partners::PartnerCreado;
use contracts::sagas::{RevisionAprobada, RevisionContrato, RevisionRechazada};
use contracts::topics;
use kernel::{Bus, Envelope, EnvelopeContext, HandlerError, IntegrationEvent};
use serde_json::{json, Value};
use uuid::Uuid;

use testkit::bus::next_matching;
use testkit::{eventually, DEADLINE};

use crate::helpers::{spawn_app, spawn_app_on_postgres, spawn_app_with, TestApp};

fn partner_creado(tipo: &str, terminos: Option<Value>) -> PartnerCreado {
    PartnerCreado {
        partner_id: Uuid::now_v7(),
        nombre: "Ana".into(),
        tipo: tipo.into(),
        email: "ana@example.com".into(),
        onboarding_id: Some(Uuid::now_v7()),
        terminos,
    }
}

fn envelope_of<E: IntegrationEvent>(event: &E, saga_id: Option<Uuid>) -> Envelope {
    let context = EnvelopeContext {
        sagaid: saga_id,
        ..EnvelopeContext::default()
    };
    Envelope::wrap("test", event, context)
}

async fn publish<E: IntegrationEvent>(app: &TestApp, event: &E, saga_id: Option<Uuid>) -> Envelope {
    let envelope = envelope_of(event, saga_id);
    app.bus
        .publish(E::TOPIC, std::slice::from_ref(&envelope))
        .await
        .unwrap();
    envelope
}

async fn contratos_of(app: &TestApp, partner_id: Uuid) -> Value {
    app.get_json(&format!("/contratos?partner_id={partner_id}"))
        .await
        .1
}

async fn wait_for_estado(app: &TestApp, id: &str, estado: &str) -> Value {
    eventually(
        DEADLINE,
        &format!("contract {id} to be {estado}"),
        || async {
            let (_, body) = app.get_json(&format!("/contratos/{id}")).await;
            (body["estado"] == estado).then_some(body)
        },
    )
    .await
}

/// Creates a partner's contract through the bus and returns its id.
async fn onboarded_contract(
    app: &TestApp,
    created: &mut Box<dyn kernel::Subscription>,
) -> (String, PartnerCreado) {
    let partner = partner_creado("AFILIADO", None);
    publish(app, &partner, None).await;
    let event = next_matching(created, "ContratoCreado", |e| {
        e.data.value()["partner_id"] == partner.partner_id.to_string()
    })
    .await;
    (
        event.data.value()["contrato_id"]
            .as_str()
            .unwrap()
            .to_owned(),
        partner,
    )
}

#[tokio::test]
async fn partner_creado_twice_creates_one_contract_from_the_template() {
    let app = spawn_app().await;
    let mut created = app.observe(topics::CONTRACT_CREATED).await;
    let partner = partner_creado("EMBAJADOR", None);
    let saga_id = Uuid::now_v7();
    let first = publish(&app, &partner, Some(saga_id)).await;
    // The same event redelivered (same id), and a re-sent one (new id).
    app.bus
        .publish(topics::PARTNER_CREATED, std::slice::from_ref(&first))
        .await
        .unwrap();
    publish(&app, &partner, Some(saga_id)).await;

    let event = next_matching(&mut created, "ContratoCreado", |e| {
        e.data.value()["partner_id"] == partner.partner_id.to_string()
    })
    .await;
    assert_eq!(event.sagaid, Some(saga_id));
    assert_eq!(event.causationid, Some(first.id));
    assert_eq!(
        event.data.value()["onboarding_id"],
        partner.onboarding_id.unwrap().to_string()
    );
    assert_eq!(event.data.value()["tipo"], "revshare");
    assert_eq!(event.data.value()["monto"], "10.00");
    assert_eq!(event.data.value()["estado"], "pendiente");
    let hoy = kernel::now().date_naive();
    assert_eq!(event.data.value()["fecha_inicio"], hoy.to_string());
    assert_eq!(
        event.data.value()["fecha_fin"],
        (hoy + chrono::Days::new(365)).to_string()
    );
    let id = event.data.value()["contrato_id"]
        .as_str()
        .unwrap()
        .to_owned();
    let (status, contrato) = app.get_json(&format!("/contratos/{id}")).await;
    assert_eq!(status, 200);
    assert_eq!(contrato["partner_id"], partner.partner_id.to_string());

    eventually(
        DEADLINE,
        "the copies to be handled and the outbox drained",
        || async {
            let handled = storage::inbox::contains(app.service.db(), "alianzas", first.id)
                .await
                .unwrap();
            let drained = storage::outbox::backlog(app.service.db()).await.unwrap() == 0;
            (handled && drained).then_some(())
        },
    )
    .await;
    assert_eq!(contratos_of(&app, partner.partner_id).await["total"], 1);
    app.cleanup().await;
}

#[tokio::test]
async fn redelivery_changes_nothing_and_publishes_one_contrato_creado() {
    let app = spawn_app_with(AlianzasConfig::default(), false).await;
    let handler = app.service.handler();
    let partner = partner_creado("AFILIADO", None);
    let envelope = envelope_of(&partner, None);
    handler.handle(&envelope).await.unwrap();
    handler.handle(&envelope).await.unwrap();
    handler.handle(&envelope_of(&partner, None)).await.unwrap();
    assert_eq!(contratos_of(&app, partner.partner_id).await["total"], 1);
    assert_eq!(storage::outbox::backlog(app.service.db()).await.unwrap(), 1);
    app.cleanup().await;
}

#[tokio::test]
async fn proposed_partial_terms_are_merged_over_the_template() {
    let app = spawn_app().await;
    let mut created = app.observe(topics::CONTRACT_CREATED).await;
    let partner = partner_creado(
        "INFLUENCER",
        Some(json!({"monto": 60000, "moneda": "EUR", "fecha_inicio": "2025-03-01"})),
    );
    publish(&app, &partner, None).await;
    let event = next_matching(&mut created, "ContratoCreado", |e| {
        e.data.value()["partner_id"] == partner.partner_id.to_string()
    })
    .await;
    assert_eq!(event.data.value()["tipo"], "CPC");
    assert_eq!(event.data.value()["monto"], "60000.00");
    assert_eq!(event.data.value()["moneda"], "EUR");
    assert_eq!(event.data.value()["fecha_inicio"], "2025-03-01");
    assert_eq!(event.data.value()["fecha_fin"], "2025-08-28");
    app.cleanup().await;
}

#[tokio::test]
async fn unusable_terms_answer_contrato_creado_failed() {
    let app = spawn_app().await;
    let mut failed = app.observe(topics::CONTRACT_CREATION_FAILED).await;
    let saga_id = Uuid::now_v7();
    for terminos in [json!({"tipo": "trueque"}), json!({"monto": -5})] {
        let partner = partner_creado("AFILIADO", Some(terminos));
        publish(&app, &partner, Some(saga_id)).await;
        let event = next_matching(&mut failed, "ContratoCreadoFailed", |e| {
            e.data.value()["partner_id"] == partner.partner_id.to_string()
        })
        .await;
        assert_eq!(event.event_type, "ContratoCreadoFailed");
        assert_eq!(event.sagaid, Some(saga_id));
        assert_eq!(event.data.value()["error_code"], "DATOS_INVALIDOS");
        assert_eq!(
            event.data.value()["onboarding_id"],
            partner.onboarding_id.unwrap().to_string()
        );
        assert!(event.data.value()["error_message"]
            .as_str()
            .unwrap()
            .contains("terminos."));
        assert_eq!(contratos_of(&app, partner.partner_id).await["total"], 0);
    }
    app.cleanup().await;
}

#[tokio::test]
async fn compliance_approval_activates_the_contract() {
    let app = spawn_app().await;
    let mut created = app.observe(topics::CONTRACT_CREATED).await;
    let mut estados = app.observe(topics::CONTRACT_EVENTS).await;
    let (id, partner) = onboarded_contract(&app, &mut created).await;
    let approval = ContratoAprobado {
        contrato_id: id.parse().unwrap(),
        partner_id: partner.partner_id,
        onboarding_id: partner.onboarding_id,
        validaciones_pasadas: vec!["MONTO".into()],
    };
    let saga_id = Uuid::now_v7();
    let envelope = publish(&app, &approval, Some(saga_id)).await;
    publish(&app, &approval, Some(saga_id)).await;
    let contrato = wait_for_estado(&app, &id, "activo").await;
    let event = next_matching(&mut estados, "ContratoEstadoCambiado", |e| {
        e.data.value()["contrato_id"] == id.as_str()
    })
    .await;
    assert_eq!(event.data.value()["evento"], "ContratoAprobado");
    assert_eq!(event.data.value()["estado_anterior"], "pendiente");
    assert_eq!(event.data.value()["estado_nuevo"], "activo");
    assert_eq!(event.sagaid, Some(saga_id));
    assert_eq!(event.causationid, Some(envelope.id));
    assert_eq!(contrato["version"], 2);
    app.cleanup().await;
}

#[tokio::test]
async fn a_rejection_and_its_review_request_put_it_in_review_once_and_approval_activates() {
    let app = spawn_app().await;
    let mut created = app.observe(topics::CONTRACT_CREATED).await;
    let (id, partner) = onboarded_contract(&app, &mut created).await;
    let contrato_id: Uuid = id.parse().unwrap();
    let saga_id = Uuid::now_v7();
    publish(
        &app,
        &ContratoRechazado {
            contrato_id,
            partner_id: partner.partner_id,
            onboarding_id: partner.onboarding_id,
            causa_rechazo: "monto excede el límite".into(),
            validacion_fallida: "MONTO_INVALIDO".into(),
        },
        Some(saga_id),
    )
    .await;
    let review = publish(
        &app,
        &RevisionContrato {
            saga_id,
            contrato_id,
            partner_id: partner.partner_id,
            causa_rechazo: "monto excede el límite".into(),
            validacion_fallida: "MONTO_INVALIDO".into(),
        },
        Some(saga_id),
    )
    .await;
    wait_for_estado(&app, &id, "en_revision").await;
    eventually(DEADLINE, "the review request to be handled", || async {
        storage::inbox::contains(app.service.db(), "alianzas", review.id)
            .await
            .unwrap()
            .then_some(())
    })
    .await;
    let (_, eventos) = app.get_json(&format!("/contratos/{id}/eventos")).await;
    assert_eq!(eventos["total"], 2, "one ContratoEnRevision: {eventos}");
    assert_eq!(
        eventos["items"][1]["data"]["motivo"],
        "MONTO_INVALIDO: monto excede el límite"
    );
    publish(
        &app,
        &RevisionAprobada {
            saga_id,
            contrato_id,
            partner_id: partner.partner_id,
            comentarios: Some("ok".into()),
        },
        Some(saga_id),
    )
    .await;
    let contrato = wait_for_estado(&app, &id, "activo").await;
    assert_eq!(contrato["version"], 3);
    app.cleanup().await;
}

#[tokio::test]
async fn a_rejected_review_marks_the_contract_rechazado_on_postgres() {
    let app = spawn_app_on_postgres().await;
    let mut created = app.observe(topics::CONTRACT_CREATED).await;
    let mut estados = app.observe(topics::CONTRACT_EVENTS).await;
    let (id, partner) = onboarded_contract(&app, &mut created).await;
    let contrato_id: Uuid = id.parse().unwrap();
    let saga_id = Uuid::now_v7();
    // The decision overtakes the review request: retried until the contract is in review.
    publish(
        &app,
        &RevisionRechazada {
            saga_id,
            contrato_id,
            partner_id: partner.partner_id,
            comentarios: Some("no cumple".into()),
        },
        Some(saga_id),
    )
    .await;
    publish(
        &app,
        &RevisionContrato {
            saga_id,
            contrato_id,
            partner_id: partner.partner_id,
            causa_rechazo: "c".into(),
            validacion_fallida: "PARTNER_INVALIDO".into(),
        },
        Some(saga_id),
    )
    .await;
    wait_for_estado(&app, &id, "rechazado").await;
    let event = next_matching(&mut estados, "ContratoEstadoCambiado rechazado", |e| {
        e.data.value()["contrato_id"] == id.as_str()
            && e.data.value()["estado_nuevo"] == "rechazado"
    })
    .await;
    assert_eq!(event.data.value()["estado_anterior"], "en_revision");
    assert_eq!(event.data.value()["motivo"], "no cumple");
    app.cleanup().await;
}

#[tokio::test]
async fn events_for_a_contract_not_yet_known_or_not_yet_in_review_are_retried() {
    let app = spawn_app_with(AlianzasConfig::default(), false).await;
    let handler = app.service.handler();
    let unknown = ContratoAprobado {
        contrato_id: Uuid::now_v7(),
        partner_id: Uuid::now_v7(),
        onboarding_id: None,
        validaciones_pasadas: vec![],
    };
    let envelope = envelope_of(&unknown, None);
    let error = handler.handle(&envelope).await.unwrap_err();
    assert!(matches!(error, HandlerError::Early(_)), "{error}");
    assert!(
        !storage::inbox::contains(app.service.db(), "alianzas", envelope.id)
            .await
            .unwrap(),
        "a retried event is not marked handled"
    );

    let partner = partner_creado("AFILIADO", None);
    handler.handle(&envelope_of(&partner, None)).await.unwrap();
    let (_, list) = app
        .get_json(&format!("/contratos?partner_id={}", partner.partner_id))
        .await;
    let contrato_id: Uuid = list["items"][0]["id"].as_str().unwrap().parse().unwrap();
    let rejection = envelope_of(
        &RevisionRechazada {
            saga_id: Uuid::now_v7(),
            contrato_id,
            partner_id: partner.partner_id,
            comentarios: None,
        },
        None,
    );
    assert!(matches!(
        handler.handle(&rejection).await,
        Err(HandlerError::Early(_))
    ));
    let rechazo = ContratoRechazado {
        contrato_id,
        partner_id: partner.partner_id,
        onboarding_id: None,
        causa_rechazo: "c".into(),
        validacion_fallida: "MONTO_INVALIDO".into(),
    };
    handler.handle(&envelope_of(&rechazo, None)).await.unwrap();
    handler.handle(&rejection).await.unwrap();
    let (_, contrato) = app.get_json(&format!("/contratos/{contrato_id}")).await;
    assert_eq!(contrato["estado"], "rechazado");
    // A late approval for a rejected contract changes nothing.
    let late = ContratoAprobado {
        contrato_id,
        ..unknown
    };
    handler.handle(&envelope_of(&late, None)).await.unwrap();
    let (_, contrato) = app.get_json(&format!("/contratos/{contrato_id}")).await;
    assert_eq!(
        (contrato["estado"].as_str(), contrato["version"].as_i64()),
        (Some("rechazado"), Some(3))
    );
    app.cleanup().await;
}

#[tokio::test]
async fn an_undecodable_event_is_poison_and_foreign_types_are_ignored() {
    let app = spawn_app_with(AlianzasConfig::default(), false).await;
    let handler = app.service.handler();
    let mut envelope = envelope_of(&partner_creado("AFILIADO", None), None);
    envelope.data = json!({"partner_id": 5}).into();
    assert!(matches!(
        handler.handle(&envelope).await,
        Err(HandlerError::Poison(_))
    ));
    envelope.event_type = "OtroEvento".into();
    handler.handle(&envelope).await.unwrap();
    app.cleanup().await;
}
