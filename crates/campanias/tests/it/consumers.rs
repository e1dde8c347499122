//! What campanias learns from partner events, through the real embedded bus with every message
//! delivered twice: an affiliation waits as `PENDIENTE` while its partner's onboarding runs,
//! becomes `ACTIVA` when the saga completes, and is `SUSPENDIDA` when the partner is deleted or
//! deactivated; contract states decide eligibility; redeliveries change nothing; a batch is
//! applied in order, each event seeing the ones before it.

use contracts::contratos::ContratoEstadoCambiado;
use contracts::partners::{PartnerActualizado, PartnerDesactivado, PartnerEliminado};
use contracts::sagas::OnboardingEstadoCambiado;
use contracts::topics;
use kernel::{Envelope, EnvelopeContext};
use serde_json::json;
use testkit::bus::next_matching;
use uuid::Uuid;

use crate::helpers::{flat_body, spawn_app_with, Backend, Options, TestApp, DEADLINE};

fn onboarding(partner_id: Uuid, estado: &str) -> OnboardingEstadoCambiado {
    OnboardingEstadoCambiado {
        saga_id: Uuid::now_v7(),
        onboarding_id: Uuid::now_v7(),
        partner_id: Some(partner_id),
        email: Some("ana@example.com".into()),
        nombre: Some("Ana".into()),
        estado: estado.into(),
        causa: None,
    }
}

fn contrato(partner_id: Uuid, estado_nuevo: &str) -> ContratoEstadoCambiado {
    ContratoEstadoCambiado {
        contrato_id: Uuid::now_v7(),
        partner_id,
        evento: "ContratoSuspendido".into(),
        estado_anterior: "activo".into(),
        estado_nuevo: estado_nuevo.into(),
        motivo: None,
    }
}

async fn duplicating_app(backend: Backend) -> TestApp {
    spawn_app_with(Options {
        backend,
        duplicating: true,
        ..Options::default()
    })
    .await
}

async fn wait_for_estado(app: &TestApp, programa_id: &str, partner: Uuid, estado: &str) {
    testkit::eventually(DEADLINE, &format!("affiliation {estado}"), || async {
        (app.estado_afiliacion(programa_id, partner).await == estado).then_some(())
    })
    .await;
}

async fn pending_becomes_active_on_completion_and_suspended_on_deletion(backend: Backend) {
    let app = duplicating_app(backend).await;
    let (mut events, _) = app.stage.observe(topics::PROGRAM_EVENTS).await;
    let programa = app.create_programa(flat_body()).await;
    let id = programa["id"].as_str().unwrap().to_owned();
    let partner = Uuid::now_v7();
    assert_eq!(app.afiliar(&id, partner).await["estado"], "PENDIENTE");

    let completed = app
        .publish("sagas", &onboarding(partner, "COMPLETADA"))
        .await;
    wait_for_estado(&app, &id, partner, "ACTIVA").await;
    let promoted = next_matching(&mut events, "AfiliacionActualizada ACTIVA", |e| {
        e.event_type == "AfiliacionActualizada"
    })
    .await;
    assert_eq!(promoted.data.value()["estado_anterior"], "PENDIENTE");
    assert_eq!(promoted.data.value()["estado_nuevo"], "ACTIVA");
    assert_eq!(promoted.causationid, Some(completed.id));

    // A new affiliation of an eligible partner is active at once.
    let other = app.create_programa(flat_body()).await;
    let other_id = other["id"].as_str().unwrap().to_owned();
    assert_eq!(app.afiliar(&other_id, partner).await["estado"], "ACTIVA");

    // Other partner events share the topic: acknowledged, ignored.
    app.publish(
        "integraciones",
        &PartnerActualizado {
            partner_id: partner,
            nombre: "Ana".into(),
            tipo: "AFILIADO".into(),
        },
    )
    .await;
    app.publish(
        "integraciones",
        &PartnerEliminado {
            partner_id: partner,
        },
    )
    .await;
    wait_for_estado(&app, &id, partner, "SUSPENDIDA").await;
    wait_for_estado(&app, &other_id, partner, "SUSPENDIDA").await;
    app.settled().await;

    // Every message was handled twice; each change happened once.
    let programas = app
        .get_json(&format!("/programas?afiliado_id={partner}"))
        .await;
    assert_eq!(programas["total"], 2);
    let mut actualizadas = 0;
    let (mut all, _) = app.stage.observe(topics::PROGRAM_EVENTS).await;
    // A fresh observer group starts from the oldest message: count every update published.
    loop {
        let next = tokio::time::timeout(std::time::Duration::from_millis(500), all.next()).await;
        let Ok(Ok(delivery)) = next else { break };
        if delivery.envelope.event_type == "AfiliacionActualizada" {
            actualizadas += 1;
        }
        delivery.ack().await.unwrap();
    }
    assert_eq!(actualizadas, 3, "one promotion and two suspensions");
    let notificaciones = app.get_json("/notificaciones").await;
    assert_eq!(
        notificaciones["total"], 1,
        "one welcome e-mail: {notificaciones}"
    );
    assert_eq!(
        notificaciones["items"][0]["destinatario"],
        "ana@example.com"
    );

    // A suspended partner's affiliation cannot be reactivated by hand.
    testkit::http::expect_problem(
        app.put(
            &format!("/programas/{id}/afiliaciones/{partner}"),
            &json!({"estado": "ACTIVA"}),
        )
        .await,
        409,
        "PARTNER_NO_ELEGIBLE",
    )
    .await;
    app.cleanup().await;
}

