//! The list's `total` stays exact through every write: the counts table its enumerated
//! filters are answered from (migration 0003) is kept by triggers, so creates from the API and
//! from the saga's commands, type changes, KYC decisions, deletes, deactivations, writes
//! outside the repository and rolled-back transactions must all leave it equal to a real
//! `COUNT(*)` for every combination of `tipo`, `estado` and `estado_kyc`. On PostgreSQL writers
//! append their changes (migration 0004) and a fold moves them into the counts table, so the
//! totals must be exact both before and after a fold, and with folds running among writers.

use std::sync::Arc;
use std::time::Duration;

use contracts::partners::{CreatePartner, DesactivarPartner};
use integraciones::application::{Service, Written};
use integraciones::domain::{
    CambiosPartner, Email, EstadoKyc, EstadoPartner, Nombre, NuevaIntegracion, NuevoPartner,
    Partner, Telefono, TipoIntegracion, TipoPartner,
};
use integraciones::storage::{self as repo, PartnerFilter};
use integraciones::Integraciones;
use kernel::{Envelope, EnvelopeContext};
use serde_json::json;
use storage::idempotency::StoredResponse;
use storage::{with_reader, with_tx, Db};
use testkit::db::{Schema, TestDb};
use tokio::sync::Notify;
use uuid::Uuid;

use crate::helpers::SCHEMA;

/// How long a writer may take when it must not be waiting for another transaction.
const UNBLOCKED: Duration = Duration::from_secs(10);

fn datos(email: &str, tipo: TipoPartner) -> NuevoPartner {
    NuevoPartner {
        nombre: Nombre::parse("Conteo Tienda").unwrap(),
        email: Email::parse(email).unwrap(),
        telefono: Telefono::parse(Some("+57 300")).unwrap(),
        direccion: None,
        tipo,
    }
}

fn new_partner(email: &str, tipo: TipoPartner) -> Partner {
    Partner::register(kernel::new_id(), datos(email, tipo), None, kernel::now()).0
}

/// `render` for a create without an idempotency key, which never stores a response.
fn no_render(_: &Partner) -> StoredResponse {
    unreachable!("only an idempotent create renders its response")
}

async fn create(service: &Service, email: &str, tipo: TipoPartner) -> Uuid {
    match service
        .create_partner(datos(email, tipo), None, &no_render)
        .await
        .unwrap()
    {
        Written::Done(partner) => partner.id(),
        Written::Replayed(_) => panic!("{email} was replayed"),
    }
}

fn create_command(email: &str, tipo: &str) -> Envelope {
    let command = CreatePartner {
        onboarding_id: Uuid::now_v7(),
        saga_id: None,
        nombre: "Conteo Saga".into(),
        email: email.into(),
        telefono: None,
        direccion: None,
        tipo: Some(tipo.into()),
        terminos: None,
    };
    Envelope::wrap("bff", &command, EnvelopeContext::default())
}

fn desactivar_command(partner_id: Uuid) -> Envelope {
    let command = DesactivarPartner {
        partner_id,
        motivo: None,
    };
    Envelope::wrap("alianzas", &command, EnvelopeContext::default())
}

async fn id_of(db: &Db, email: &str) -> Uuid {
    let filter = PartnerFilter {
        q: Some(email.into()),
        ..PartnerFilter::default()
    };
    let (found, _) = repo::list(db, &filter, 1, None).await.unwrap();
    found[0].id()
}

/// `filter` as SQL conditions with literal values (the enumerations' names are plain words),
/// written independently of the repository's query.
fn conditions(filter: &PartnerFilter) -> String {
    let mut conditions = vec!["1 = 1".to_owned()];
    if let Some(estado) = filter.estado {
        conditions.push(format!("estado = '{}'", estado.as_str()));
    }
    if let Some(tipo) = filter.tipo {
        conditions.push(format!("tipo = '{}'", tipo.as_str()));
    }
    if let Some(estado_kyc) = filter.estado_kyc {
        conditions.push(format!("estado_kyc = '{}'", estado_kyc.as_str()));
    }
    if let Some(q) = &filter.q {
        conditions.push(format!(
            "(nombre_busqueda LIKE '%{0}%' OR email_normalizado LIKE '%{0}%')",
            q.to_lowercase()
        ));
    }
    conditions.join(" AND ")
}

async fn real_count(db: &Db, filter: &PartnerFilter) -> i64 {
    let sql = format!("SELECT COUNT(*) FROM partner WHERE {}", conditions(filter));
    with_reader!(db, conn => sqlx::query_scalar(&sql).fetch_one(conn).await).unwrap()
}

