//! The saga's consumers, fed through the real embedded bus the way the other services publish
//! (each envelope caused by the one before): every outcome of DOMAIN §9, events delivered
//! twice, events delivered out of order, events about no saga, undecodable payloads, and
//! batches of events applied in one transaction.

use contracts::topics;
use kernel::{Envelope, EnvelopeContext, HandlerError};
use sagas::application::Outcome;
use sagas::domain::{EstadoProcesamiento, EstadoSaga, Paso};
use sagas::storage as repo;
use serde_json::json;
use uuid::Uuid;

use testkit::bus::next_matching;

use crate::helpers::{config, rows, story, Harness, Msg, Onboarding};

fn about(onboarding: &Onboarding) -> impl Fn(&Envelope) -> bool + '_ {
    move |envelope| envelope.sagaid == Some(onboarding.saga_id)
}

/// Clears the payload's onboarding id, as a message from outside an onboarding carries it.
fn clear_onboarding(envelope: &mut Envelope) {
    let mut data = envelope.data.value();
    data["onboarding_id"] = serde_json::Value::Null;
    envelope.data = data.into();
}

#[tokio::test]
async fn the_happy_path_completes_the_saga_and_announces_it() {
    let harness = Harness::sqlite().await;
    let (mut outcomes, _) = harness.observe(topics::ONBOARDING_EVENTS).await;
    let _app = harness.instance(config(), true).await;
    let onboarding = Onboarding::new();
    let [create, creado, contrato, aprobado] = onboarding.through_approval();
    harness
        .publish_all(&[&create, &creado, &contrato, &aprobado])
        .await;

    let stored = harness
        .wait_saga(onboarding.saga_id, "the saga to complete", |s| {
            s.saga.estado == EstadoSaga::Completada
        })
        .await;
    let saga = &stored.saga;
    assert_eq!(saga.onboarding_id, onboarding.onboarding_id);
    assert_eq!(saga.partner_id, Some(onboarding.partner_id));
    assert_eq!(saga.contrato_id, Some(onboarding.contrato_id));
    assert_eq!(saga.email, onboarding.email);
    assert_eq!(saga.causa, None);
    assert_eq!(saga.paso_deadline, None);
    assert_eq!(saga.ultimo_paso, Paso::ContratoAprobado);

    let log = harness.log(onboarding.saga_id).await;
    assert_eq!(
        story(&log),
        rows(&[
            ("CreatePartner", "PROCESADO"),
            ("PartnerCreado", "PROCESADO"),
            ("ContratoCreado", "PROCESADO"),
            ("ContratoAprobado", "PROCESADO"),
        ])
    );
    assert_eq!(log[0].event_id, create.id());
    assert_eq!(log[0].evento_data, create.envelope.data, "the full payload");
    assert_eq!(log[0].partner_id, None);
    assert_eq!(log[3].partner_id, Some(onboarding.partner_id));
    assert!(log
        .iter()
        .all(|e| e.onboarding_id == Some(onboarding.onboarding_id)));

    let announced = next_matching(
        &mut outcomes,
        "OnboardingEstadoCambiado",
        about(&onboarding),
    )
    .await;
    assert_eq!(announced.event_type, "OnboardingEstadoCambiado");
    assert_eq!(announced.causationid, Some(aprobado.id()));
    assert_eq!(announced.correlationid, create.envelope.correlationid);
    assert_eq!(announced.data.value()["estado"], "COMPLETADA");
    assert_eq!(
        announced.data.value()["partner_id"],
        onboarding.partner_id.to_string()
    );
    assert_eq!(
        announced.data.value()["onboarding_id"],
        onboarding.onboarding_id.to_string()
    );
    assert_eq!(announced.data.value()["email"], onboarding.email);
    harness.cleanup().await;
}

