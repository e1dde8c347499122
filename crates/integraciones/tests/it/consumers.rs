//! The saga's commands: `CreatePartner` creates a partner (or answers with
//! `PartnerCreationFailed`) and `DesactivarPartner` deactivates one, each exactly once however
//! often the command is delivered.

use contracts::partners::{CreatePartner, DesactivarPartner};
use contracts::topics;
use integraciones::storage::{self as repo, PartnerFilter};
use kernel::{Bus, Envelope, EnvelopeContext};
use serde_json::{json, Value};
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
        e.data["onboarding_id"] == command.onboarding_id.to_string()
    })
    .await;
    assert_eq!(event.causationid, Some(envelope.id));
    assert_eq!(event.sagaid, envelope.sagaid);
    assert_eq!(
        event.data["terminos"],
        json!({"tipo": "CPA", "monto": "10.00"})
    );
    assert_eq!(event.data["tipo"], "INFLUENCER");
    let partner_id: Uuid = event.data["partner_id"].as_str().unwrap().parse().unwrap();
    let partner: Value = app
        .client
        .get(app.url(&format!("/api/v1/partners/{partner_id}")))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
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
        e.data["onboarding_id"] == command.onboarding_id.to_string()
    })
    .await;
    assert_eq!(event.event_type, "PartnerCreationFailed");
    assert_eq!(event.data["error_code"], "EMAIL_EXISTENTE");
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
        e.data["onboarding_id"] == command.onboarding_id.to_string()
    })
    .await;
    assert_eq!(event.data["error_code"], "DATOS_INVALIDOS");
    let message = event.data["error_message"].as_str().unwrap();
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
    envelope.data = json!({"nombre": 5});
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
    assert_eq!(event.data["partner_id"], partner_id.to_string());
    assert_eq!(event.data["motivo"], "contrato rechazado");
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
