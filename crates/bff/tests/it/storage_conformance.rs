//! The onboarding repository's behaviours, written once and run against SQLite and
//! PostgreSQL: round trip, unknown ids, one onboarding per saga, the row and its outbox
//! command committed or rolled back together; and the whole write over HTTP on both.

use bff::domain::{Onboarding, RawSolicitud, SolicitudPartner};
use bff::storage::{self as repo};
use contracts::partners::CreatePartner;
use kernel::{Envelope, EnvelopeContext, IntegrationEvent};
use serde_json::{json, Value};
use storage::Db;
use uuid::Uuid;

use testkit::db::TestDb;
use testkit::http::expect_problem;

use crate::helpers::{onboarding_count, outbox_rows, spawn_app_on, unused_upstreams, SCHEMA};

fn solicitud(email: &str, terminos: Option<Value>) -> SolicitudPartner {
    let nombre = json!("Ana");
    let email = json!(email);
    let tipo = json!("EMBAJADOR");
    SolicitudPartner::parse(RawSolicitud {
        nombre: Some(&nombre),
        email: Some(&email),
        tipo: Some(&tipo),
        terminos: terminos.as_ref(),
        ..RawSolicitud::default()
    })
    .unwrap()
}

fn onboarding(saga_id: Uuid) -> Onboarding {
    Onboarding::iniciar(
        kernel::new_id(),
        saga_id,
        solicitud("ana@example.com", Some(json!({"monto": "100.00"}))),
        kernel::now(),
    )
}

async fn insert(db: &Db, onboarding: &Onboarding) -> Result<(), repo::RepoError> {
    let mut tx = db.begin().await.unwrap();
    repo::insert_onboarding(&mut tx, onboarding).await?;
    tx.commit().await.unwrap();
    Ok(())
}

async fn an_onboarding_round_trips(db: &Db) {
    let onboarding = onboarding(kernel::new_id());
    insert(db, &onboarding).await.unwrap();
    let stored = repo::find_onboarding(db, onboarding.onboarding_id)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(stored.onboarding_id, onboarding.onboarding_id);
    assert_eq!(stored.saga_id, onboarding.saga_id);
    assert_eq!(stored.nombre, "Ana");
    assert_eq!(stored.email, "ana@example.com");
    assert_eq!(stored.tipo, "EMBAJADOR");
    assert_eq!(stored.creada_en, onboarding.creada_en);
    assert_eq!(
        stored.solicitud,
        json!({
            "nombre": "Ana",
            "email": "ana@example.com",
            "telefono": null,
            "direccion": null,
            "tipo": "EMBAJADOR",
            "terminos": {"monto": "100.00"},
        })
    );
}

async fn an_unknown_onboarding_is_none(db: &Db) {
    assert_eq!(
        repo::find_onboarding(db, Uuid::now_v7()).await.unwrap(),
        None
    );
}

async fn one_onboarding_per_saga(db: &Db) {
    let saga_id = kernel::new_id();
    insert(db, &onboarding(saga_id)).await.unwrap();
    let twin = onboarding(saga_id);
    assert!(matches!(
        insert(db, &twin).await,
        Err(repo::RepoError::Sqlx(ref error)) if storage::is_unique_violation(error)
    ));
    assert_eq!(
        repo::find_onboarding(db, twin.onboarding_id).await.unwrap(),
        None
    );
}

async fn the_row_and_its_command_roll_back_together(db: &Db) {
    let before = onboarding_count(db).await;
    let onboarding = onboarding(kernel::new_id());
    let command = bff::application::create_partner_command(&onboarding);
    let envelope = Envelope::wrap("bff", &command, EnvelopeContext::default());
    let mut tx = db.begin().await.unwrap();
    repo::insert_onboarding(&mut tx, &onboarding).await.unwrap();
    storage::outbox::append(&mut tx, CreatePartner::TOPIC, &envelope);
    drop(tx);
    assert_eq!(onboarding_count(db).await, before);
    assert!(outbox_rows(db)
        .await
        .iter()
        .all(|(_, row)| row.id != envelope.id));
}

fn command_of(onboarding: &Onboarding) -> Envelope {
    let command = bff::application::create_partner_command(onboarding);
    Envelope::wrap("bff", &command, EnvelopeContext::default())
}