#[tokio::test]
async fn partner_creation_failed_fails_the_saga_without_compensation() {
    let harness = Harness::sqlite().await;
    let (mut outcomes, _) = harness.observe(topics::ONBOARDING_EVENTS).await;
    let _app = harness.instance(config(), true).await;
    let onboarding = Onboarding::new();
    let create = onboarding.create_partner();
    harness.publish(&create).await;
    harness
        .publish(&onboarding.partner_creation_failed(&create, "EMAIL_EXISTENTE"))
        .await;

    let stored = harness
        .wait_saga(onboarding.saga_id, "the saga to fail", |s| {
            s.saga.estado == EstadoSaga::Fallida
        })
        .await;
    assert_eq!(stored.saga.causa.as_deref(), Some("EMAIL_EXISTENTE"));
    assert_eq!(stored.saga.paso_deadline, None);
    let announced = next_matching(
        &mut outcomes,
        "OnboardingEstadoCambiado",
        about(&onboarding),
    )
    .await;
    assert_eq!(announced.data.value()["estado"], "FALLIDA");
    assert_eq!(announced.data.value()["causa"], "EMAIL_EXISTENTE");
    assert_eq!(
        announced.data.value()["partner_id"],
        serde_json::Value::Null
    );
    assert_eq!(
        story(&harness.log(onboarding.saga_id).await),
        rows(&[
            ("CreatePartner", "PROCESADO"),
            ("PartnerCreationFailed", "PROCESADO"),
        ])
    );
    harness.cleanup().await;
}

#[tokio::test]
async fn contrato_rechazado_publishes_revision_contrato_and_awaits_review() {
    let harness = Harness::sqlite().await;
    let (mut reviews, _) = harness.observe(topics::CONTRACT_REVIEW).await;
    let (mut outcomes, _) = harness.observe(topics::ONBOARDING_EVENTS).await;
    let _app = harness.instance(config(), true).await;
    let onboarding = Onboarding::new();
    let [create, creado, contrato, rechazado] = onboarding.through_rejection();
    harness
        .publish_all(&[&create, &creado, &contrato, &rechazado])
        .await;

    let review = next_matching(&mut reviews, "RevisionContrato", about(&onboarding)).await;
    assert_eq!(review.event_type, "RevisionContrato");
    assert_eq!(review.causationid, Some(rechazado.id()));
    assert_eq!(
        review.data.value(),
        json!({
            "saga_id": onboarding.saga_id,
            "contrato_id": onboarding.contrato_id,
            "partner_id": onboarding.partner_id,
            "causa_rechazo": "monto sobre el límite",
            "validacion_fallida": "MONTO_INVALIDO",
        })
    );
    let stored = harness
        .wait_saga(onboarding.saga_id, "the review wait", |s| {
            s.saga.estado == EstadoSaga::PendienteRevision
        })
        .await;
    assert_eq!(
        stored.saga.paso_deadline, None,
        "review waits have no deadline"
    );
    assert_eq!(stored.saga.causa.as_deref(), Some("MONTO_INVALIDO"));
    assert_eq!(stored.saga.ultimo_paso, Paso::RevisionContrato);
    assert_eq!(stored.traza.ultimo_evento_id, review.id);
    let announced = next_matching(
        &mut outcomes,
        "OnboardingEstadoCambiado",
        about(&onboarding),
    )
    .await;
    assert_eq!(announced.data.value()["estado"], "PENDIENTE_REVISION");

    let log = harness.log(onboarding.saga_id).await;
    assert_eq!(
        story(&log)[3..],
        rows(&[
            ("ContratoRechazado", "PROCESADO"),
            ("RevisionContrato", "PROCESADO"),
        ])
    );
    assert_eq!(
        log[4].event_id, review.id,
        "the published message is logged"
    );
    assert_eq!(log[4].evento_data, review.data);
    harness.cleanup().await;
}

