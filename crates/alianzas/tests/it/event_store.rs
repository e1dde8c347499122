//! The event store, snapshots, read model, templates and outbox, written once and run against
//! SQLite and PostgreSQL: expected-version appends and conflicts, a snapshot every N events,
//! load == replay, the upcast of a stored v1 row, time travel, list filters and pagination.

use std::sync::Arc;

use alianzas::application::{Accion, AppError, Punto, Service, Written};
use alianzas::domain::{
    plantillas_por_defecto, CambiosContrato, Condiciones, Contrato, ContratoEvent, EstadoContrato,
    Moneda, Monto, NuevoContrato, TipoContrato, TipoPartner,
};
use alianzas::storage::{self as repo, ContratoFilter, RepoError};
use chrono::NaiveDate;
use storage::Db;
use uuid::Uuid;

use testkit::db::TestDb;
use testkit::{eventually, DEADLINE};

use crate::helpers::SCHEMA;

fn nuevo(partner_id: Uuid, tipo: TipoContrato) -> NuevoContrato {
    NuevoContrato {
        partner_id,
        onboarding_id: None,
        tipo,
        monto: Monto::parse("25.00").unwrap(),
        moneda: Moneda::parse("USD").unwrap(),
        condiciones: Condiciones::parse(Some("por venta")).unwrap(),
        fecha_inicio: NaiveDate::from_ymd_opt(2025, 1, 1).unwrap(),
        fecha_fin: NaiveDate::from_ymd_opt(2025, 12, 31),
    }
}

fn service(db: &Db, snapshot_every: u32) -> Service {
    Service::new(
        db.clone(),
        Arc::new(tokio::sync::Notify::new()),
        snapshot_every,
    )
}

/// Creates a contract by hand (no idempotency key).
async fn crear(service: &Service, datos: NuevoContrato) -> Contrato {
    let render = |_: &Contrato| storage::idempotency::StoredResponse {
        request_hash: String::new(),
        status: 201,
        location: None,
        body: String::new(),
    };
    match service.crear(datos, None, &render).await.unwrap() {
        Written::Done(contrato) => contrato,
        Written::Replayed(_) => panic!("no key, no replay"),
    }
}

/// Commits `events` on top of `contrato` in a transaction of its own.
async fn commit(
    db: &Db,
    contrato: &Contrato,
    events: &[ContratoEvent],
    every: u32,
) -> Result<Contrato, RepoError> {
    let mut tx = db.begin().await.unwrap();
    let after = repo::commit_events(&mut tx, contrato, events, kernel::now(), every).await?;
    tx.commit().await.unwrap();
    Ok(after)
}

async fn load(db: &Db, id: Uuid) -> Contrato {
    let mut tx = db.begin().await.unwrap();
    let contrato = repo::load(&mut tx, id).await.unwrap();
    drop(tx);
    contrato
}

/// A contract taken through `n` extra events (update / suspend / reactivate cycles).
async fn busy_contract(db: &Db, extra: usize, every: u32) -> Contrato {
    let mut contrato = Contrato::new(kernel::new_id());
    let created = contrato
        .crear(nuevo(kernel::new_id(), TipoContrato::Cpa))
        .unwrap();
    contrato = commit(db, &contrato, &created, every).await.unwrap();
    let approved = contrato.aprobar().unwrap();
    contrato = commit(db, &contrato, &approved, every).await.unwrap();
    for step in 0..extra.saturating_sub(1) {
        let events = match step % 3 {
            0 => contrato.suspender(None).unwrap(),
            1 => contrato.reactivar(None).unwrap(),
            _ => contrato
                .actualizar(CambiosContrato {
                    monto: Some(Monto::parse(&format!("{}.25", step)).unwrap()),
                    ..CambiosContrato::default()
                })
                .unwrap(),
        };
        contrato = commit(db, &contrato, &events, every).await.unwrap();
    }
    contrato
}

async fn an_append_at_a_stale_version_is_a_conflict(db: &Db) {
    let contrato = busy_contract(db, 1, 50).await;
    assert_eq!(contrato.version(), 2);
    let stale = Contrato::from_snapshot(contrato.id(), 1, contrato.state().cloned());
    let events = contrato.suspender(None).unwrap();
    let error = commit(db, &stale, &events, 50).await.unwrap_err();
    assert!(
        matches!(error, RepoError::Conflict { expected: 1 }),
        "{error}"
    );
    // The refused write left the read model as it was, too.
    let projected = repo::find(db, contrato.id()).await.unwrap().unwrap();
    assert_eq!(projected.version(), 2);
    assert_eq!(projected.estado(), contrato.estado());
    let mut tx = db.begin().await.unwrap();
    assert!(matches!(
        repo::append(&mut tx, contrato.id(), 5, &events, kernel::now()).await,
        Err(RepoError::Conflict { expected: 5 })
    ));
    drop(tx);
    let after = commit(db, &contrato, &events, 50).await.unwrap();
    assert_eq!(after.version(), 3);
    assert_eq!(load(db, contrato.id()).await, after);
}

