//! The consumers' handler under batches: a batch is applied in one transaction in which each
//! message sees the writes of the ones before it (the partner link, the appended events and
//! the snapshots), duplicates change nothing, and an early message is retried without holding
//! back the rest of its batch. A batch of announcements reads what it needs up front and
//! writes its contracts together, yet each partner still gets one contract.

use std::sync::Arc;

use alianzas::application::{Service, SERVICE};
use alianzas::consumers::AlianzasHandler;
use alianzas::domain::{plantillas_por_defecto, EstadoContrato, Monto, TipoPartner};
use alianzas::storage::{self as repo, ContratoFilter};
use contracts::compliance::{ContratoAprobado, ContratoRechazado};
use contracts::partners::PartnerCreado;
use contracts::sagas::RevisionRechazada;
use kernel::{Amount, Envelope, EnvelopeContext, HandlerError, IntegrationEvent, MessageHandler};
use storage::{Db, TxCounts, TxHandler};
use tokio::sync::Notify;
use uuid::Uuid;

use testkit::db::TestDb;
use testkit::{eventually, DEADLINE};

use crate::helpers::SCHEMA;

/// A snapshot after every event, so that loading inside a batch goes through the snapshots
/// the earlier messages just wrote.
const SNAPSHOT_EVERY: u32 = 1;

fn service(db: &Db) -> Arc<Service> {
    Arc::new(Service::new(
        db.clone(),
        Arc::new(Notify::new()),
        SNAPSHOT_EVERY,
    ))
}

fn envelope_of<E: IntegrationEvent>(event: &E) -> Envelope {
    Envelope::wrap("test", event, EnvelopeContext::default())
}

fn partner_creado(partner_id: Uuid) -> PartnerCreado {
    PartnerCreado {
        partner_id,
        nombre: "Ana".into(),
        tipo: "AFILIADO".into(),
        email: "ana@example.com".into(),
        onboarding_id: None,
        terminos: None,
    }
}

fn rechazado(contrato_id: Uuid, partner_id: Uuid) -> ContratoRechazado {
    ContratoRechazado {
        contrato_id,
        partner_id,
        onboarding_id: None,
        causa_rechazo: "monto excede el límite".into(),
        validacion_fallida: "MONTO_INVALIDO".into(),
    }
}

fn revision_rechazada(contrato_id: Uuid, partner_id: Uuid) -> RevisionRechazada {
    RevisionRechazada {
        saga_id: Uuid::now_v7(),
        contrato_id,
        partner_id,
        comentarios: Some("no cumple".into()),
    }
}

fn aprobado(contrato_id: Uuid) -> ContratoAprobado {
    ContratoAprobado {
        contrato_id,
        partner_id: Uuid::now_v7(),
        onboarding_id: None,
        validaciones_pasadas: vec![],
    }
}

/// The contracts of `partner_id` in the read model.
async fn contratos_of(db: &Db, partner_id: Uuid) -> Vec<(Uuid, Option<EstadoContrato>, i64)> {
    let filter = ContratoFilter {
        partner_id: Some(partner_id),
        ..ContratoFilter::default()
    };
    let (contratos, _) = repo::list(db, &filter, 10, None).await.unwrap();
    contratos
        .iter()
        .map(|c| (c.id(), c.estado(), c.version()))
        .collect()
}

async fn handled(db: &Db, envelope: &Envelope) -> bool {
    storage::inbox::contains(db, SERVICE, envelope.id)
        .await
        .unwrap()
}

/// Creates `partner_id`'s contract through the handler; returns its id.
async fn onboarded(db: &Db, handler: &dyn MessageHandler, partner_id: Uuid) -> Uuid {
    handler
        .handle(&envelope_of(&partner_creado(partner_id)))
        .await
        .unwrap();
    contratos_of(db, partner_id).await[0].0
}

