//! The saga's commands: `CreatePartner` creates a partner (or answers with
//! `PartnerCreationFailed`) and `DesactivarPartner` deactivates one, each exactly once however
//! often the command is delivered, alone or in a batch applied in one transaction (which reads
//! what its commands need up front and writes its partners together).

use std::sync::Arc;

use contracts::partners::{CreatePartner, DesactivarPartner};
use contracts::topics;
use integraciones::application::{Service, SERVICE};
use integraciones::consumers::CreatePartnerHandler;
use integraciones::storage::{self as repo, PartnerFilter};
use kernel::{Bus, Envelope, EnvelopeContext, MessageHandler};
use serde_json::{json, Value};
use storage::{Transactional, TxCounts, TxHandler};
use tokio::sync::Notify;
use uuid::Uuid;

use testkit::bus::next_matching;
use testkit::db::TestDb;
use testkit::{eventually, DEADLINE};

use crate::helpers::{spawn_app, spawn_app_with, SCHEMA};

fn command(email: &str) -> CreatePartner {
    CreatePartner {
        onboarding_id: Uuid::now_v7(),
        saga_id: None,
        nombre: "Ana Saga".into(),
        email: email.into(),
        telefono: Some("555".into()),
        direccion: None,
        tipo: Some("INFLUENCER".into()),
        terminos: Some(json!({"tipo": "CPA", "monto": "10.00"})),
    }
}

fn envelope_of(command: &CreatePartner) -> Envelope {
    let mut envelope = Envelope::wrap("bff", command, EnvelopeContext::default());
    envelope.sagaid = Some(Uuid::now_v7());
    envelope
}

async fn partners_with_email(db: &storage::Db, email: &str) -> i64 {
    let filter = PartnerFilter {
        q: Some(email.into()),
        ..PartnerFilter::default()
    };
    repo::list(db, &filter, 50, None).await.unwrap().1
}

#[tokio::test]
async fn create_partner_creates_it_and_publishes_partner_creado_with_the_onboarding() {
    let app = spawn_app().await;
    let mut created = app.observe(topics::PARTNER_CREATED).await;
    let command = command("saga@example.com");
    let envelope = envelope_of(&command);
    app.bus
        .publish(topics::CREATE_PARTNER, std::slice::from_ref(&envelope))
        .await
        .unwrap();

    let event = next_matching(&mut created, "PartnerCreado", |e| {
        e.data.value()["onboarding_id"] == command.onboarding_id.to_string()
    })
    .await;
    assert_eq!(event.causationid, Some(envelope.id));
    assert_eq!(event.sagaid, envelope.sagaid);
    assert_eq!(
        event.data.value()["terminos"],
        json!({"tipo": "CPA", "monto": "10.00"})
    );
    assert_eq!(event.data.value()["tipo"], "INFLUENCER");
    let partner_id: Uuid = event.data.value()["partner_id"]
        .as_str()
        .unwrap()
        .parse()
        .unwrap();
    let partner: Value = app
        .get_json(&format!("/api/v1/partners/{partner_id}"))
        .await;
    assert_eq!(partner["email"], "saga@example.com");
    assert_eq!(partner["onboarding_id"], command.onboarding_id.to_string());
}

#[tokio::test]
async fn a_duplicate_email_answers_partner_creation_failed() {
    let app = spawn_app().await;
    let mut failed = app.observe(topics::PARTNER_CREATION_FAILED).await;
    app.create_partner(json!({"nombre": "Ana", "email": "taken@example.com"}))
        .await;
    let command = command("TAKEN@example.com");
    app.bus
        .publish(topics::CREATE_PARTNER, &[envelope_of(&command)])
        .await
        .unwrap();
    let event = next_matching(&mut failed, "PartnerCreationFailed", |e| {
        e.data.value()["onboarding_id"] == command.onboarding_id.to_string()
    })
    .await;
    assert_eq!(event.event_type, "PartnerCreationFailed");
    assert_eq!(event.data.value()["error_code"], "EMAIL_EXISTENTE");
    assert_eq!(
        partners_with_email(app.service.db(), "taken@example.com").await,
        1
    );
}