#[tokio::test]
async fn contrato_creado_failed_compensates_and_partner_desactivado_closes_it() {
    let harness = Harness::sqlite().await;
    let (mut commands, _) = harness.observe(topics::DEACTIVATE_PARTNER).await;
    let _app = harness.instance(config(), true).await;
    let onboarding = Onboarding::new();
    let create = onboarding.create_partner();
    let creado = onboarding.partner_creado(&create);
    let failed = onboarding.contrato_creado_failed(&creado);
    harness.publish_all(&[&create, &creado, &failed]).await;

    let command = next_matching(&mut commands, "DesactivarPartner", about(&onboarding)).await;
    assert_eq!(command.event_type, "DesactivarPartner");
    assert_eq!(command.causationid, Some(failed.id()));
    assert_eq!(
        command.data.value()["partner_id"],
        onboarding.partner_id.to_string()
    );
    let stored = harness
        .wait_saga(onboarding.saga_id, "the saga to fail", |s| {
            s.saga.estado == EstadoSaga::Fallida
        })
        .await;
    assert_eq!(stored.saga.causa.as_deref(), Some("CONTRATO_NO_CREADO"));

    // integraciones answers the compensation.
    harness
        .publish(&onboarding.partner_desactivado(&command))
        .await;
    let stored = harness
        .wait_saga(onboarding.saga_id, "the compensation to close", |s| {
            s.saga.ultimo_paso == Paso::PartnerDesactivado
        })
        .await;
    assert_eq!(stored.saga.estado, EstadoSaga::Fallida);
    assert_eq!(stored.saga.causa.as_deref(), Some("CONTRATO_NO_CREADO"));
    assert_eq!(
        story(&harness.log(onboarding.saga_id).await),
        rows(&[
            ("CreatePartner", "PROCESADO"),
            ("PartnerCreado", "PROCESADO"),
            ("ContratoCreadoFailed", "PROCESADO"),
            ("DesactivarPartner", "PROCESADO"),
            ("PartnerDesactivado", "PROCESADO"),
        ])
    );
    harness.cleanup().await;
}

/// Everything the database holds about one saga, to compare before and after a redelivery.
async fn snapshot(
    harness: &Harness,
    saga_id: Uuid,
) -> (Option<repo::StoredSaga>, Vec<repo::LogEntry>, i64) {
    let db = harness.db();
    (
        repo::find(db, saga_id).await.unwrap(),
        repo::log(db, saga_id).await.unwrap(),
        storage::outbox::backlog(db).await.unwrap(),
    )
}

async fn every_event_delivered_twice_changes_nothing_the_second_time(harness: Harness) {
    let app = harness.instance(config(), false).await;
    let handler = app.sagas.saga_handler();
    let onboarding = Onboarding::new();
    let [create, creado, contrato, rechazado] = onboarding.through_rejection();
    for message in [&create, &creado, &contrato, &rechazado] {
        let first = handler.dispatch(&message.envelope).await.unwrap();
        assert!(
            matches!(first, Outcome::Started(_) | Outcome::Applied(_)),
            "{first:?}"
        );
        let before = snapshot(&harness, onboarding.saga_id).await;
        let again = handler.dispatch(&message.envelope).await.unwrap();
        assert_eq!(again, Outcome::Duplicate);
        assert_eq!(snapshot(&harness, onboarding.saga_id).await, before);
    }
    let (stored, log, backlog) = snapshot(&harness, onboarding.saga_id).await;
    assert_eq!(stored.unwrap().saga.estado, EstadoSaga::PendienteRevision);
    assert_eq!(log.len(), 5);
    // RevisionContrato and the PENDIENTE_REVISION announcement, once each.
    assert_eq!(backlog, 2);
    harness.cleanup().await;
}

#[tokio::test]
async fn every_event_delivered_twice_changes_nothing_the_second_time_on_sqlite() {
    every_event_delivered_twice_changes_nothing_the_second_time(Harness::sqlite().await).await;
}

#[tokio::test]
async fn every_event_delivered_twice_changes_nothing_the_second_time_on_postgres() {
    every_event_delivered_twice_changes_nothing_the_second_time(Harness::postgres().await).await;
}