async fn a_batch_applies_in_order_and_its_duplicates_change_nothing(db: &Db) {
    let handler = AlianzasHandler::transactional(service(db), Arc::new(Notify::new()));
    let known = Uuid::now_v7();
    let contrato_id = onboarded(db, &handler, known).await;
    let nuevo = Uuid::now_v7();
    let created = envelope_of(&partner_creado(nuevo));
    let resent = envelope_of(&partner_creado(nuevo));
    let review = envelope_of(&rechazado(contrato_id, known));
    let rejected = envelope_of(&revision_rechazada(contrato_id, known));
    let mut foreign = envelope_of(&partner_creado(Uuid::now_v7()));
    foreign.event_type = "OtroEvento".into();
    let backlog = storage::outbox::backlog(db).await.unwrap();

    let batch = [
        &created, &created, &resent, &review, &rejected, &review, &foreign,
    ];
    let results = handler.handle_batch(&batch).await;
    assert!(results.iter().all(Result::is_ok), "{results:?}");

    // One contract for the new partner although it was announced twice.
    let nuevos = contratos_of(db, nuevo).await;
    assert_eq!(nuevos.len(), 1, "{nuevos:?}");
    assert_eq!(nuevos[0].1, Some(EstadoContrato::Pendiente));
    // The rejection built on the review the message before it recorded.
    assert_eq!(
        contratos_of(db, known).await,
        vec![(contrato_id, Some(EstadoContrato::Rechazado), 3)]
    );
    assert_eq!(
        repo::snapshot_versions(db, contrato_id).await.unwrap(),
        vec![1, 2, 3]
    );
    for envelope in [&created, &resent, &review, &rejected] {
        assert!(handled(db, envelope).await, "{}", envelope.event_type);
    }
    // ContratoCreado, then two ContratoEstadoCambiado; nothing for the copies.
    assert_eq!(storage::outbox::backlog(db).await.unwrap(), backlog + 3);
}

async fn an_early_message_is_retried_without_holding_back_its_batch(db: &Db) {
    let handler = AlianzasHandler::transactional(service(db), Arc::new(Notify::new()));
    let known = Uuid::now_v7();
    let contrato_id = onboarded(db, &handler, known).await;
    let nuevo = Uuid::now_v7();
    let created = envelope_of(&partner_creado(nuevo));
    // Still pendiente: a rejected review must wait for the review request.
    let too_soon = envelope_of(&revision_rechazada(contrato_id, known));
    let unknown = envelope_of(&aprobado(Uuid::now_v7()));
    let approval = envelope_of(&aprobado(contrato_id));

    let batch = [&too_soon, &created, &unknown, &approval, &created];
    let results = handler.handle_batch(&batch).await;
    // The early messages are handled alone once the rest of the batch has committed: by then
    // the approval has taken effect, so the rejection that came too soon is one overtaken
    // (acknowledged, changing nothing), while the unknown contract is still unknown.
    assert!(results[0].is_ok(), "{results:?}");
    assert!(results[1].is_ok(), "{results:?}");
    assert!(
        matches!(results[2], Err(HandlerError::Early(_))),
        "{results:?}"
    );
    assert!(results[3].is_ok() && results[4].is_ok(), "{results:?}");

    assert_eq!(contratos_of(db, nuevo).await.len(), 1);
    assert_eq!(
        contratos_of(db, known).await,
        vec![(contrato_id, Some(EstadoContrato::Activo), 2)]
    );
    assert!(handled(db, &created).await && handled(db, &approval).await);
    assert!(
        handled(db, &too_soon).await,
        "the overtaken rejection is handled, so its redelivery is a no-op"
    );
    assert!(
        !handled(db, &unknown).await,
        "an early event is not marked handled"
    );
}