/// Every combination of the three enumerated filters, each value or "any".
fn every_enumerated_filter() -> Vec<PartnerFilter> {
    let mut filters = Vec::new();
    for estado in std::iter::once(None).chain(EstadoPartner::ALL.iter().copied().map(Some)) {
        for tipo in std::iter::once(None).chain(TipoPartner::ALL.iter().copied().map(Some)) {
            for estado_kyc in std::iter::once(None).chain(EstadoKyc::ALL.iter().copied().map(Some))
            {
                filters.push(PartnerFilter {
                    estado,
                    tipo,
                    estado_kyc,
                    q: None,
                });
            }
        }
    }
    filters
}

/// The list's total against a real `COUNT(*)` for all 125 enumerated filters and a few with a
/// search, both past a cursor and on a first page, with the appended count changes as they are
/// and once more after folding them; returns the unfiltered total.
async fn assert_totals_exact(db: &Db, after: &str) -> i64 {
    assert_totals_exact_now(db, after).await;
    repo::fold_counts(db).await.unwrap();
    assert_eq!(appended(db, None).await, 0, "the fold left changes behind");
    assert_totals_exact_now(db, &format!("{after}, folded")).await
}

/// The count changes appended and not folded yet, of one kind or of all.
async fn appended(db: &Db, tipo: Option<TipoPartner>) -> i64 {
    with_reader!(db, conn => sqlx::query_scalar(
        "SELECT COUNT(*) FROM partner_conteo_delta WHERE $1 IS NULL OR tipo = $1",
    )
    .bind(tipo.map(TipoPartner::as_str))
    .fetch_one(conn)
    .await)
    .unwrap()
}

async fn assert_totals_exact_now(db: &Db, after: &str) -> i64 {
    let mut filters = every_enumerated_filter();
    for q in ["conteo", "saga", "@c"] {
        filters.push(PartnerFilter {
            q: Some(q.into()),
            ..PartnerFilter::default()
        });
        filters.push(PartnerFilter {
            estado: Some(EstadoPartner::Activo),
            q: Some(q.into()),
            ..PartnerFilter::default()
        });
    }
    for filter in &filters {
        let real = real_count(db, filter).await;
        // After the smallest id, so the total is never taken from a first page that holds
        // every match.
        let (_, total) = repo::list(db, filter, 1, Some(Uuid::nil())).await.unwrap();
        assert_eq!(total, real, "{filter:?} after {after}");
        let (_, total) = repo::list(db, filter, 4, None).await.unwrap();
        assert_eq!(total, real, "{filter:?} on a first page after {after}");
    }
    real_count(db, &PartnerFilter::default()).await
}

fn by(
    estado: EstadoPartner,
    tipo: Option<TipoPartner>,
    estado_kyc: Option<EstadoKyc>,
) -> PartnerFilter {
    PartnerFilter {
        estado: Some(estado),
        tipo,
        estado_kyc,
        q: None,
    }
}

async fn total(db: &Db, filter: &PartnerFilter) -> i64 {
    repo::list(db, filter, 1, Some(Uuid::nil()))
        .await
        .unwrap()
        .1
}