fn retried_early(result: Result<Outcome, HandlerError>) -> String {
    match result {
        Err(HandlerError::Early(reason)) => reason,
        other => panic!("expected an early arrival to be retried, got {other:?}"),
    }
}

#[tokio::test]
async fn an_early_event_is_retried_later_not_logged_as_an_error() {
    let harness = Harness::sqlite().await;
    let app = harness.instance(config(), false).await;
    let handler = app.sagas.saga_handler();
    let onboarding = Onboarding::new();
    let [create, creado, contrato, aprobado] = onboarding.through_approval();

    // Before its saga exists.
    retried_early(handler.dispatch(&creado.envelope).await);
    assert_eq!(
        repo::find(harness.db(), onboarding.saga_id).await.unwrap(),
        None
    );
    handler.dispatch(&create.envelope).await.unwrap();
    // Before its cause (PartnerCreado) reached the saga: nothing is written, not even the inbox.
    retried_early(handler.dispatch(&contrato.envelope).await);
    retried_early(handler.dispatch(&aprobado.envelope).await);
    assert_eq!(harness.log(onboarding.saga_id).await.len(), 1);
    assert!(
        !storage::inbox::contains(harness.db(), "sagas", contrato.id())
            .await
            .unwrap()
    );

    // The retries, once the causes are in, apply in order.
    for message in [&creado, &contrato, &aprobado] {
        let outcome = handler.dispatch(&message.envelope).await.unwrap();
        assert_eq!(outcome, Outcome::Applied(onboarding.saga_id));
    }
    let stored = repo::find(harness.db(), onboarding.saga_id)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(stored.saga.estado, EstadoSaga::Completada);
    assert!(harness
        .log(onboarding.saga_id)
        .await
        .iter()
        .all(|e| e.estado_procesamiento == EstadoProcesamiento::Procesado));
    harness.cleanup().await;
}

async fn reverse_order_over_the_bus_still_completes(harness: Harness) {
    let _app = harness.instance(config(), true).await;
    let onboarding = Onboarding::new();
    let [create, creado, contrato, aprobado] = onboarding.through_approval();
    harness
        .publish_all(&[&aprobado, &contrato, &creado, &create])
        .await;
    harness
        .wait_saga(onboarding.saga_id, "the saga to complete", |s| {
            s.saga.estado == EstadoSaga::Completada
        })
        .await;
    assert_eq!(
        story(&harness.log(onboarding.saga_id).await),
        rows(&[
            ("CreatePartner", "PROCESADO"),
            ("PartnerCreado", "PROCESADO"),
            ("ContratoCreado", "PROCESADO"),
            ("ContratoAprobado", "PROCESADO"),
        ])
    );
    harness.cleanup().await;
}

#[tokio::test]
async fn reverse_order_over_the_bus_still_completes_on_sqlite() {
    reverse_order_over_the_bus_still_completes(Harness::sqlite().await).await;
}

#[tokio::test]
async fn reverse_order_over_the_bus_still_completes_on_postgres() {
    reverse_order_over_the_bus_still_completes(Harness::postgres().await).await;
}