#[tokio::test]
async fn an_affiliation_follows_its_partners_onboarding_on_sqlite() {
    pending_becomes_active_on_completion_and_suspended_on_deletion(Backend::Sqlite).await;
}

#[tokio::test]
async fn an_affiliation_follows_its_partners_onboarding_on_postgres() {
    pending_becomes_active_on_completion_and_suspended_on_deletion(Backend::Postgres).await;
}

#[tokio::test]
async fn a_deactivated_partner_is_suspended_and_new_affiliations_are_suspended_too() {
    let app = duplicating_app(Backend::Sqlite).await;
    let programa = app.create_programa(flat_body()).await;
    let id = programa["id"].as_str().unwrap().to_owned();
    let partner = Uuid::now_v7();
    app.publish("sagas", &onboarding(partner, "COMPLETADA"))
        .await;
    app.settled().await;
    assert_eq!(app.afiliar(&id, partner).await["estado"], "ACTIVA");
    app.publish(
        "integraciones",
        &PartnerDesactivado {
            partner_id: partner,
            motivo: Some("compensación".into()),
        },
    )
    .await;
    wait_for_estado(&app, &id, partner, "SUSPENDIDA").await;
    // A late completion on another topic does not bring it back.
    app.publish("sagas", &onboarding(partner, "COMPLETADA"))
        .await;
    app.settled().await;
    assert_eq!(app.estado_afiliacion(&id, partner).await, "SUSPENDIDA");
    let other = app.create_programa(flat_body()).await;
    let other_id = other["id"].as_str().unwrap().to_owned();
    assert_eq!(
        app.afiliar(&other_id, partner).await["estado"],
        "SUSPENDIDA"
    );
    app.cleanup().await;
}

