//! Step deadlines: a stalled saga times out once (`FALLIDA`/`TIMEOUT`, `SagaTimeout` logged,
//! `DesactivarPartner` published) even with two replicas on one database; a partner created
//! after the timeout is still compensated; review waits never time out.

use std::time::Duration;

use chrono::TimeDelta;
use contracts::topics;
use sagas::application::Outcome;
use sagas::domain::{EstadoSaga, Paso};
use sagas::SagasConfig;

use testkit::bus::next_matching;

use crate::helpers::{config, rows, story, Harness, Onboarding};

fn fast() -> SagasConfig {
    SagasConfig {
        step_timeout: Duration::from_millis(200),
        timeout_check_interval: Duration::from_millis(10),
    }
}

async fn a_stalled_saga_times_out_exactly_once_with_two_replicas(harness: Harness) {
    let (mut commands, commands_group) = harness.observe(topics::DEACTIVATE_PARTNER).await;
    let (mut outcomes, outcomes_group) = harness.observe(topics::ONBOARDING_EVENTS).await;
    let _first = harness.instance(fast(), true).await;
    let _second = harness.replica(fast()).await;
    let onboarding = Onboarding::new();
    let create = onboarding.create_partner();
    let creado = onboarding.partner_creado(&create);
    harness.publish(&create).await;
    harness.publish(&creado).await;
    // alianzas never answers.

    let stored = harness
        .wait_saga(onboarding.saga_id, "the saga to time out", |s| {
            s.saga.estado == EstadoSaga::Fallida
        })
        .await;
    assert_eq!(stored.saga.causa.as_deref(), Some("TIMEOUT"));
    assert_eq!(stored.saga.paso_deadline, None);
    assert_eq!(stored.saga.partner_id, Some(onboarding.partner_id));
    harness.wait_outbox_empty().await;

    let log = harness.log(onboarding.saga_id).await;
    let count = |tipo: &str| log.iter().filter(|e| e.tipo_evento == tipo).count();
    assert_eq!(count("SagaTimeout"), 1, "{:?}", story(&log));
    assert_eq!(count("DesactivarPartner"), 1, "{:?}", story(&log));

    let command = next_matching(&mut commands, "DesactivarPartner", |e| {
        e.sagaid == Some(onboarding.saga_id)
    })
    .await;
    assert_eq!(
        command.data.value()["partner_id"],
        onboarding.partner_id.to_string()
    );
    let logged = log
        .iter()
        .find(|e| e.tipo_evento == "DesactivarPartner")
        .expect("logged");
    assert_eq!(logged.event_id, command.id);
    let announced = next_matching(&mut outcomes, "OnboardingEstadoCambiado", |e| {
        e.sagaid == Some(onboarding.saga_id)
    })
    .await;
    assert_eq!(announced.data.value()["estado"], "FALLIDA");
    assert_eq!(announced.data.value()["causa"], "TIMEOUT");
    // Everything committed has been published, and each observer got exactly one message.
    assert_eq!(harness.bus.pending(&commands_group).await.unwrap(), 0);
    assert_eq!(harness.bus.pending(&outcomes_group).await.unwrap(), 0);
    harness.cleanup().await;
}

#[tokio::test]
async fn a_stalled_saga_times_out_exactly_once_with_two_replicas_on_sqlite() {
    a_stalled_saga_times_out_exactly_once_with_two_replicas(Harness::sqlite().await).await;
}

#[tokio::test]
async fn a_stalled_saga_times_out_exactly_once_with_two_replicas_on_postgres() {
    a_stalled_saga_times_out_exactly_once_with_two_replicas(Harness::postgres().await).await;
}