#[tokio::test]
async fn a_forbidden_event_whose_cause_is_known_is_logged_error_and_changes_nothing() {
    let harness = Harness::sqlite().await;
    let app = harness.instance(config(), false).await;
    let handler = app.sagas.saga_handler();
    let onboarding = Onboarding::new();
    let [create, creado, contrato, aprobado] = onboarding.through_approval();
    for message in [&create, &creado, &contrato, &aprobado] {
        handler.dispatch(&message.envelope).await.unwrap();
    }
    let db = harness.db();
    let before = repo::find(db, onboarding.saga_id).await.unwrap();
    let backlog = storage::outbox::backlog(db).await.unwrap();

    // Compliance changes its mind about a contract the saga already completed.
    let late = onboarding.contrato_rechazado(&contrato);
    assert_eq!(
        handler.dispatch(&late.envelope).await.unwrap(),
        Outcome::Refused(onboarding.saga_id)
    );
    // And a PartnerCreationFailed after the partner was created.
    let failed = onboarding.partner_creation_failed(&create, "EMAIL_EXISTENTE");
    assert_eq!(
        handler.dispatch(&failed.envelope).await.unwrap(),
        Outcome::Refused(onboarding.saga_id)
    );
    // A second CreatePartner for the same onboarding (a re-sent command).
    let resent = onboarding.create_partner();
    assert_eq!(
        handler.dispatch(&resent.envelope).await.unwrap(),
        Outcome::Refused(onboarding.saga_id)
    );

    assert_eq!(repo::find(db, onboarding.saga_id).await.unwrap(), before);
    assert_eq!(storage::outbox::backlog(db).await.unwrap(), backlog);
    let log = harness.log(onboarding.saga_id).await;
    assert_eq!(
        story(&log)[4..],
        rows(&[
            ("ContratoRechazado", "ERROR"),
            ("PartnerCreationFailed", "ERROR"),
            ("CreatePartner", "ERROR"),
        ])
    );
    assert_eq!(
        log[4].error.as_deref(),
        Some("ContratoRechazado is not allowed after ContratoAprobado")
    );
    assert_eq!(log[4].procesado_en, None);
    assert_eq!(log[4].evento_data, late.envelope.data);
    // Delivered again: still one row.
    assert_eq!(
        handler.dispatch(&late.envelope).await.unwrap(),
        Outcome::Duplicate
    );
    assert_eq!(harness.log(onboarding.saga_id).await.len(), 7);
    harness.cleanup().await;
}

#[tokio::test]
async fn events_of_partners_outside_any_saga_are_acknowledged_and_ignored() {
    let harness = Harness::sqlite().await;
    let app = harness.instance(config(), false).await;
    let handler = app.sagas.saga_handler();
    let outsider = Onboarding::new();
    // A partner created through the API: no sagaid, no onboarding.
    let mut creado = outsider.partner_creado(&outsider.create_partner());
    creado.envelope.sagaid = None;
    creado.envelope.causationid = None;
    clear_onboarding(&mut creado.envelope);
    // A contract made by hand for it, and compliance's answer.
    let mut contrato = outsider.contrato_creado(&creado);
    clear_onboarding(&mut contrato.envelope);
    let mut aprobado = outsider.contrato_aprobado(&contrato);
    clear_onboarding(&mut aprobado.envelope);
    let desactivado = outsider.partner_desactivado(&creado.envelope);
    for message in [&creado, &contrato, &aprobado, &desactivado] {
        assert_eq!(
            handler.dispatch(&message.envelope).await.unwrap(),
            Outcome::Ignored,
            "{}",
            message.envelope.event_type
        );
        assert!(
            storage::inbox::contains(harness.db(), "sagas", message.id())
                .await
                .unwrap()
        );
    }
    let (_, total) = repo::list(harness.db(), &Default::default(), 50, None)
        .await
        .unwrap();
    assert_eq!(total, 0);
    harness.cleanup().await;
}

#[tokio::test]
async fn without_sagaid_events_are_correlated_by_onboarding_and_contract() {
    let harness = Harness::sqlite().await;
    let app = harness.instance(config(), false).await;
    let handler = app.sagas.saga_handler();
    let onboarding = Onboarding::new();
    // The BFF put the saga id in the payload only; nobody propagates a sagaid.
    let mut create = onboarding.create_partner();
    create.envelope.sagaid = None;
    let creado = onboarding.partner_creado(&create);
    let contrato = onboarding.contrato_creado(&creado);
    let mut aprobado = onboarding.contrato_aprobado(&contrato);
    clear_onboarding(&mut aprobado.envelope);
    assert_eq!(
        handler.dispatch(&create.envelope).await.unwrap(),
        Outcome::Started(onboarding.saga_id)
    );
    for message in [&creado, &contrato, &aprobado] {
        assert_eq!(message.envelope.sagaid, None);
        assert_eq!(
            handler.dispatch(&message.envelope).await.unwrap(),
            Outcome::Applied(onboarding.saga_id)
        );
    }
    let stored = repo::find(harness.db(), onboarding.saga_id)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(stored.saga.estado, EstadoSaga::Completada);
    harness.cleanup().await;
}