/// Onboardings written together, with their commands, in one query read back exactly as one
/// written alone, and their commands wait in the outbox in the group's order.
async fn onboardings_written_together_read_back_as_one_alone(db: &Db) {
    let alone = onboarding(kernel::new_id());
    insert(db, &alone).await.unwrap();
    let mut together = vec![onboarding(kernel::new_id()), onboarding(kernel::new_id())];
    together.push(Onboarding::iniciar(
        kernel::new_id(),
        kernel::new_id(),
        solicitud("otra@example.com", None),
        kernel::now(),
    ));
    let together_refs: Vec<&Onboarding> = together.iter().collect();
    let commands: Vec<Envelope> = together.iter().map(command_of).collect();
    repo::insert_started(
        db,
        &together_refs,
        commands.iter().map(|c| (CreatePartner::TOPIC, c)),
    )
    .await
    .unwrap();

    let expected = |onboarding: &Onboarding| repo::OnboardingRecord {
        onboarding_id: onboarding.onboarding_id,
        saga_id: onboarding.saga_id,
        nombre: onboarding.solicitud.nombre.as_str().to_owned(),
        email: onboarding.solicitud.email.as_str().to_owned(),
        tipo: onboarding.solicitud.tipo.as_str().to_owned(),
        solicitud: repo::solicitud_json(&onboarding.solicitud),
        creada_en: onboarding.creada_en,
    };
    for onboarding in std::iter::once(&alone).chain(&together) {
        let stored = repo::find_onboarding(db, onboarding.onboarding_id)
            .await
            .unwrap()
            .expect("stored");
        assert_eq!(stored, expected(onboarding));
    }
    let queued: Vec<(String, Envelope)> = outbox_rows(db)
        .await
        .into_iter()
        .filter(|(_, row)| commands.iter().any(|c| c.id == row.id))
        .collect();
    let expected: Vec<(String, Envelope)> = commands
        .iter()
        .map(|c| (CreatePartner::TOPIC.to_owned(), c.clone()))
        .collect();
    assert_eq!(queued, expected);
}

/// A group whose outbox rows cannot be written (the same command twice) leaves none of its
/// onboardings behind either, and the next group is written: the failed query's transaction
/// was ended, not left open on the writer.
async fn a_failed_group_leaves_nothing_and_the_next_one_is_written(db: &Db) {
    let before = onboarding_count(db).await;
    let group = [onboarding(kernel::new_id()), onboarding(kernel::new_id())];
    let refs: Vec<&Onboarding> = group.iter().collect();
    let command = command_of(&group[0]);
    let failed = repo::insert_started(
        db,
        &refs,
        [
            (CreatePartner::TOPIC, &command),
            (CreatePartner::TOPIC, &command),
        ],
    )
    .await;
    assert!(
        matches!(failed, Err(storage::StorageError::Sqlx(ref error)) if storage::is_unique_violation(error)),
        "{failed:?}"
    );
    assert_eq!(onboarding_count(db).await, before);
    assert!(outbox_rows(db)
        .await
        .iter()
        .all(|(_, row)| row.id != command.id));

    let next = onboarding(kernel::new_id());
    let next_command = command_of(&next);
    repo::insert_started(db, &[&next], [(CreatePartner::TOPIC, &next_command)])
        .await
        .unwrap();
    assert_eq!(onboarding_count(db).await, before + 1);
    assert!(repo::find_onboarding(db, next.onboarding_id)
        .await
        .unwrap()
        .is_some());
    // Written outside any transaction of the writer's: a later `Tx` begins and commits.
    insert(db, &onboarding(kernel::new_id())).await.unwrap();
    assert_eq!(onboarding_count(db).await, before + 2);
}

async fn run_suite(db: &Db) {
    an_onboarding_round_trips(db).await;
    onboardings_written_together_read_back_as_one_alone(db).await;
    a_failed_group_leaves_nothing_and_the_next_one_is_written(db).await;
    an_unknown_onboarding_is_none(db).await;
    one_onboarding_per_saga(db).await;
    the_row_and_its_command_roll_back_together(db).await;
}