/// The messages of one transaction, one by one: each sees what the previous one wrote, so none
/// is early, and nothing is visible outside before the commit.
async fn messages_in_one_transaction_see_each_others_writes(db: &Db) {
    let service = service(db);
    let handler = AlianzasHandler::new(service.clone());
    let partner_id = Uuid::now_v7();
    let created = envelope_of(&partner_creado(partner_id));
    let mut tx = db.begin().await.unwrap();
    handler.apply(&mut tx, &created).await.unwrap();
    let contrato_id = repo::contrato_of_partner(&mut tx, partner_id)
        .await
        .unwrap()
        .expect("linked in the transaction");
    let steps = [
        envelope_of(&partner_creado(partner_id)),
        envelope_of(&rechazado(contrato_id, partner_id)),
        envelope_of(&revision_rechazada(contrato_id, partner_id)),
        envelope_of(&aprobado(contrato_id)),
    ];
    for envelope in &steps {
        handler.apply(&mut tx, envelope).await.unwrap();
    }
    let loaded = repo::load(&mut tx, contrato_id).await.unwrap();
    assert_eq!(
        (loaded.estado(), loaded.version()),
        (Some(EstadoContrato::Rechazado), 3)
    );
    assert!(repo::find(db, contrato_id).await.unwrap().is_none());
    tx.commit().await.unwrap();
    let contrato = repo::find(db, contrato_id).await.unwrap().unwrap();
    assert_eq!(
        (contrato.estado(), contrato.version()),
        (Some(EstadoContrato::Rechazado), 3)
    );
    assert_eq!(contratos_of(db, partner_id).await.len(), 1);
}

/// A batch of announcements reads its partners' contracts and the templates once and writes
/// its contracts together at the end: each partner still gets exactly one contract, on the
/// stored template, with its stream, snapshot, read model and `ContratoCreado`, and the batch
/// is one committed transaction (not rolled back and redone one message at a time).
async fn a_batch_of_announcements_creates_each_contract_once(db: &Db) {
    let service = service(db);
    let mut afiliado = plantillas_por_defecto()
        .into_iter()
        .find(|p| p.tipo_partner == TipoPartner::Afiliado)
        .unwrap();
    afiliado.monto = Monto::new(Amount::from_cents(123_456)).unwrap();
    service.guardar_plantilla(&afiliado).await.unwrap();
    let handler = AlianzasHandler::transactional(service, Arc::new(Notify::new()));
    let known = Uuid::now_v7();
    let known_contrato = onboarded(db, &handler, known).await;
    let nuevos = [Uuid::now_v7(), Uuid::now_v7(), Uuid::now_v7()];
    let created = nuevos.map(|id| envelope_of(&partner_creado(id)));
    let twin = envelope_of(&partner_creado(nuevos[0]));
    let again = envelope_of(&partner_creado(known));
    let mut unusable = partner_creado(Uuid::now_v7());
    unusable.terminos = Some(serde_json::json!({"monto": -5}));
    let unusable_env = envelope_of(&unusable);
    let backlog = storage::outbox::backlog(db).await.unwrap();
    let counts = handler.counts();

    let batch = [
        &created[0],
        &twin,
        &created[1],
        &again,
        &unusable_env,
        &created[2],
    ];
    let results = handler.handle_batch(&batch).await;
    assert!(results.iter().all(Result::is_ok), "{results:?}");
    assert_eq!(
        handler.counts().since(counts),
        TxCounts::ONE_COMMIT,
        "one transaction for the whole batch"
    );

    for partner_id in nuevos {
        let contratos = contratos_of(db, partner_id).await;
        assert_eq!(contratos.len(), 1, "{contratos:?}");
        let (id, estado, version) = contratos[0];
        assert_eq!((estado, version), (Some(EstadoContrato::Pendiente), 1));
        let contrato = repo::find(db, id).await.unwrap().unwrap();
        assert_eq!(contrato.state().unwrap().monto, afiliado.monto);
        let stream = repo::read_stream(db, id).await.unwrap();
        assert_eq!(stream.len(), 1, "{stream:?}");
        assert_eq!(repo::snapshot_versions(db, id).await.unwrap(), vec![1]);
        let mut tx = db.begin().await.unwrap();
        assert_eq!(
            repo::contrato_of_partner(&mut tx, partner_id)
                .await
                .unwrap(),
            Some(id)
        );
        tx.rollback().await.unwrap();
    }
    assert_eq!(contratos_of(db, known).await[0].0, known_contrato);
    assert_eq!(contratos_of(db, known).await.len(), 1);
    assert!(contratos_of(db, unusable.partner_id).await.is_empty());
    for envelope in batch {
        assert!(handled(db, envelope).await, "{}", envelope.id);
    }
    // Three ContratoCreado and one ContratoCreadoFailed; nothing for the twin or the known.
    assert_eq!(storage::outbox::backlog(db).await.unwrap(), backlog + 4);
}