#[tokio::test]
async fn invalid_data_answers_partner_creation_failed() {
    let app = spawn_app().await;
    let mut failed = app.observe(topics::PARTNER_CREATION_FAILED).await;
    let mut command = command("not-an-address");
    command.tipo = Some("X".into());
    app.bus
        .publish(topics::CREATE_PARTNER, &[envelope_of(&command)])
        .await
        .unwrap();
    let event = next_matching(&mut failed, "PartnerCreationFailed", |e| {
        e.data.value()["onboarding_id"] == command.onboarding_id.to_string()
    })
    .await;
    assert_eq!(event.data.value()["error_code"], "DATOS_INVALIDOS");
    let data = event.data.value();
    let message = data["error_message"].as_str().unwrap();
    assert!(
        message.contains("email") && message.contains("tipo"),
        "{message}"
    );
}

#[tokio::test]
async fn the_same_command_delivered_twice_creates_one_partner_and_one_event() {
    let app = spawn_app_with(false).await;
    let handler = app.service.create_partner_handler();
    let command = command("twice@example.com");
    let envelope = envelope_of(&command);
    handler.handle(&envelope).await.unwrap();
    handler.handle(&envelope).await.unwrap();
    // A new event id for the same onboarding (a re-sent command) changes nothing either.
    handler.handle(&envelope_of(&command)).await.unwrap();

    assert_eq!(
        partners_with_email(app.service.db(), "twice@example.com").await,
        1
    );
    assert_eq!(storage::outbox::backlog(app.service.db()).await.unwrap(), 1);
    assert!(
        storage::inbox::contains(app.service.db(), "integraciones", envelope.id)
            .await
            .unwrap()
    );
}

#[tokio::test]
async fn an_undecodable_command_is_poison() {
    let app = spawn_app_with(false).await;
    let mut envelope = envelope_of(&command("poison@example.com"));
    envelope.data = json!({"nombre": 5}).into();
    let error = app
        .service
        .create_partner_handler()
        .handle(&envelope)
        .await
        .unwrap_err();
    assert!(matches!(error, kernel::HandlerError::Poison(_)), "{error}");
}

#[tokio::test]
async fn desactivar_partner_sets_inactivo_and_always_answers() {
    let app = spawn_app().await;
    let mut deactivated = app.observe(topics::PARTNER_DEACTIVATED).await;
    let partner = app
        .create_partner(json!({"nombre": "Ana", "email": "comp@example.com"}))
        .await;
    let partner_id: Uuid = partner["id"].as_str().unwrap().parse().unwrap();
    let compensation = DesactivarPartner {
        partner_id,
        motivo: Some("contrato rechazado".into()),
    };
    let envelope = Envelope::wrap("alianzas", &compensation, EnvelopeContext::default());
    app.bus
        .publish(topics::DEACTIVATE_PARTNER, std::slice::from_ref(&envelope))
        .await
        .unwrap();
    let event = next_matching(&mut deactivated, "PartnerDesactivado", |e| {
        e.causationid == Some(envelope.id)
    })
    .await;
    assert_eq!(event.data.value()["partner_id"], partner_id.to_string());
    assert_eq!(event.data.value()["motivo"], "contrato rechazado");
    let estado = eventually(DEADLINE, "the partner to be INACTIVO", || async {
        let partner = repo::find(app.service.db(), partner_id).await.unwrap()?;
        let estado = partner.state().estado.as_str();
        (estado == "INACTIVO").then_some(estado)
    })
    .await;
    assert_eq!(estado, "INACTIVO");

    // Already inactive: still answered, so the saga always hears back.
    let again = Envelope::wrap("alianzas", &compensation, EnvelopeContext::default());
    app.bus
        .publish(topics::DEACTIVATE_PARTNER, std::slice::from_ref(&again))
        .await
        .unwrap();
    next_matching(&mut deactivated, "a second PartnerDesactivado", |e| {
        e.causationid == Some(again.id)
    })
    .await;
}