async fn totals_stay_exact_through_every_write_path(db: &Db) {
    assert_eq!(assert_totals_exact(db, "migrating").await, 0);
    let service = Service::new(db.clone(), Arc::new(Notify::new()));
    let test_bus = testkit::bus::fresh_bus().await;
    let app = Integraciones::start(db.clone(), test_bus.bus.clone())
        .await
        .unwrap();

    // Creates from the API, and a refused duplicate that must count nothing.
    let mut ids = Vec::new();
    for (index, tipo) in TipoPartner::ALL.iter().chain(TipoPartner::ALL).enumerate() {
        ids.push(create(&service, &format!("api{index}@c.com"), *tipo).await);
    }
    assert!(service
        .create_partner(datos("API0@c.com", TipoPartner::Afiliado), None, &no_render)
        .await
        .is_err());
    assert_eq!(assert_totals_exact(db, "API creates").await, 8);

    // The saga's creates in one batch, with a redelivery and a clash that insert nothing.
    let first = create_command("saga1@c.com", "CORPORATIVO");
    let batch = [
        first.clone(),
        create_command("saga2@c.com", "EMBAJADOR"),
        first.clone(),
        create_command("SAGA2@c.com", "AFILIADO"),
        create_command("saga3@c.com", "CORPORATIVO"),
    ];
    let results = app
        .create_partner_handler()
        .handle_batch(&batch.iter().collect::<Vec<_>>())
        .await;
    assert!(results.iter().all(Result::is_ok), "{results:?}");
    assert_eq!(assert_totals_exact(db, "command creates").await, 11);
    assert_eq!(
        total(
            db,
            &by(EstadoPartner::Activo, Some(TipoPartner::Corporativo), None)
        )
        .await,
        4
    );

    // A type change moves a partner between counts; a name change or an integration leaves
    // them as they were.
    let cambio = |tipo, nombre: Option<&str>| CambiosPartner {
        nombre: nombre.map(|nombre| Nombre::parse(nombre).unwrap()),
        telefono: None,
        direccion: None,
        tipo,
    };
    service
        .update_partner(ids[0], cambio(Some(TipoPartner::Influencer), None))
        .await
        .unwrap();
    service
        .update_partner(ids[1], cambio(None, Some("Otro Nombre")))
        .await
        .unwrap();
    let integracion = NuevaIntegracion {
        tipo: TipoIntegracion::Api,
        nombre: Nombre::parse("tienda").unwrap(),
        descripcion: None,
        configuracion: json!({}).as_object().unwrap().clone(),
    };
    service
        .add_integracion(ids[2], integracion, None, &|_| {
            unreachable!("only an idempotent create renders its response")
        })
        .await
        .unwrap();
    assert_eq!(assert_totals_exact(db, "updates").await, 11);
    assert_eq!(
        total(
            db,
            &by(EstadoPartner::Activo, Some(TipoPartner::Influencer), None)
        )
        .await,
        3
    );

    // KYC decisions, one changed twice.
    for (index, estado) in [
        (0, EstadoKyc::Aprobado),
        (1, EstadoKyc::Aprobado),
        (2, EstadoKyc::Rechazado),
        (3, EstadoKyc::RequiereDocumentos),
        (3, EstadoKyc::Aprobado),
    ] {
        service
            .verify_kyc(ids[index], estado, None, None)
            .await
            .unwrap();
    }
    assert_eq!(assert_totals_exact(db, "KYC decisions").await, 11);
    assert_eq!(
        total(
            db,
            &by(EstadoPartner::Activo, None, Some(EstadoKyc::Aprobado))
        )
        .await,
        3
    );

    // Deletes (soft) and the saga's deactivations, one of them redelivered, one of a deleted
    // partner (which stays deleted), in one batch.
    service.delete_partner(ids[4]).await.unwrap();
    service.delete_partner(ids[5]).await.unwrap();
    let saga1 = id_of(db, "saga1@c.com").await;
    let deactivate = desactivar_command(saga1);
    let batch = [
        deactivate.clone(),
        desactivar_command(ids[0]),
        deactivate,
        desactivar_command(ids[5]),
    ];
    let results = app
        .desactivar_partner_handler()
        .handle_batch(&batch.iter().collect::<Vec<_>>())
        .await;
    assert!(results.iter().all(Result::is_ok), "{results:?}");
    assert_eq!(
        assert_totals_exact(db, "deletes and deactivations").await,
        11
    );
    assert_eq!(
        total(db, &by(EstadoPartner::Eliminado, None, None)).await,
        2
    );
    assert_eq!(total(db, &by(EstadoPartner::Inactivo, None, None)).await, 2);

    // Writes that bypass the repository are counted all the same.
    let mut tx = db.begin().await.unwrap();
    for sql in [
        "UPDATE partner SET estado = 'SUSPENDIDO', estado_kyc = 'RECHAZADO'
         WHERE email_normalizado IN ('api6@c.com', 'api7@c.com')",
        "DELETE FROM integracion",
        "DELETE FROM partner WHERE email_normalizado = 'saga3@c.com'",
    ] {
        with_tx!(&mut tx, conn => sqlx::query(sql).execute(conn).await.map(|r| r.rows_affected()))
            .unwrap();
    }
    tx.commit().await.unwrap();
    assert_eq!(assert_totals_exact(db, "direct writes").await, 10);
    assert_eq!(
        total(
            db,
            &by(EstadoPartner::Suspendido, None, Some(EstadoKyc::Rechazado))
        )
        .await,
        2
    );

    // A rolled-back transaction leaves the counts as they were.
    let mut tx = db.begin().await.unwrap();
    repo::insert_partner(
        &mut tx,
        &new_partner("rollback@c.com", TipoPartner::Afiliado),
    )
    .await
    .unwrap();
    with_tx!(&mut tx, conn => sqlx::query("UPDATE partner SET estado = 'INACTIVO'")
        .execute(conn)
        .await
        .map(|r| r.rows_affected()))
    .unwrap();
    drop(tx);
    assert_eq!(assert_totals_exact(db, "a rollback").await, 10);
    drop(app);
}