async fn a_snapshot_is_taken_every_n_events_and_loading_equals_replay(db: &Db) {
    let contrato = busy_contract(db, 8, 3).await;
    assert_eq!(contrato.version(), 9);
    assert_eq!(
        repo::snapshot_versions(db, contrato.id()).await.unwrap(),
        vec![3, 6, 9]
    );
    let stream = repo::read_stream(db, contrato.id()).await.unwrap();
    let replayed = Contrato::replay(
        contrato.id(),
        stream.iter().map(|e| (&e.event, e.ocurrido_en)),
    );
    assert_eq!(load(db, contrato.id()).await, replayed);
    assert_eq!(
        repo::load_latest(db, contrato.id()).await.unwrap(),
        replayed
    );
    assert_eq!(replayed, contrato);
    // The read model holds the same state.
    assert_eq!(
        repo::find(db, contrato.id()).await.unwrap().unwrap(),
        contrato
    );

    // A batch that crosses a multiple snapshots at its end.
    let events = vec![
        ContratoEvent::Suspendido { motivo: None },
        ContratoEvent::Reactivado { motivo: None },
        ContratoEvent::Suspendido { motivo: None },
    ];
    let after = commit(db, &contrato, &events, 4).await.unwrap();
    assert_eq!(after.version(), 12);
    assert_eq!(
        repo::snapshot_versions(db, contrato.id()).await.unwrap(),
        vec![3, 6, 9, 12]
    );
    assert_eq!(load(db, contrato.id()).await, after);
}

async fn a_stored_v1_contrato_creado_is_upcast_on_read(db: &Db) {
    let id = kernel::new_id();
    let partner_id = kernel::new_id();
    let data = serde_json::json!({
        "partner_id": partner_id, "onboarding_id": null, "tipo": "CPL", "monto": "7.50",
        "moneda": "EUR", "fecha_inicio": "2024-03-01", "fecha_fin": null
    })
    .to_string();
    let mut tx = db.begin().await.unwrap();
    storage::with_tx!(&mut tx, conn => sqlx::query(
        "INSERT INTO contrato_evento (contrato_id, version, tipo, schema_version, data, ocurrido_en)
         VALUES ($1, 1, 'ContratoCreado', 1, $2, $3)",
    )
    .bind(id)
    .bind(&data)
    .bind(kernel::now())
    .execute(conn)
    .await
    .map(|r| r.rows_affected()))
    .unwrap();
    tx.commit().await.unwrap();

    let contrato = load(db, id).await;
    let state = contrato.state().expect("created");
    assert_eq!(state.condiciones, None);
    assert_eq!(state.tipo, TipoContrato::Cpl);
    assert_eq!(state.monto.amount().to_string(), "7.50");
    let stream = repo::read_stream(db, id).await.unwrap();
    assert_eq!(stream[0].schema_version, 1);
    assert!(
        stream[0].data.get("condiciones").is_none(),
        "stored as written"
    );

    // The upcast stream takes new events at the current schema version.
    let events = contrato.aprobar().unwrap();
    commit(db, &contrato, &events, 50).await.unwrap();
    let stream = repo::read_stream(db, id).await.unwrap();
    assert_eq!(stream.len(), 2);
    assert_eq!(stream[1].tipo, "ContratoAprobado");
}