#[tokio::test]
async fn the_timeout_is_caused_by_the_last_step_and_causes_the_compensation() {
    let harness = Harness::sqlite().await;
    let app = harness.instance(config(), false).await;
    let handler = app.sagas.saga_handler();
    let onboarding = Onboarding::new();
    let create = onboarding.create_partner();
    let creado = onboarding.partner_creado(&create);
    handler.dispatch(&create.envelope).await.unwrap();
    handler.dispatch(&creado.envelope).await.unwrap();
    let service = app.sagas.service();
    // Not due yet with the default five minutes.
    assert_eq!(app.sagas.check_timeouts().await.unwrap(), 0);
    let later = kernel::now() + TimeDelta::seconds(301);
    assert!(service.time_out(onboarding.saga_id, later).await.unwrap());
    assert!(
        !service.time_out(onboarding.saga_id, later).await.unwrap(),
        "fired once"
    );

    let log = harness.log(onboarding.saga_id).await;
    assert_eq!(
        story(&log),
        rows(&[
            ("CreatePartner", "PROCESADO"),
            ("PartnerCreado", "PROCESADO"),
            ("SagaTimeout", "PROCESADO"),
            ("DesactivarPartner", "PROCESADO"),
        ])
    );
    assert_eq!(log[2].evento_data.value()["paso"], "PartnerCreado");
    // The compensation answers the timeout, so integraciones' PartnerDesactivado is accepted.
    let _app = harness.instance(config(), true).await;
    let (mut commands, _) = harness.observe(topics::DEACTIVATE_PARTNER).await;
    let command = next_matching(&mut commands, "DesactivarPartner", |e| {
        e.sagaid == Some(onboarding.saga_id)
    })
    .await;
    assert_eq!(command.causationid, Some(log[2].event_id));
    assert_eq!(command.correlationid, create.envelope.correlationid);
    let answer = onboarding.partner_desactivado(&command);
    assert_eq!(
        handler.dispatch(&answer.envelope).await.unwrap(),
        Outcome::Applied(onboarding.saga_id)
    );
    harness.cleanup().await;
}

#[tokio::test]
async fn a_partner_created_after_the_timeout_is_recorded_and_compensated() {
    let harness = Harness::sqlite().await;
    let app = harness.instance(config(), false).await;
    let handler = app.sagas.saga_handler();
    let onboarding = Onboarding::new();
    let create = onboarding.create_partner();
    handler.dispatch(&create.envelope).await.unwrap();
    let later = kernel::now() + TimeDelta::seconds(301);
    assert!(app
        .sagas
        .service()
        .time_out(onboarding.saga_id, later)
        .await
        .unwrap());
    let timed_out = harness.log(onboarding.saga_id).await;
    assert_eq!(
        story(&timed_out),
        rows(&[("CreatePartner", "PROCESADO"), ("SagaTimeout", "PROCESADO")]),
        "no partner yet: nothing to compensate"
    );

    let creado = onboarding.partner_creado(&create);
    assert_eq!(
        handler.dispatch(&creado.envelope).await.unwrap(),
        Outcome::Applied(onboarding.saga_id)
    );
    let stored = harness
        .wait_saga(onboarding.saga_id, "the saga", |_| true)
        .await;
    assert_eq!(stored.saga.partner_id, Some(onboarding.partner_id));
    assert_eq!(stored.saga.estado, EstadoSaga::Fallida);
    assert_eq!(stored.saga.causa.as_deref(), Some("TIMEOUT"));
    assert_eq!(stored.saga.ultimo_paso, Paso::SagaTimeout);
    let log = harness.log(onboarding.saga_id).await;
    assert_eq!(
        story(&log)[2..],
        rows(&[
            ("PartnerCreado", "PROCESADO"),
            ("DesactivarPartner", "PROCESADO"),
        ])
    );
    assert_eq!(
        log[3].evento_data.value()["partner_id"],
        onboarding.partner_id.to_string()
    );
    harness.cleanup().await;
}

#[tokio::test]
async fn review_waits_never_time_out() {
    let harness = Harness::sqlite().await;
    let app = harness.instance(fast(), false).await;
    let handler = app.sagas.saga_handler();
    let onboarding = Onboarding::new();
    let [create, creado, contrato, rechazado] = onboarding.through_rejection();
    for message in [&create, &creado, &contrato, &rechazado] {
        handler.dispatch(&message.envelope).await.unwrap();
    }
    let far = kernel::now() + TimeDelta::days(365);
    assert!(!app
        .sagas
        .service()
        .time_out(onboarding.saga_id, far)
        .await
        .unwrap());
    assert_eq!(app.sagas.check_timeouts().await.unwrap(), 0);
    let stored = harness
        .wait_saga(onboarding.saga_id, "the saga", |_| true)
        .await;
    assert_eq!(stored.saga.estado, EstadoSaga::PendienteRevision);
    harness.cleanup().await;
}