#[tokio::test]
async fn contract_states_decide_eligibility() {
    let app = duplicating_app(Backend::Sqlite).await;
    let programa = app.create_programa(flat_body()).await;
    let id = programa["id"].as_str().unwrap().to_owned();
    let partner = Uuid::now_v7();
    app.afiliar(&id, partner).await;
    app.publish("alianzas", &contrato(partner, "activo")).await;
    wait_for_estado(&app, &id, partner, "ACTIVA").await;

    app.publish("alianzas", &contrato(partner, "suspendido"))
        .await;
    app.settled().await;
    let put = format!("/programas/{id}/afiliaciones/{partner}");
    assert_eq!(
        app.put(&put, &json!({"estado": "SUSPENDIDA"}))
            .await
            .status(),
        200
    );
    testkit::http::expect_problem(
        app.put(&put, &json!({"estado": "ACTIVA"})).await,
        409,
        "PARTNER_NO_ELEGIBLE",
    )
    .await;
    app.publish("alianzas", &contrato(partner, "activo")).await;
    app.settled().await;
    assert_eq!(
        app.put(&put, &json!({"estado": "ACTIVA"})).await.status(),
        200
    );
    app.cleanup().await;
}

#[tokio::test]
async fn an_older_event_arriving_late_does_not_undo_a_newer_one() {
    let app = spawn_app_with(Options {
        workers: false,
        ..Options::default()
    })
    .await;
    let partner = Uuid::now_v7();
    let handler = app.service.handler();
    let mut older = Envelope::wrap(
        "sagas",
        &onboarding(partner, "COMPLETADA"),
        EnvelopeContext::default(),
    );
    let newer = Envelope::wrap(
        "alianzas",
        &contrato(partner, "cancelado"),
        EnvelopeContext::default(),
    );
    older.time = newer.time - chrono::Duration::seconds(5);
    handler.handle(&newer).await.unwrap();
    handler.handle(&older).await.unwrap();
    let known = app
        .service
        .service()
        .partner(partner)
        .await
        .unwrap()
        .unwrap();
    assert!(!known.elegible);
    assert_eq!(known.email.as_deref(), Some("ana@example.com"));
    app.cleanup().await;
}

#[tokio::test]
async fn a_redelivered_event_changes_nothing_and_garbage_is_poison() {
    let app = spawn_app_with(Options {
        workers: false,
        ..Options::default()
    })
    .await;
    let programa = app.create_programa(flat_body()).await;
    let id = programa["id"].as_str().unwrap().to_owned();
    let partner = Uuid::now_v7();
    app.afiliar(&id, partner).await;
    let handler = app.service.handler();
    let envelope = Envelope::wrap(
        "sagas",
        &onboarding(partner, "COMPLETADA"),
        EnvelopeContext::default(),
    );
    handler.handle(&envelope).await.unwrap();
    let backlog = storage::outbox::backlog(app.service.db()).await.unwrap();
    handler.handle(&envelope).await.unwrap();
    assert_eq!(
        storage::outbox::backlog(app.service.db()).await.unwrap(),
        backlog
    );
    assert_eq!(app.get_json("/notificaciones").await["total"], 1);
    assert_eq!(app.estado_afiliacion(&id, partner).await, "ACTIVA");

    let mut garbage = envelope.clone();
    garbage.id = Uuid::now_v7();
    garbage.data = json!({"estado": 3}).into();
    assert!(matches!(
        handler.handle(&garbage).await,
        Err(kernel::HandlerError::Poison(_))
    ));
    let mut unknown = envelope.clone();
    unknown.id = Uuid::now_v7();
    unknown.event_type = "KYCVerificado".into();
    assert!(
        handler.handle(&unknown).await.is_ok(),
        "other types are ignored"
    );
    app.cleanup().await;
}

/// The `AfiliacionActualizada` of `partner` next on `events`, as `(anterior, nuevo, cause)`.
async fn next_update(
    events: &mut Box<dyn kernel::Subscription>,
    partner: Uuid,
) -> (String, String, Option<Uuid>) {
    let envelope = next_matching(events, "AfiliacionActualizada", |e| {
        e.event_type == "AfiliacionActualizada"
            && e.data.value()["afiliado_id"] == json!(partner.to_string())
    })
    .await;
    (
        envelope.data.value()["estado_anterior"]
            .as_str()
            .unwrap()
            .to_owned(),
        envelope.data.value()["estado_nuevo"]
            .as_str()
            .unwrap()
            .to_owned(),
        envelope.causationid,
    )
}