async fn every_write_commits_its_outbox_rows_with_the_read_model(db: &Db) {
    let service = service(db, 50);
    let before = storage::outbox::backlog(db).await.unwrap();
    let contrato = crear(&service, nuevo(kernel::new_id(), TipoContrato::Fijo)).await;
    assert_eq!(storage::outbox::backlog(db).await.unwrap(), before + 1);
    assert_eq!(
        repo::find(db, contrato.id())
            .await
            .unwrap()
            .unwrap()
            .estado(),
        Some(EstadoContrato::Pendiente)
    );
    // Refused: nothing written, nothing published.
    let error = service
        .transicion(contrato.id(), Accion::Suspender, None)
        .await
        .unwrap_err();
    assert!(matches!(error, AppError::Domain(_)), "{error}");
    assert_eq!(storage::outbox::backlog(db).await.unwrap(), before + 1);
    // A change of terms is stored but not published; a stale version is a conflict.
    let cambios = CambiosContrato {
        monto: Some(Monto::parse("99").unwrap()),
        ..CambiosContrato::default()
    };
    let updated = service
        .actualizar(contrato.id(), 1, cambios.clone())
        .await
        .unwrap();
    assert_eq!(updated.version(), 2);
    assert!(matches!(
        service.actualizar(contrato.id(), 1, cambios).await,
        Err(AppError::VersionConflict { expected: 1 })
    ));
    assert_eq!(storage::outbox::backlog(db).await.unwrap(), before + 1);
    assert_eq!(
        repo::find(db, contrato.id())
            .await
            .unwrap()
            .unwrap()
            .version(),
        2
    );
    assert!(matches!(
        service.obtener(kernel::new_id()).await,
        Err(AppError::ContratoNotFound)
    ));
}

async fn time_travel_replays_to_a_version_or_an_instant(db: &Db) {
    let service = service(db, 2);
    let contrato = crear(&service, nuevo(kernel::new_id(), TipoContrato::Cpa)).await;
    let id = contrato.id();
    let mut tx = db.begin().await.unwrap();
    let loaded = repo::load(&mut tx, id).await.unwrap();
    let approved = loaded.aprobar().unwrap();
    repo::commit_events(&mut tx, &loaded, &approved, kernel::now(), 2)
        .await
        .unwrap();
    tx.commit().await.unwrap();
    let between = kernel::now();
    let suspended = service
        .transicion(id, Accion::Suspender, None)
        .await
        .unwrap();
    assert_eq!(suspended.version(), 3);

    let v1 = service.obtener_en(id, Punto::Version(1)).await.unwrap();
    assert_eq!(v1.estado(), Some(EstadoContrato::Pendiente));
    assert_eq!(v1.version(), 1);
    let at = service.obtener_en(id, Punto::At(between)).await.unwrap();
    assert_eq!(at.estado(), Some(EstadoContrato::Activo));
    assert_eq!(at.version(), 2);
    let now = service.obtener_en(id, Punto::Version(3)).await.unwrap();
    assert_eq!(now, service.obtener(id).await.unwrap());
    assert!(matches!(
        service.obtener_en(id, Punto::Version(4)).await,
        Err(AppError::VersionBeyondStream(4))
    ));
    let before_creation = contrato.state().unwrap().fecha_creacion - chrono::Duration::seconds(1);
    assert!(matches!(
        service.obtener_en(id, Punto::At(before_creation)).await,
        Err(AppError::ContratoNotFound)
    ));
}

async fn the_read_model_lists_with_filters_and_pages(db: &Db) {
    let service = service(db, 50);
    let partner = kernel::new_id();
    let mut ids = Vec::new();
    for tipo in [TipoContrato::Cpa, TipoContrato::Cpc, TipoContrato::Cpa] {
        ids.push(crear(&service, nuevo(partner, tipo)).await.id());
    }
    crear(&service, nuevo(kernel::new_id(), TipoContrato::Cpa)).await;
    let mine = ContratoFilter {
        partner_id: Some(partner),
        ..ContratoFilter::default()
    };
    let (first, total) = repo::list(db, &mine, 2, None).await.unwrap();
    assert_eq!(total, 3);
    assert_eq!(first.len(), 3, "limit + 1 rows tell that more exist");
    let (rest, _) = repo::list(db, &mine, 2, Some(first[1].id())).await.unwrap();
    assert_eq!(
        rest.iter().map(Contrato::id).collect::<Vec<_>>(),
        vec![ids[2]]
    );
    let cpa = ContratoFilter {
        tipo: Some(TipoContrato::Cpa),
        ..mine.clone()
    };
    assert_eq!(repo::list(db, &cpa, 50, None).await.unwrap().1, 2);
    let activos = ContratoFilter {
        estado: Some(EstadoContrato::Activo),
        ..mine
    };
    assert_eq!(repo::list(db, &activos, 50, None).await.unwrap().1, 0);
}