testkit::on_both_backends!(crate::helpers::SCHEMA; totals_stay_exact_through_every_write_path);

/// A transaction that has counted a new partner and not committed yet holds nothing another
/// writer of the same combination needs: each appends its own change.
#[tokio::test]
async fn an_uncommitted_count_does_not_hold_up_another_writer_on_postgres() {
    let test_db = TestDb::postgres(SCHEMA).await;
    let db = &test_db.db;
    let mut held = db.begin().await.unwrap();
    repo::insert_partner(
        &mut held,
        &new_partner("held@c.com", TipoPartner::Embajador),
    )
    .await
    .unwrap();
    let other = async {
        let mut tx = db.begin().await.unwrap();
        repo::insert_partner(&mut tx, &new_partner("other@c.com", TipoPartner::Embajador))
            .await
            .unwrap();
        tx.commit().await.unwrap();
    };
    tokio::time::timeout(UNBLOCKED, other)
        .await
        .expect("the second insert waited for the first transaction");
    held.commit().await.unwrap();
    assert_eq!(appended(db, Some(TipoPartner::Embajador)).await, 2);
    assert_eq!(assert_totals_exact(db, "two overlapping inserts").await, 2);
    test_db.cleanup().await;
}

/// Transactions that each write several partners, all at once, while folds run: none fails
/// (no deadlock on the count rows) and the totals come out exact.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_multi_partner_transactions_keep_totals_exact_on_postgres() {
    const WRITERS: usize = 8;
    const PER_WRITER: usize = 6;
    let test_db = TestDb::postgres(SCHEMA).await;
    let db = &test_db.db;
    let mut writers = tokio::task::JoinSet::new();
    for writer in 0..WRITERS {
        let db = db.clone();
        writers.spawn(async move {
            let mut tx = db.begin().await.unwrap();
            let mut ids = Vec::new();
            for index in 0..PER_WRITER {
                // Each writer walks the kinds in its own order, the worst case for lock order.
                let tipo = TipoPartner::ALL[(writer + index * (1 + writer % 3)) % 4];
                let partner = new_partner(&format!("w{writer}-{index}@c.com"), tipo);
                repo::insert_partner(&mut tx, &partner).await.unwrap();
                ids.push(partner.id());
            }
            with_tx!(&mut tx, conn => sqlx::query(
                "UPDATE partner SET estado = 'SUSPENDIDO' WHERE partner_id = $1",
            )
            .bind(ids[writer % PER_WRITER])
            .execute(conn)
            .await
            .map(|r| r.rows_affected()))
            .unwrap();
            tx.commit().await.unwrap();
        });
    }
    let folder = {
        let db = db.clone();
        tokio::spawn(async move {
            let mut folded = 0;
            loop {
                folded += repo::fold_counts(&db).await.unwrap();
                tokio::task::yield_now().await;
                if folded >= (WRITERS * (PER_WRITER + 2)) as u64 {
                    return;
                }
            }
        })
    };
    while let Some(joined) = writers.join_next().await {
        joined.expect("a writer failed");
    }
    tokio::time::timeout(UNBLOCKED, folder)
        .await
        .expect("the folds did not take every appended change")
        .expect("a fold failed");
    assert_eq!(
        assert_totals_exact(db, "concurrent writers").await,
        (WRITERS * PER_WRITER) as i64
    );
    assert_eq!(
        total(db, &by(EstadoPartner::Suspendido, None, None)).await,
        WRITERS as i64
    );
    test_db.cleanup().await;
}

/// The schema as it was before the counts table.
const BEFORE_CONTEO: Schema = Schema {
    component: "integraciones",
    migrations: integraciones::MIGRATIONS.split_at(2).0,
};

/// Migration 0003 on a database that already holds partners counts them, and the triggers
/// take over from there (and migration 0004's after them).
async fn the_migration_counts_existing_partners(test_db: TestDb) {
    let db = &test_db.db;
    let mut tx = db.begin().await.unwrap();
    for (index, tipo) in TipoPartner::ALL.iter().cycle().take(7).enumerate() {
        repo::insert_partner(&mut tx, &new_partner(&format!("old{index}@c.com"), *tipo))
            .await
            .unwrap();
    }
    with_tx!(&mut tx, conn => sqlx::query(
        "UPDATE partner SET estado = 'SUSPENDIDO' WHERE email_normalizado = 'old1@c.com'",
    )
    .execute(conn)
    .await
    .map(|r| r.rows_affected()))
    .unwrap();
    tx.commit().await.unwrap();

    db.migrate_with("integraciones", integraciones::MIGRATIONS)
        .await
        .unwrap();
    assert_eq!(assert_totals_exact(db, "the backfill").await, 7);
    let mut tx = db.begin().await.unwrap();
    repo::insert_partner(&mut tx, &new_partner("new@c.com", TipoPartner::Afiliado))
        .await
        .unwrap();
    tx.commit().await.unwrap();
    assert_eq!(
        assert_totals_exact(db, "a write after the backfill").await,
        8
    );
    test_db.cleanup().await;
}