#[tokio::test]
async fn an_undecodable_event_is_poison() {
    let harness = Harness::sqlite().await;
    let app = harness.instance(config(), false).await;
    let onboarding = Onboarding::new();
    let mut create = onboarding.create_partner();
    create.envelope.data = json!({"nombre": 5}).into();
    let error = app
        .sagas
        .handler()
        .handle(&create.envelope)
        .await
        .unwrap_err();
    assert!(matches!(error, HandlerError::Poison(_)), "{error}");
    // An unknown type on a consumed topic is not the saga's business.
    let other = Msg {
        topic: topics::PARTNER_CREATED,
        envelope: Envelope {
            event_type: "AlgoNuevo".into(),
            ..Envelope::wrap(
                "otro",
                &contracts::partners::PartnerEliminado {
                    partner_id: Uuid::now_v7(),
                },
                EnvelopeContext::default(),
            )
        },
    };
    app.sagas.handler().handle(&other.envelope).await.unwrap();
    harness.cleanup().await;
}

/// Whether the saga's consumer group recorded `message` in its inbox.
async fn in_inbox(harness: &Harness, message: &Msg) -> bool {
    storage::inbox::contains(harness.db(), "sagas", message.id())
        .await
        .unwrap()
}

async fn a_batch_applies_in_order_and_an_early_event_goes_alone_after_it(harness: Harness) {
    let app = harness.instance(config(), false).await;
    let handler = app.sagas.handler();

    // A whole conversation in one batch, one event delivered twice: each event sees the saga
    // and the cause the ones before it wrote.
    let first = Onboarding::new();
    let [create, creado, contrato, aprobado] = first.through_approval();
    let batch = [&create, &creado, &creado, &contrato, &aprobado];
    let envelopes: Vec<&Envelope> = batch.iter().map(|m| &m.envelope).collect();
    let results = handler.handle_batch(&envelopes).await;
    assert!(results.iter().all(Result::is_ok), "{results:?}");
    let completed = harness
        .wait_saga(first.saga_id, "the batched saga to complete", |s| {
            s.saga.estado == EstadoSaga::Completada
        })
        .await;
    assert_eq!(completed.saga.ultimo_paso, Paso::ContratoAprobado);
    let log = harness.log(first.saga_id).await;
    assert_eq!(
        story(&log),
        rows(&[
            ("CreatePartner", "PROCESADO"),
            ("PartnerCreado", "PROCESADO"),
            ("ContratoCreado", "PROCESADO"),
            ("ContratoAprobado", "PROCESADO"),
        ])
    );
    let before = snapshot(&harness, first.saga_id).await;

    // An event whose cause comes later in the batch, one about a saga that never started and a
    // redelivery of an event already committed, among events that can be applied.
    let second = Onboarding::new();
    let stranger = Onboarding::new();
    let create2 = second.create_partner();
    let creado2 = second.partner_creado(&create2);
    let contrato2 = second.contrato_creado(&creado2);
    let orphan = stranger.partner_creado(&stranger.create_partner());
    let batch = [&create2, &contrato2, &creado2, &orphan, &aprobado];
    let envelopes: Vec<&Envelope> = batch.iter().map(|m| &m.envelope).collect();
    let results = handler.handle_batch(&envelopes).await;
    assert_eq!(results.len(), batch.len());
    // The early events are handled alone after the rest of the batch committed: by then the
    // contract's cause is in the log, so it applies; the stranger's saga is still unknown.
    assert!(results[1].is_ok(), "{:?}", results[1]);
    assert!(
        matches!(results[3], Err(HandlerError::Early(_))),
        "{:?}",
        results[3]
    );
    for at in [0, 2, 4] {
        assert!(results[at].is_ok(), "{:?}", results[at]);
    }

    // The early event left nothing, not even its inbox row; the others took effect once.
    assert!(!in_inbox(&harness, &orphan).await);
    assert!(
        in_inbox(&harness, &create2).await
            && in_inbox(&harness, &creado2).await
            && in_inbox(&harness, &contrato2).await
    );
    assert_eq!(
        repo::find(harness.db(), stranger.saga_id).await.unwrap(),
        None
    );
    assert_eq!(
        story(&harness.log(second.saga_id).await),
        rows(&[
            ("CreatePartner", "PROCESADO"),
            ("PartnerCreado", "PROCESADO"),
            ("ContratoCreado", "PROCESADO"),
        ])
    );
    assert_eq!(snapshot(&harness, first.saga_id).await.0, before.0);
    assert_eq!(snapshot(&harness, first.saga_id).await.1, before.1);
    harness
        .wait_saga(second.saga_id, "the early event to apply", |s| {
            s.saga.ultimo_paso == Paso::ContratoCreado
        })
        .await;

    // A redelivery of the event that was early changes nothing.
    assert!(handler.handle_batch(&[&contrato2.envelope]).await[0].is_ok());
    assert_eq!(harness.log(second.saga_id).await.len(), 3);
    harness.cleanup().await;
}