async fn templates_are_seeded_once_and_kept_after_an_edit(db: &Db) {
    repo::seed_plantillas(db, &plantillas_por_defecto())
        .await
        .unwrap();
    let plantillas = repo::list_plantillas(db).await.unwrap();
    assert_eq!(plantillas, plantillas_por_defecto());
    let mut edited = plantillas[1].clone();
    edited.monto = Monto::parse("0.75").unwrap();
    edited.condiciones = None;
    let service = service(db, 50);
    assert!(!service.guardar_plantilla(&edited).await.unwrap());
    repo::seed_plantillas(db, &plantillas_por_defecto())
        .await
        .unwrap();
    assert_eq!(
        repo::find_plantilla(db, TipoPartner::Influencer)
            .await
            .unwrap(),
        Some(edited.clone())
    );
    // What creating a partner's contract reads: its link (none yet) and its kind's template,
    // the operator's edit included (no terms: NULL conditions).
    let partner = kernel::new_id();
    let mut tx = db.begin().await.unwrap();
    assert_eq!(
        repo::contrato_y_plantilla_in(&mut tx, partner, TipoPartner::Influencer)
            .await
            .unwrap(),
        (None, Some(edited))
    );
    let contrato = kernel::new_id();
    repo::link_partner(&mut tx, partner, contrato)
        .await
        .unwrap();
    let (existente, plantilla) =
        repo::contrato_y_plantilla_in(&mut tx, partner, TipoPartner::Afiliado)
            .await
            .unwrap();
    assert_eq!(existente, Some(contrato));
    assert_eq!(
        plantilla.map(|p| p.tipo_partner),
        Some(TipoPartner::Afiliado)
    );
}

async fn a_partner_is_linked_to_one_contract_only(db: &Db) {
    let partner = kernel::new_id();
    let mut tx = db.begin().await.unwrap();
    let first = kernel::new_id();
    repo::link_partner(&mut tx, partner, first).await.unwrap();
    tx.commit().await.unwrap();
    let mut tx = db.begin().await.unwrap();
    assert!(matches!(
        repo::link_partner(&mut tx, partner, kernel::new_id()).await,
        Err(RepoError::PartnerTaken)
    ));
    drop(tx);
    let mut tx = db.begin().await.unwrap();
    assert_eq!(
        repo::contrato_of_partner(&mut tx, partner).await.unwrap(),
        Some(first)
    );
}

async fn the_sweep_expires_live_contracts_past_their_end(db: &Db) {
    let service = service(db, 50);
    let contrato = crear(&service, nuevo(kernel::new_id(), TipoContrato::Cpa)).await;
    let hoy = NaiveDate::from_ymd_opt(2025, 12, 31).unwrap();
    assert_eq!(service.vencer_expirados(hoy).await.unwrap(), 0);
    let later = NaiveDate::from_ymd_opt(2026, 1, 1).unwrap();
    assert_eq!(service.vencer_expirados(later).await.unwrap(), 1);
    assert_eq!(
        service.obtener(contrato.id()).await.unwrap().estado(),
        Some(EstadoContrato::Vencido)
    );
    assert_eq!(service.vencer_expirados(later).await.unwrap(), 0);
}

async fn concurrent_writers_at_the_same_version_get_one_success_and_one_conflict(db: &Db) {
    let service = service(db, 50);
    let contrato = crear(&service, nuevo(kernel::new_id(), TipoContrato::Cpa)).await;
    let cambios = |monto: &str| CambiosContrato {
        monto: Some(Monto::parse(monto).unwrap()),
        ..CambiosContrato::default()
    };
    let (first, second) = tokio::join!(
        service.actualizar(contrato.id(), 1, cambios("1")),
        service.actualizar(contrato.id(), 1, cambios("2")),
    );
    let conflicts = [&first, &second]
        .iter()
        .filter(|r| matches!(r, Err(AppError::VersionConflict { expected: 1 })))
        .count();
    assert_eq!(conflicts, 1, "{first:?} {second:?}");
    assert_eq!(repo::read_stream(db, contrato.id()).await.unwrap().len(), 2);
    // Without an expected version (lifecycle commands) both writers succeed in turn.
    let activo = load(db, contrato.id()).await;
    commit(db, &activo, &activo.aprobar().unwrap(), 50)
        .await
        .unwrap();
    let (suspended, terminated) = tokio::join!(
        service.transicion(contrato.id(), Accion::Suspender, None),
        service.transicion(contrato.id(), Accion::Terminar, None),
    );
    assert!(suspended.is_ok() || terminated.is_ok());
    assert_eq!(
        service.obtener(contrato.id()).await.unwrap(),
        load(db, contrato.id()).await
    );
}