#[tokio::test]
async fn a_deleted_partner_stays_deleted_when_deactivated() {
    let app = spawn_app_with(false).await;
    let partner = app
        .create_partner(json!({"nombre": "Ana", "email": "gone@example.com"}))
        .await;
    let partner_id: Uuid = partner["id"].as_str().unwrap().parse().unwrap();
    let response = app
        .client
        .delete(app.url(&format!("/api/v1/partners/{partner_id}")))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let before = storage::outbox::backlog(app.service.db()).await.unwrap();
    let envelope = Envelope::wrap(
        "alianzas",
        &DesactivarPartner {
            partner_id,
            motivo: None,
        },
        EnvelopeContext::default(),
    );
    let handler = app.service.desactivar_partner_handler();
    handler.handle(&envelope).await.unwrap();
    handler.handle(&envelope).await.unwrap();
    let partner = repo::find(app.service.db(), partner_id)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(partner.state().estado.as_str(), "ELIMINADO");
    assert_eq!(
        storage::outbox::backlog(app.service.db()).await.unwrap(),
        before + 1,
        "one PartnerDesactivado for a command delivered twice"
    );
}

/// The command path on PostgreSQL, where a unique violation aborts the transaction.
#[tokio::test]
async fn the_command_path_is_exactly_once_on_postgres() {
    let test_db = TestDb::postgres(SCHEMA).await;
    let test_bus = testkit::bus::fresh_bus().await;
    let service = integraciones::Integraciones::start(test_db.db.clone(), test_bus.bus.clone())
        .await
        .unwrap();
    let handler = service.create_partner_handler();
    let first = command("pg@example.com");
    let envelope = envelope_of(&first);
    handler.handle(&envelope).await.unwrap();
    handler.handle(&envelope).await.unwrap();
    let clash = command("PG@example.com");
    handler.handle(&envelope_of(&clash)).await.unwrap();
    assert_eq!(partners_with_email(service.db(), "pg@example.com").await, 1);
    let outbox: Vec<String> = sqlx::query_scalar("SELECT envelope FROM outbox ORDER BY outbox_id")
        .fetch_all(match service.db() {
            storage::Db::Postgres(pool) => pool,
            storage::Db::Sqlite { .. } => unreachable!("a PostgreSQL test"),
        })
        .await
        .unwrap();
    let types: Vec<String> = outbox
        .iter()
        .map(|text| Envelope::from_json(text.as_bytes()).unwrap().event_type)
        .collect();
    assert_eq!(types, ["PartnerCreado", "PartnerCreationFailed"]);
    drop(service);
    test_db.cleanup().await;
}

/// The outbox's event types in the order they were appended.
async fn outbox_types(db: &storage::Db) -> Vec<String> {
    let rows: Vec<String> = storage::with_db!(db, conn => sqlx::query_scalar(
        "SELECT envelope FROM outbox ORDER BY outbox_id",
    )
    .fetch_all(conn)
    .await)
    .unwrap();
    rows.iter()
        .map(|text| Envelope::from_json(text.as_bytes()).unwrap().event_type)
        .collect()
}

/// The service over `db` with a bus of its own and no workers, so the outbox keeps its rows.
async fn service_on(db: &storage::Db) -> (integraciones::Integraciones, testkit::bus::TestBus) {
    let test_bus = testkit::bus::fresh_bus().await;
    let service = integraciones::Integraciones::start(db.clone(), test_bus.bus.clone())
        .await
        .unwrap();
    (service, test_bus)
}