#[tokio::test]
async fn a_batch_applies_in_order_and_an_early_event_goes_alone_after_it_on_sqlite() {
    a_batch_applies_in_order_and_an_early_event_goes_alone_after_it(Harness::sqlite().await).await;
}

#[tokio::test]
async fn a_batch_applies_in_order_and_an_early_event_goes_alone_after_it_on_postgres() {
    a_batch_applies_in_order_and_an_early_event_goes_alone_after_it(Harness::postgres().await)
        .await;
}

/// A batch reads the sagas its events name up front; an event still sees what the events
/// before it in the batch wrote to the same saga (its new state, its logged cause), and one
/// whose cause comes later in the batch waits for it.
async fn a_batch_of_started_sagas_sees_its_own_writes(harness: Harness) {
    let app = harness.instance(config(), false).await;
    let handler = app.sagas.handler();
    let forward = Onboarding::new();
    let [create, creado, contrato, aprobado] = forward.through_approval();
    let backward = Onboarding::new();
    let [create2, creado2, contrato2, aprobado2] = backward.through_approval();
    for started in [&create, &creado, &create2, &creado2] {
        handler.handle(&started.envelope).await.unwrap();
    }

    // Two steps of one saga in order, and two of another in the wrong order.
    let batch = [&contrato, &aprobado2, &aprobado, &contrato2];
    let envelopes: Vec<&Envelope> = batch.iter().map(|m| &m.envelope).collect();
    let results = handler.handle_batch(&envelopes).await;
    assert!(results.iter().all(Result::is_ok), "{results:?}");

    let expected = rows(&[
        ("CreatePartner", "PROCESADO"),
        ("PartnerCreado", "PROCESADO"),
        ("ContratoCreado", "PROCESADO"),
        ("ContratoAprobado", "PROCESADO"),
    ]);
    for onboarding in [&forward, &backward] {
        let completed = harness
            .wait_saga(onboarding.saga_id, "the saga to complete", |s| {
                s.saga.estado == EstadoSaga::Completada
            })
            .await;
        assert_eq!(completed.saga.ultimo_paso, Paso::ContratoAprobado);
        assert_eq!(story(&harness.log(onboarding.saga_id).await), expected);
    }
    harness.cleanup().await;
}

#[tokio::test]
async fn a_batch_of_started_sagas_sees_its_own_writes_on_sqlite() {
    a_batch_of_started_sagas_sees_its_own_writes(Harness::sqlite().await).await;
}