#[tokio::test]
async fn the_repository_on_sqlite() {
    let test_db = TestDb::sqlite(SCHEMA).await;
    run_suite(&test_db.db).await;
    test_db.cleanup().await;
}

#[tokio::test]
async fn the_repository_on_postgres() {
    let test_db = TestDb::postgres(SCHEMA).await;
    run_suite(&test_db.db).await;
    test_db.cleanup().await;
}

/// The HTTP write end to end on one backend: 202, one row, one outbox command, an idempotent
/// replay and a reused key refused.
async fn the_write_over_http(test_db: TestDb) {
    let app = spawn_app_on(test_db, unused_upstreams(), false).await;
    let body = json!({"nombre": "Ana", "email": "ana@example.com", "terminos": {"monto": 5}});
    let first = app.post_partner(&body, Some("k")).await;
    assert_eq!(first.status(), 202);
    let first: Value = first.json().await.unwrap();
    let again = app.post_partner(&body, Some("k")).await;
    assert_eq!(again.status(), 202);
    assert_eq!(again.json::<Value>().await.unwrap(), first);
    let other = json!({"nombre": "Ana", "email": "otra@example.com"});
    expect_problem(
        app.post_partner(&other, Some("k")).await,
        422,
        "IDEMPOTENCY_KEY_REUTILIZADA",
    )
    .await;

    assert_eq!(onboarding_count(app.db()).await, 1);
    let rows = outbox_rows(app.db()).await;
    assert_eq!(rows.len(), 1);
    assert_eq!(
        rows[0].1.sagaid.map(|id| id.to_string()).as_deref(),
        first["saga_id"].as_str()
    );
    let onboarding_id: Uuid = first["onboarding_id"].as_str().unwrap().parse().unwrap();
    assert!(repo::find_onboarding(app.db(), onboarding_id)
        .await
        .unwrap()
        .is_some());
    app.cleanup().await;
}

/// Concurrent writes without a key share commits: each gets its own onboarding and exactly
/// one command, carrying its saga.
async fn concurrent_writes_over_http(test_db: TestDb) {
    let app = std::sync::Arc::new(spawn_app_on(test_db, unused_upstreams(), false).await);
    let mut clients = tokio::task::JoinSet::new();
    for n in 0..40 {
        let app = app.clone();
        clients.spawn(async move {
            app.start_onboarding(&json!({"nombre": "Ana", "email": format!("ana{n}@example.com")}))
                .await
        });
    }
    let mut started = Vec::new();
    while let Some(body) = clients.join_next().await {
        started.push(body.unwrap());
    }
    assert_eq!(onboarding_count(app.db()).await, 40);
    let mut commanded: Vec<String> = outbox_rows(app.db())
        .await
        .iter()
        .map(|(topic, envelope)| {
            assert_eq!(topic, CreatePartner::TOPIC);
            envelope.sagaid.expect("saga id").to_string()
        })
        .collect();
    let mut sagas: Vec<String> = started
        .iter()
        .map(|body| body["saga_id"].as_str().unwrap().to_owned())
        .collect();
    commanded.sort();
    sagas.sort();
    assert_eq!(commanded, sagas);
    for body in &started {
        let onboarding_id: Uuid = body["onboarding_id"].as_str().unwrap().parse().unwrap();
        assert!(repo::find_onboarding(app.db(), onboarding_id)
            .await
            .unwrap()
            .is_some());
    }
    std::sync::Arc::into_inner(app)
        .expect("the clients are done")
        .cleanup()
        .await;
}

#[tokio::test]
async fn concurrent_writes_over_http_on_sqlite() {
    concurrent_writes_over_http(TestDb::sqlite(SCHEMA).await).await;
}

#[tokio::test]
async fn concurrent_writes_over_http_on_postgres() {
    concurrent_writes_over_http(TestDb::postgres(SCHEMA).await).await;
}

#[tokio::test]
async fn the_write_over_http_on_sqlite() {
    the_write_over_http(TestDb::sqlite(SCHEMA).await).await;
}

#[tokio::test]
async fn the_write_over_http_on_postgres() {
    the_write_over_http(TestDb::postgres(SCHEMA).await).await;
}