async fn a_batch_applies_in_order_once_and_a_poison_message_only_fails_itself(backend: Backend) {
    let app = spawn_app_with(Options {
        backend,
        ..Options::default()
    })
    .await;
    let (mut events, _) = app.stage.observe(topics::PROGRAM_EVENTS).await;
    let programa = app.create_programa(flat_body()).await;
    let id = programa["id"].as_str().unwrap().to_owned();
    let partner = Uuid::now_v7();
    assert_eq!(app.afiliar(&id, partner).await["estado"], "PENDIENTE");
    let handler = app.service.handler();

    // The completion promotes the affiliation; the deactivation after it in the same batch
    // sees the promotion and suspends an ACTIVA affiliation. The redelivery and the event
    // campanias does not use change nothing.
    let completed = Envelope::wrap(
        "sagas",
        &onboarding(partner, "COMPLETADA"),
        EnvelopeContext::default(),
    );
    let removed = Envelope::wrap(
        "integraciones",
        &PartnerDesactivado {
            partner_id: partner,
            motivo: None,
        },
        EnvelopeContext::default(),
    );
    let unused = Envelope::wrap(
        "integraciones",
        &PartnerActualizado {
            partner_id: partner,
            nombre: "Ana".into(),
            tipo: "AFILIADO".into(),
        },
        EnvelopeContext::default(),
    );
    let results = handler
        .handle_batch(&[&completed, &completed, &removed, &unused])
        .await;
    assert_eq!(results.len(), 4);
    assert!(results.iter().all(Result::is_ok), "{results:?}");
    assert_eq!(app.estado_afiliacion(&id, partner).await, "SUSPENDIDA");
    assert_eq!(
        next_update(&mut events, partner).await,
        ("PENDIENTE".into(), "ACTIVA".into(), Some(completed.id))
    );
    assert_eq!(
        next_update(&mut events, partner).await,
        ("ACTIVA".into(), "SUSPENDIDA".into(), Some(removed.id))
    );
    // One welcome e-mail, stored with the batch and delivered after it.
    let page = app.get_json("/notificaciones").await;
    assert_eq!(page["total"], 1, "{page}");
    testkit::eventually(DEADLINE, "the welcome e-mail sent", || async {
        (app.get_json("/notificaciones?estado=ENVIADA").await["total"] == 1).then_some(())
    })
    .await;

    // A poison message fails alone; the redeliveries beside it are acknowledged unchanged.
    let mut garbage = completed.clone();
    garbage.id = Uuid::now_v7();
    garbage.data = json!({"estado": 3}).into();
    let results = handler
        .handle_batch(&[&removed, &garbage, &completed])
        .await;
    assert_eq!(results.len(), 3);
    assert!(results[0].is_ok(), "{:?}", results[0]);
    assert!(
        matches!(results[1], Err(kernel::HandlerError::Poison(_))),
        "{:?}",
        results[1]
    );
    assert!(results[2].is_ok(), "{:?}", results[2]);
    assert!(
        !storage::inbox::contains(app.service.db(), "campanias", garbage.id)
            .await
            .unwrap()
    );
    assert_eq!(app.get_json("/notificaciones").await["total"], 1);
    assert_eq!(app.estado_afiliacion(&id, partner).await, "SUSPENDIDA");
    let known = app
        .service
        .service()
        .partner(partner)
        .await
        .unwrap()
        .unwrap();
    assert!(known.bloqueado);
    app.cleanup().await;
}

#[tokio::test]
async fn a_batch_applies_in_order_once_and_a_poison_message_only_fails_itself_on_sqlite() {
    a_batch_applies_in_order_once_and_a_poison_message_only_fails_itself(Backend::Sqlite).await;
}

#[tokio::test]
async fn a_batch_applies_in_order_once_and_a_poison_message_only_fails_itself_on_postgres() {
    a_batch_applies_in_order_once_and_a_poison_message_only_fails_itself(Backend::Postgres).await;
}