#[tokio::test]
async fn the_migration_counts_existing_partners_on_sqlite() {
    the_migration_counts_existing_partners(TestDb::sqlite(BEFORE_CONTEO).await).await;
}

#[tokio::test]
async fn the_migration_counts_existing_partners_on_postgres() {
    the_migration_counts_existing_partners(TestDb::postgres(BEFORE_CONTEO).await).await;
}

/// Count rows the migrations did not create (a value added to an enumeration later) are
/// created by the first fold that needs them, and an emptied partner table counts zero,
/// changes not folded yet included.
#[tokio::test]
async fn missing_count_rows_are_created_and_a_truncate_counts_zero_on_postgres() {
    let test_db = TestDb::postgres(SCHEMA).await;
    let db = &test_db.db;
    let mut tx = db.begin().await.unwrap();
    with_tx!(&mut tx, conn => sqlx::query("DELETE FROM partner_conteo WHERE tipo = 'AFILIADO'")
        .execute(conn)
        .await
        .map(|r| r.rows_affected()))
    .unwrap();
    tx.commit().await.unwrap();
    for index in 0..3 {
        let mut tx = db.begin().await.unwrap();
        repo::insert_partner(
            &mut tx,
            &new_partner(&format!("again{index}@c.com"), TipoPartner::Afiliado),
        )
        .await
        .unwrap();
        tx.commit().await.unwrap();
    }
    assert_eq!(assert_totals_exact(db, "recreated count rows").await, 3);
    let rows: i64 = with_reader!(db, conn => sqlx::query_scalar(
        "SELECT COUNT(*) FROM partner_conteo
         WHERE tipo = 'AFILIADO' AND estado = 'ACTIVO' AND estado_kyc = 'PENDIENTE'",
    )
    .fetch_one(conn)
    .await)
    .unwrap();
    assert_eq!(rows, 1, "the fold recreates the combination's row");

    let mut tx = db.begin().await.unwrap();
    repo::insert_partner(
        &mut tx,
        &new_partner("unfolded@c.com", TipoPartner::Afiliado),
    )
    .await
    .unwrap();
    tx.commit().await.unwrap();
    assert_eq!(appended(db, None).await, 1);
    let mut tx = db.begin().await.unwrap();
    with_tx!(&mut tx, conn => sqlx::query("TRUNCATE partner CASCADE")
        .execute(conn)
        .await
        .map(|r| r.rows_affected()))
    .unwrap();
    tx.commit().await.unwrap();
    assert_eq!(assert_totals_exact(db, "a truncate").await, 0);
    test_db.cleanup().await;
}

/// Migration 0004 on counts spread over several shards by migration 0003's triggers (two
/// overlapping inserts take two) keeps every total and leaves one row per combination.
#[tokio::test]
async fn the_delta_migration_keeps_sharded_counts_on_postgres() {
    let test_db = TestDb::postgres(Schema {
        component: "integraciones",
        migrations: integraciones::MIGRATIONS.split_at(3).0,
    })
    .await;
    let db = &test_db.db;
    let mut held = db.begin().await.unwrap();
    repo::insert_partner(
        &mut held,
        &new_partner("one@c.com", TipoPartner::Influencer),
    )
    .await
    .unwrap();
    let mut other = db.begin().await.unwrap();
    repo::insert_partner(
        &mut other,
        &new_partner("two@c.com", TipoPartner::Influencer),
    )
    .await
    .unwrap();
    other.commit().await.unwrap();
    held.commit().await.unwrap();
    let shards = "SELECT COUNT(*) FROM partner_conteo WHERE n <> 0";
    let before: i64 =
        with_reader!(db, conn => sqlx::query_scalar(shards).fetch_one(conn).await).unwrap();
    assert_eq!(before, 2, "two overlapping inserts counted in two shards");

    db.migrate_with("integraciones", integraciones::MIGRATIONS)
        .await
        .unwrap();
    let after: i64 =
        with_reader!(db, conn => sqlx::query_scalar(shards).fetch_one(conn).await).unwrap();
    assert_eq!(after, 1, "one row holds the combination's count");
    assert_eq!(assert_totals_exact(db, "the delta migration").await, 2);
    test_db.cleanup().await;
}