/// Two PostgreSQL transactions that both pass the version check: the stream's primary key
/// stops the second one.
#[tokio::test]
async fn postgres_primary_key_stops_a_writer_that_passed_the_version_check() {
    let test_db = TestDb::postgres(SCHEMA).await;
    let db = test_db.db.clone();
    let contrato = busy_contract(&db, 1, 50).await;
    let events = contrato.suspender(None).unwrap();
    let mut first = db.begin().await.unwrap();
    repo::append(&mut first, contrato.id(), 2, &events, kernel::now())
        .await
        .unwrap();
    let second = {
        let db = db.clone();
        let id = contrato.id();
        let events = events.clone();
        tokio::spawn(async move {
            let mut tx = db.begin().await.unwrap();
            repo::append(&mut tx, id, 2, &events, kernel::now()).await
        })
    };
    // The second writer reads version 2 (the first is uncommitted) and blocks on the key.
    eventually(DEADLINE, "the second writer to wait on the key", || async {
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
    first.commit().await.unwrap();
    let outcome = second.await.unwrap();
    assert!(
        matches!(outcome, Err(RepoError::Conflict { expected: 2 })),
        "{outcome:?}"
    );
    test_db.cleanup().await;
}

/// Commits `writes` with `commit_many` in a transaction of their own.
async fn commit_all(db: &Db, writes: &[repo::Write<'_>]) -> Vec<Contrato> {
    let mut tx = db.begin().await.unwrap();
    let afters = repo::commit_many(&mut tx, writes, 50).await.unwrap();
    tx.commit().await.unwrap();
    afters
}

/// Several contracts' writes in one `commit_many`, one of them linking its partner, and two
/// writes of one contract in a row: every stream ends at its writes' versions without a gap,
/// the read model at each contract's last state.
async fn a_batch_of_writes_lands_whole_and_a_contracts_second_write_follows_its_first(db: &Db) {
    let at = kernel::now();
    let (a, b) = (
        Contrato::new(kernel::new_id()),
        Contrato::new(kernel::new_id()),
    );
    let partner_a = kernel::new_id();
    let created_a = a.crear(nuevo(partner_a, TipoContrato::Cpa)).unwrap();
    let created_b = b.crear(nuevo(kernel::new_id(), TipoContrato::Cpa)).unwrap();
    let write = |contrato, events, partner| repo::Write {
        contrato,
        events,
        at,
        partner,
    };
    let afters = commit_all(
        db,
        &[
            write(&a, &created_a, Some(partner_a)),
            write(&b, &created_b, None),
        ],
    )
    .await;
    let (a, b) = (afters[0].clone(), afters[1].clone());
    assert_eq!(load(db, a.id()).await, a);
    assert_eq!(load(db, b.id()).await, b);
    // The read model's rows hold every field the contracts have.
    assert_eq!(repo::find(db, a.id()).await.unwrap().as_ref(), Some(&a));
    assert_eq!(repo::find(db, b.id()).await.unwrap().as_ref(), Some(&b));
    let mut tx = db.begin().await.unwrap();
    let linked = repo::contrato_of_partner(&mut tx, partner_a).await.unwrap();
    drop(tx);
    assert_eq!(linked, Some(a.id()));

    let approved = a.aprobar().unwrap();
    let mut approved_a = a.clone();
    for event in &approved {
        approved_a.apply(event, at);
    }
    let suspended = approved_a.suspender(None).unwrap();
    let afters = commit_all(
        db,
        &[
            write(&a, &approved, None),
            write(&approved_a, &suspended, None),
        ],
    )
    .await;
    let last = afters[1].clone();
    assert_eq!(
        last.version(),
        a.version() + (approved.len() + suspended.len()) as i64
    );
    assert_eq!(load(db, a.id()).await, last);
    let projected = repo::find(db, a.id()).await.unwrap().unwrap();
    assert_eq!(projected.version(), last.version());
    assert_eq!(projected.estado(), last.estado());
}

testkit::on_both_backends!(
    crate::helpers::SCHEMA;
    an_append_at_a_stale_version_is_a_conflict,
    a_snapshot_is_taken_every_n_events_and_loading_equals_replay,
    a_stored_v1_contrato_creado_is_upcast_on_read,
    every_write_commits_its_outbox_rows_with_the_read_model,
    time_travel_replays_to_a_version_or_an_instant,
    the_read_model_lists_with_filters_and_pages,
    templates_are_seeded_once_and_kept_after_an_edit,
    a_partner_is_linked_to_one_contract_only,
    the_sweep_expires_live_contracts_past_their_end,
    concurrent_writers_at_the_same_version_get_one_success_and_one_conflict,
    a_batch_of_writes_lands_whole_and_a_contracts_second_write_follows_its_first,
);