/// A contract a batch created waits to be written until the batch ends, unless anything else
/// touches the contract tables first: then it is written before, in the same transaction.
async fn a_waiting_contract_is_written_before_any_other_message_touches_the_contracts(db: &Db) {
    let service = service(db);
    let handler = AlianzasHandler::new(service.clone());
    let known = Uuid::now_v7();
    let known_contrato = onboarded(
        db,
        &AlianzasHandler::transactional(service, Arc::new(Notify::new())),
        known,
    )
    .await;
    let partner_id = Uuid::now_v7();
    let created = envelope_of(&partner_creado(partner_id));
    let approval = envelope_of(&aprobado(known_contrato));
    let mut tx = db.begin().await.unwrap();
    handler
        .prepare(&mut tx, &[&created, &approval])
        .await
        .unwrap();
    handler.apply(&mut tx, &created).await.unwrap();
    handler.apply(&mut tx, &approval).await.unwrap();
    let linked = repo::contrato_of_partner(&mut tx, partner_id)
        .await
        .unwrap()
        .expect("written before the approval was applied");
    handler.finish(&mut tx).await.unwrap();
    tx.commit().await.unwrap();
    assert_eq!(
        contratos_of(db, partner_id).await,
        vec![(linked, Some(EstadoContrato::Pendiente), 1)]
    );
    assert_eq!(
        contratos_of(db, known).await,
        vec![(known_contrato, Some(EstadoContrato::Activo), 2)]
    );
}

testkit::on_both_backends!(
    crate::helpers::SCHEMA;
    a_batch_of_announcements_creates_each_contract_once,
    a_waiting_contract_is_written_before_any_other_message_touches_the_contracts,
    a_batch_applies_in_order_and_its_duplicates_change_nothing,
    an_early_message_is_retried_without_holding_back_its_batch,
    messages_in_one_transaction_see_each_others_writes,
);

/// Two announcements of one partner (different event ids) in concurrent PostgreSQL
/// transactions: the second waits on the first's partner link, then finds that contract in
/// its own transaction instead of failing it.
#[tokio::test]
async fn a_twin_announcement_in_a_concurrent_transaction_finds_the_winners_contract() {
    let test_db = TestDb::postgres(SCHEMA).await;
    let db = test_db.db.clone();
    let handler = Arc::new(AlianzasHandler::new(service(&db)));
    let partner_id = Uuid::now_v7();
    let first = envelope_of(&partner_creado(partner_id));
    let second = envelope_of(&partner_creado(partner_id));
    let mut tx = db.begin().await.unwrap();
    handler.apply(&mut tx, &first).await.unwrap();
    let twin = {
        let (db, handler, second) = (db.clone(), handler.clone(), second.clone());
        tokio::spawn(async move {
            let mut tx = db.begin().await.unwrap();
            let outcome = handler.apply(&mut tx, &second).await;
            tx.commit().await.unwrap();
            outcome
        })
    };
    eventually(DEADLINE, "the twin to wait on the partner link", || async {
        let waiting: i64 = storage::with_db!(&db, conn => sqlx::query_scalar(
            "SELECT COUNT(*) FROM pg_stat_activity
             WHERE datname = current_database() AND wait_event_type = 'Lock'",
        )
        .fetch_one(conn)
        .await)
        .unwrap();
        (waiting > 0).then_some(())
    })
    .await;
    tx.commit().await.unwrap();
    twin.await.unwrap().unwrap();
    assert_eq!(contratos_of(&db, partner_id).await.len(), 1);
    assert!(handled(&db, &first).await && handled(&db, &second).await);
    assert_eq!(storage::outbox::backlog(&db).await.unwrap(), 1);
    test_db.cleanup().await;
}