/// A batch of commands in one call: each later command sees what the earlier ones wrote
/// (the re-sent onboarding, the taken e-mail), a redelivered id changes nothing, and every
/// message gets its own result.
async fn a_batch_of_create_partner_commands_is_applied_in_order(db: &storage::Db) {
    let (service, _bus) = service_on(db).await;
    let handler = service.create_partner_handler();
    let first = command("batch@example.com");
    let first_envelope = envelope_of(&first);
    let resent = envelope_of(&first);
    let clash = command("BATCH@example.com");
    let mut invalid = command("not-an-address");
    invalid.tipo = Some("X".into());
    let other = command("other@example.com");
    let batch = [
        first_envelope.clone(),
        first_envelope.clone(),
        resent.clone(),
        envelope_of(&clash),
        envelope_of(&invalid),
        envelope_of(&other),
    ];
    let results = handler
        .handle_batch(&batch.iter().collect::<Vec<_>>())
        .await;
    assert_eq!(results.len(), batch.len());
    assert!(results.iter().all(Result::is_ok), "{results:?}");

    assert_eq!(partners_with_email(db, "batch@example.com").await, 1);
    assert_eq!(partners_with_email(db, "other@example.com").await, 1);
    assert_eq!(
        outbox_types(db).await,
        [
            "PartnerCreado",
            "PartnerCreationFailed",
            "PartnerCreationFailed",
            "PartnerCreado"
        ]
    );
    for envelope in &batch {
        assert!(storage::inbox::contains(db, "integraciones", envelope.id)
            .await
            .unwrap());
    }

    // An undecodable command fails alone; the valid one beside it takes effect.
    let valid = command("valid@example.com");
    let mut poison = envelope_of(&command("poison@example.com"));
    poison.data = json!({"nombre": 5}).into();
    let results = handler.handle_batch(&[&envelope_of(&valid), &poison]).await;
    assert!(results[0].is_ok(), "{results:?}");
    assert!(
        matches!(results[1], Err(kernel::HandlerError::Poison(_))),
        "{results:?}"
    );
    assert_eq!(partners_with_email(db, "valid@example.com").await, 1);
    assert_eq!(partners_with_email(db, "poison@example.com").await, 0);
}

/// A batch of compensations: one partner deactivated by two commands and a redelivery, and an
/// unknown partner, each answered once per event id.
async fn a_batch_of_desactivar_partner_commands_answers_each_once(db: &storage::Db) {
    let (service, _bus) = service_on(db).await;
    let create = command("deactivate@example.com");
    service
        .create_partner_handler()
        .handle(&envelope_of(&create))
        .await
        .unwrap();
    let filter = PartnerFilter {
        q: Some("deactivate@example.com".into()),
        ..PartnerFilter::default()
    };
    let partner_id = repo::list(db, &filter, 1, None).await.unwrap().0[0].id();
    let before = storage::outbox::backlog(db).await.unwrap();

    let compensation = |partner_id| {
        Envelope::wrap(
            "alianzas",
            &DesactivarPartner {
                partner_id,
                motivo: Some("contrato rechazado".into()),
            },
            EnvelopeContext::default(),
        )
    };
    let first = compensation(partner_id);
    let batch = [
        first.clone(),
        first.clone(),
        compensation(partner_id),
        compensation(Uuid::now_v7()),
    ];
    let results = service
        .desactivar_partner_handler()
        .handle_batch(&batch.iter().collect::<Vec<_>>())
        .await;
    assert_eq!(results.len(), batch.len());
    assert!(results.iter().all(Result::is_ok), "{results:?}");

    let partner = repo::find(db, partner_id).await.unwrap().unwrap();
    assert_eq!(partner.state().estado.as_str(), "INACTIVO");
    assert_eq!(
        storage::outbox::backlog(db).await.unwrap(),
        before + 3,
        "one PartnerDesactivado per distinct event id"
    );
    assert_eq!(
        outbox_types(db).await[before as usize..],
        ["PartnerDesactivado"; 3]
    );
}

/// The `CreatePartner` handler over `db` as the consumers run it, with its transaction counts.
fn counted_handler(db: &storage::Db) -> Transactional<CreatePartnerHandler> {
    let service = Arc::new(Service::new(db.clone(), Arc::new(Notify::new())));
    Transactional::new(
        db.clone(),
        Arc::new(Notify::new()),
        CreatePartnerHandler::new(service),
    )
    .with_inbox(SERVICE)
}