#[tokio::test]
async fn a_batch_of_started_sagas_sees_its_own_writes_on_postgres() {
    a_batch_of_started_sagas_sees_its_own_writes(Harness::postgres().await).await;
}

/// A batch of commands looks up every saga they name at once: new sagas start, and a command
/// for a saga that already exists — committed before, or started earlier in the same batch —
/// is logged `ERROR` in it, as when each command goes alone.
async fn a_batch_of_commands_starts_each_saga_once(harness: Harness) {
    let app = harness.instance(config(), false).await;
    let handler = app.sagas.handler();
    let earlier = Onboarding::new();
    handler
        .handle(&earlier.create_partner().envelope)
        .await
        .unwrap();
    let (first, second) = (Onboarding::new(), Onboarding::new());
    let batch = [
        first.create_partner(),
        second.create_partner(),
        first.create_partner(),
        earlier.create_partner(),
    ];
    let envelopes: Vec<&Envelope> = batch.iter().map(|m| &m.envelope).collect();
    let results = handler.handle_batch(&envelopes).await;
    assert!(results.iter().all(Result::is_ok), "{results:?}");

    let once = rows(&[("CreatePartner", "PROCESADO")]);
    let twice = rows(&[("CreatePartner", "PROCESADO"), ("CreatePartner", "ERROR")]);
    assert_eq!(story(&harness.log(first.saga_id).await), twice);
    assert_eq!(story(&harness.log(second.saga_id).await), once);
    assert_eq!(story(&harness.log(earlier.saga_id).await), twice);
    for onboarding in [&first, &second, &earlier] {
        let stored = repo::find(harness.db(), onboarding.saga_id)
            .await
            .unwrap()
            .expect("started");
        assert_eq!(stored.saga.estado, EstadoSaga::Iniciada);
    }
    harness.cleanup().await;
}

#[tokio::test]
async fn a_batch_of_commands_starts_each_saga_once_on_sqlite() {
    a_batch_of_commands_starts_each_saga_once(Harness::sqlite().await).await;
}

#[tokio::test]
async fn a_batch_of_commands_starts_each_saga_once_on_postgres() {
    a_batch_of_commands_starts_each_saga_once(Harness::postgres().await).await;
}

async fn in_one_transaction_each_event_sees_the_writes_before_it(harness: Harness) {
    let app = harness.instance(config(), false).await;
    let handler = app.sagas.saga_handler();
    let onboarding = Onboarding::new();
    let [create, creado, contrato, aprobado] = onboarding.through_approval();
    let saga_id = onboarding.saga_id;
    let mut tx = harness.db().begin().await.unwrap();
    let mut outcomes = Vec::new();
    for message in [&create, &creado, &creado, &contrato, &aprobado] {
        outcomes.push(
            handler
                .dispatch_in(&mut tx, &message.envelope)
                .await
                .unwrap(),
        );
    }
    assert_eq!(
        outcomes,
        [
            Outcome::Started(saga_id),
            Outcome::Applied(saga_id),
            Outcome::Duplicate,
            Outcome::Applied(saga_id),
            Outcome::Applied(saga_id),
        ]
    );
    tx.commit().await.unwrap();
    let stored = repo::find(harness.db(), saga_id).await.unwrap().unwrap();
    assert_eq!(stored.saga.estado, EstadoSaga::Completada);
    assert_eq!(harness.log(saga_id).await.len(), 4);
    harness.cleanup().await;
}

#[tokio::test]
async fn in_one_transaction_each_event_sees_the_writes_before_it_on_sqlite() {
    in_one_transaction_each_event_sees_the_writes_before_it(Harness::sqlite().await).await;
}

#[tokio::test]
async fn in_one_transaction_each_event_sees_the_writes_before_it_on_postgres() {
    in_one_transaction_each_event_sees_the_writes_before_it(Harness::postgres().await).await;
}