/// A batch reads its onboardings and e-mails once and writes its partners together at the
/// end: each onboarding still gets one partner, each e-mail one live partner (against what was
/// stored and what the batch itself created), and the batch is one committed transaction
/// (not rolled back and redone one command at a time).
async fn a_batch_of_create_partner_commands_is_one_transaction(db: &storage::Db) {
    let (_service, _bus) = service_on(db).await;
    let handler = counted_handler(db);
    let stored = command("stored@example.com");
    handler.handle(&envelope_of(&stored)).await.unwrap();
    let nuevo = command("nuevo@example.com");
    let mut again = command("again@example.com");
    again.onboarding_id = stored.onboarding_id;
    let taken = command("STORED@example.com");
    let other = command("other-batch@example.com");
    let clash = command("Other-Batch@example.com");
    let batch = [
        envelope_of(&nuevo),
        envelope_of(&nuevo),
        envelope_of(&again),
        envelope_of(&taken),
        envelope_of(&other),
        envelope_of(&clash),
    ];
    let before = outbox_types(db).await.len();
    let counts = handler.counts();
    let results = handler
        .handle_batch(&batch.iter().collect::<Vec<_>>())
        .await;
    assert!(results.iter().all(Result::is_ok), "{results:?}");
    assert_eq!(
        handler.counts().since(counts),
        TxCounts::ONE_COMMIT,
        "one transaction for the whole batch"
    );

    assert_eq!(
        outbox_types(db).await[before..],
        [
            "PartnerCreado",
            "PartnerCreationFailed",
            "PartnerCreado",
            "PartnerCreationFailed"
        ]
    );
    for (email, count) in [
        ("nuevo@example.com", 1),
        ("stored@example.com", 1),
        ("again@example.com", 0),
        ("other-batch@example.com", 1),
    ] {
        assert_eq!(partners_with_email(db, email).await, count, "{email}");
    }
    let mut tx = db.begin().await.unwrap();
    let (partner, _) = repo::onboarding_partner_and_email(&mut tx, nuevo.onboarding_id, None)
        .await
        .unwrap();
    tx.rollback().await.unwrap();
    let partner = repo::find(db, partner.expect("the onboarding has its partner"))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(partner.state().email.as_str(), "nuevo@example.com");
    for envelope in &batch {
        assert!(storage::inbox::contains(db, SERVICE, envelope.id)
            .await
            .unwrap());
    }
}

/// A partner a batch created waits to be written until the batch ends, unless a command the
/// batch did not read up front comes first: then it is written before that one is looked up.
async fn a_waiting_partner_is_written_before_a_command_the_batch_did_not_read(db: &storage::Db) {
    let (_service, _bus) = service_on(db).await;
    let service = Arc::new(Service::new(db.clone(), Arc::new(Notify::new())));
    let handler = CreatePartnerHandler::new(service);
    let read = envelope_of(&command("read@example.com"));
    let late = command("late@example.com");
    let mut tx = db.begin().await.unwrap();
    handler.prepare(&mut tx, &[&read]).await.unwrap();
    handler.apply(&mut tx, &read).await.unwrap();
    handler.apply(&mut tx, &envelope_of(&late)).await.unwrap();
    let onboarding = read.decode::<CreatePartner>().unwrap().onboarding_id;
    let (partner, _) = repo::onboarding_partner_and_email(&mut tx, onboarding, None)
        .await
        .unwrap();
    assert!(partner.is_some(), "written before the late command");
    handler.finish(&mut tx).await.unwrap();
    tx.commit().await.unwrap();
    assert_eq!(partners_with_email(db, "read@example.com").await, 1);
    assert_eq!(partners_with_email(db, "late@example.com").await, 1);
}

testkit::on_both_backends!(
    crate::helpers::SCHEMA;
    a_batch_of_create_partner_commands_is_one_transaction,
    a_waiting_partner_is_written_before_a_command_the_batch_did_not_read,
    a_batch_of_create_partner_commands_is_applied_in_order,
    a_batch_of_desactivar_partner_commands_answers_each_once,
);
