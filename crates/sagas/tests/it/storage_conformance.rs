//! The saga repository's behaviours, written once and run against SQLite and PostgreSQL:
//! round trips, the version guard, the ordered log and its uniqueness, correlation lookups,
//! the deadline scan, list filters and pagination.

use chrono::{TimeDelta, Utc};
use sagas::domain::{EstadoProcesamiento, EstadoSaga, Paso, Saga};
use sagas::storage::{self as repo, NewLogEntry, SagaFilter, StoredSaga, Traza};
use serde_json::json;
use storage::Db;
use uuid::Uuid;

fn new_saga() -> StoredSaga {
    let now = kernel::now();
    StoredSaga {
        saga: Saga::start(
            Uuid::now_v7(),
            Uuid::now_v7(),
            "Ana".into(),
            "ana@example.com".into(),
            now,
            TimeDelta::seconds(300),
        ),
        traza: Traza {
            ultimo_evento_id: Uuid::now_v7(),
            correlation_id: Some(Uuid::now_v7()),
            traceparent: Some("00-abc-def-01".into()),
        },
    }
}

fn entry(tipo: &str) -> NewLogEntry {
    let now = kernel::now();
    NewLogEntry {
        event_id: Uuid::now_v7(),
        tipo_evento: tipo.into(),
        evento_data: json!({"tipo": tipo, "monto": "60000.00", "lista": [1, 2]}).into(),
        estado_procesamiento: EstadoProcesamiento::Procesado,
        error: None,
        recibido_en: now,
        procesado_en: Some(now),
    }
}

async fn insert(db: &Db, stored: &StoredSaga) {
    let mut tx = db.begin().await.unwrap();
    repo::insert_saga(&mut tx, stored).await.unwrap();
    tx.commit().await.unwrap();
}

async fn append(db: &Db, saga: &Saga, entries: &[NewLogEntry]) {
    let mut tx = db.begin().await.unwrap();
    repo::append_log(&mut tx, saga, entries).await.unwrap();
    tx.commit().await.unwrap();
}

async fn a_saga_round_trips(db: &Db) {
    let stored = new_saga();
    insert(db, &stored).await;
    assert_eq!(
        repo::find(db, stored.saga.saga_id).await.unwrap(),
        Some(stored.clone())
    );
    let mut tx = db.begin().await.unwrap();
    let loaded = repo::load_for_update(&mut tx, stored.saga.saga_id)
        .await
        .unwrap();
    assert_eq!(loaded, Some(stored.clone()));
    assert_eq!(
        repo::load_for_update(&mut tx, Uuid::now_v7())
            .await
            .unwrap(),
        None
    );
    drop(tx);
    assert_eq!(repo::find(db, Uuid::now_v7()).await.unwrap(), None);
}

async fn an_update_applies_only_at_the_expected_version(db: &Db) {
    let stored = new_saga();
    insert(db, &stored).await;
    let mut changed = stored.clone();
    changed.saga.partner_id = Some(Uuid::now_v7());
    changed.saga.contrato_id = Some(Uuid::now_v7());
    changed.saga.estado = EstadoSaga::Fallida;
    changed.saga.causa = Some("TIMEOUT".into());
    changed.saga.ultimo_paso = Paso::SagaTimeout;
    changed.saga.paso_deadline = None;
    changed.saga.version = 2;
    changed.traza.ultimo_evento_id = Uuid::now_v7();

    let mut tx = db.begin().await.unwrap();
    assert!(repo::update_saga(&mut tx, &changed, 1).await.unwrap());
    tx.commit().await.unwrap();
    assert_eq!(
        repo::find(db, stored.saga.saga_id).await.unwrap(),
        Some(changed.clone())
    );

    // A writer that loaded version 1 lost the race: nothing is written.
    let mut stale = stored.clone();
    stale.saga.version = 2;
    let mut tx = db.begin().await.unwrap();
    assert!(!repo::update_saga(&mut tx, &stale, 1).await.unwrap());
    tx.commit().await.unwrap();
    assert_eq!(
        repo::find(db, stored.saga.saga_id).await.unwrap(),
        Some(changed)
    );
}

async fn a_second_saga_for_the_same_onboarding_is_refused(db: &Db) {
    let stored = new_saga();
    insert(db, &stored).await;
    let mut twin = new_saga();
    twin.saga.onboarding_id = stored.saga.onboarding_id;
    let mut tx = db.begin().await.unwrap();
    let error = repo::insert_saga(&mut tx, &twin).await.unwrap_err();
    assert!(storage::is_unique_violation(&error), "{error}");
}

async fn the_log_keeps_its_order_payloads_and_unique_event_ids(db: &Db) {
    let mut stored = new_saga();
    insert(db, &stored).await;
    let first = entry("CreatePartner");
    append(db, &stored.saga, std::slice::from_ref(&first)).await;
    stored.saga.partner_id = Some(Uuid::now_v7());
    let mut error_row = entry("PartnerCreationFailed");
    error_row.estado_procesamiento = EstadoProcesamiento::Error;
    error_row.error = Some("not allowed".into());
    error_row.procesado_en = None;
    let more = [
        entry("PartnerCreado"),
        error_row.clone(),
        entry("ContratoCreado"),
    ];
    append(db, &stored.saga, &more).await;

    let log = repo::log(db, stored.saga.saga_id).await.unwrap();
    let tipos: Vec<&str> = log.iter().map(|e| e.tipo_evento.as_str()).collect();
    assert_eq!(
        tipos,
        [
            "CreatePartner",
            "PartnerCreado",
            "PartnerCreationFailed",
            "ContratoCreado"
        ]
    );
    assert_eq!(
        log.iter().map(|e| e.orden).collect::<Vec<_>>(),
        [1, 2, 3, 4]
    );
    assert_eq!(log[0].evento_data, first.evento_data);
    assert_eq!(log[0].recibido_en, first.recibido_en);
    assert_eq!(log[0].partner_id, None);
    assert_eq!(log[1].partner_id, stored.saga.partner_id);
    assert_eq!(log[1].onboarding_id, Some(stored.saga.onboarding_id));
    assert_eq!(log[2].estado_procesamiento, EstadoProcesamiento::Error);
    assert_eq!(log[2].error.as_deref(), Some("not allowed"));
    assert_eq!(log[2].procesado_en, None);

    let mut tx = db.begin().await.unwrap();
    let logged = |found: Option<(repo::StoredSaga, bool)>| found.expect("the saga exists").1;
    assert!(logged(
        repo::load_for_update_after(&mut tx, stored.saga.saga_id, Some(first.event_id))
            .await
            .unwrap()
    ));
    assert!(!logged(
        repo::load_for_update_after(&mut tx, stored.saga.saga_id, Some(Uuid::now_v7()))
            .await
            .unwrap()
    ));
    assert!(!logged(
        repo::load_for_update_after(&mut tx, stored.saga.saga_id, None)
            .await
            .unwrap()
    ));
    // The same event twice in one saga's log is refused by the schema.
    let error = repo::append_log(&mut tx, &stored.saga, std::slice::from_ref(&first))
        .await
        .unwrap_err();
    assert!(storage::is_unique_violation(&error), "{error}");
}

async fn sagas_are_found_by_onboarding_partner_and_contract(db: &Db) {
    let mut stored = new_saga();
    stored.saga.partner_id = Some(Uuid::now_v7());
    stored.saga.contrato_id = Some(Uuid::now_v7());
    insert(db, &stored).await;
    let id = Some(stored.saga.saga_id);
    let mut other = new_saga();
    other.saga.creada_en = stored.saga.creada_en + TimeDelta::seconds(1);
    insert(db, &other).await;
    let mut tx = db.begin().await.unwrap();
    // By id first, else by onboarding.
    assert_eq!(
        repo::saga_by_id_or_onboarding(&mut tx, id, other.saga.onboarding_id)
            .await
            .unwrap(),
        id
    );
    assert_eq!(
        repo::saga_by_id_or_onboarding(&mut tx, Some(Uuid::now_v7()), stored.saga.onboarding_id)
            .await
            .unwrap(),
        id
    );
    assert_eq!(
        repo::saga_by_id_or_onboarding(&mut tx, None, Uuid::now_v7())
            .await
            .unwrap(),
        None
    );
    assert_eq!(
        repo::saga_of_onboarding(&mut tx, stored.saga.onboarding_id)
            .await
            .unwrap(),
        id
    );
    assert_eq!(
        repo::saga_of_partner(&mut tx, stored.saga.partner_id.unwrap())
            .await
            .unwrap(),
        id
    );
    assert_eq!(
        repo::saga_of_contrato(&mut tx, stored.saga.contrato_id.unwrap())
            .await
            .unwrap(),
        id
    );
    assert_eq!(
        repo::saga_of_partner(&mut tx, Uuid::now_v7())
            .await
            .unwrap(),
        None
    );
}

async fn only_started_sagas_past_their_deadline_are_due(db: &Db) {
    let now = kernel::now();
    let mut past = new_saga();
    past.saga.paso_deadline = Some(now - TimeDelta::milliseconds(1));
    let mut older = new_saga();
    older.saga.paso_deadline = Some(now - TimeDelta::seconds(10));
    let mut future = new_saga();
    future.saga.paso_deadline = Some(now + TimeDelta::seconds(10));
    let mut review = new_saga();
    review.saga.estado = EstadoSaga::PendienteRevision;
    review.saga.paso_deadline = None;
    let mut failed = new_saga();
    failed.saga.estado = EstadoSaga::Fallida;
    failed.saga.paso_deadline = Some(now - TimeDelta::seconds(10));
    for stored in [&past, &older, &future, &review, &failed] {
        insert(db, stored).await;
    }
    let due = repo::due(db, now, 10).await.unwrap();
    assert_eq!(due, [older.saga.saga_id, past.saga.saga_id]);
    assert_eq!(repo::due(db, now, 1).await.unwrap(), [older.saga.saga_id]);
    // Microseconds matter: the deadline itself is not yet past.
    assert_eq!(
        repo::due(db, older.saga.paso_deadline.unwrap(), 10)
            .await
            .unwrap(),
        Vec::<Uuid>::new()
    );
}

async fn lists_filter_count_and_paginate(db: &Db) {
    let partner = Uuid::now_v7();
    let mut ids = Vec::new();
    for estado in [
        EstadoSaga::Iniciada,
        EstadoSaga::Fallida,
        EstadoSaga::Fallida,
        EstadoSaga::Completada,
    ] {
        let mut stored = new_saga();
        stored.saga.estado = estado;
        stored.saga.partner_id = Some(partner);
        insert(db, &stored).await;
        ids.push(stored.saga.saga_id);
    }
    let (all, total) = repo::list(db, &SagaFilter::default(), 50, None)
        .await
        .unwrap();
    assert_eq!(total, 4);
    assert_eq!(all.iter().map(|s| s.saga.saga_id).collect::<Vec<_>>(), ids);

    let fallidas = SagaFilter {
        estado: Some(EstadoSaga::Fallida),
        ..SagaFilter::default()
    };
    let (page, total) = repo::list(db, &fallidas, 1, None).await.unwrap();
    assert_eq!(total, 2);
    // limit + 1 rows tell the caller a next page exists.
    assert_eq!(page.len(), 2);
    let (rest, _) = repo::list(db, &fallidas, 1, Some(page[0].saga.saga_id))
        .await
        .unwrap();
    assert_eq!(rest.len(), 1);
    assert_eq!(rest[0].saga.saga_id, ids[2]);

    let by_onboarding = SagaFilter {
        onboarding_id: Some(all[3].saga.onboarding_id),
        partner_id: Some(partner),
        ..SagaFilter::default()
    };
    let (found, total) = repo::list(db, &by_onboarding, 50, None).await.unwrap();
    assert_eq!((found.len(), total), (1, 1));
    assert_eq!(found[0].saga.saga_id, ids[3]);
    let other_partner = SagaFilter {
        partner_id: Some(Uuid::now_v7()),
        ..SagaFilter::default()
    };
    assert_eq!(repo::list(db, &other_partner, 50, None).await.unwrap().1, 0);

    let counts = repo::count_by_estado(db).await.unwrap();
    assert_eq!(
        counts,
        vec![
            ("COMPLETADA".to_owned(), 1),
            ("FALLIDA".to_owned(), 2),
            ("INICIADA".to_owned(), 1)
        ]
    );
}

/// Timestamps survive both backends to the microsecond.
async fn timestamps_round_trip_in_utc(db: &Db) {
    let mut stored = new_saga();
    let at = Utc::now();
    stored.saga.creada_en = kernel::now();
    stored.saga.paso_deadline = Some(kernel::now() + TimeDelta::microseconds(1));
    insert(db, &stored).await;
    let back = repo::find(db, stored.saga.saga_id).await.unwrap().unwrap();
    assert_eq!(back.saga.paso_deadline, stored.saga.paso_deadline);
    assert!(back.saga.creada_en <= at + TimeDelta::seconds(1));
}

async fn a_step_writes_the_saga_and_its_log_rows_together(db: &Db) {
    // A new saga with two log rows.
    let stored = new_saga();
    let (first, second) = (entry("CreatePartner"), entry("PartnerCreado"));
    let mut tx = db.begin().await.unwrap();
    assert!(
        repo::save_step(&mut tx, &stored, None, &[first.clone(), second.clone()])
            .await
            .unwrap()
    );
    tx.commit().await.unwrap();
    assert_eq!(
        repo::find(db, stored.saga.saga_id).await.unwrap(),
        Some(stored.clone())
    );
    let ids = |log: Vec<repo::LogEntry>| -> Vec<(i64, Uuid)> {
        log.into_iter()
            .map(|row| (row.orden, row.event_id))
            .collect()
    };
    assert_eq!(
        ids(repo::log(db, stored.saga.saga_id).await.unwrap()),
        [(1, first.event_id), (2, second.event_id)]
    );

    // A change at the loaded version, with one more row.
    let mut changed = stored.clone();
    changed.saga.estado = EstadoSaga::Fallida;
    changed.saga.version = 2;
    let third = entry("ContratoRechazado");
    let mut tx = db.begin().await.unwrap();
    assert!(
        repo::save_step(&mut tx, &changed, Some(1), std::slice::from_ref(&third))
            .await
            .unwrap()
    );
    tx.commit().await.unwrap();
    assert_eq!(
        repo::find(db, stored.saga.saga_id).await.unwrap(),
        Some(changed.clone())
    );

    // A writer that loaded version 1 lost the race: it is told so, and dropping its
    // transaction leaves neither the saga nor the log changed.
    let mut stale = stored.clone();
    stale.saga.version = 2;
    let mut tx = db.begin().await.unwrap();
    assert!(
        !repo::save_step(&mut tx, &stale, Some(1), &[entry("SagaTimeout")])
            .await
            .unwrap()
    );
    drop(tx);
    assert_eq!(
        repo::find(db, stored.saga.saga_id).await.unwrap(),
        Some(changed)
    );
    assert_eq!(
        ids(repo::log(db, stored.saga.saga_id).await.unwrap()),
        [
            (1, first.event_id),
            (2, second.event_id),
            (3, third.event_id)
        ]
    );

    // Starting the same saga again is a unique violation.
    let mut tx = db.begin().await.unwrap();
    let error = repo::save_step(&mut tx, &stored, None, &[entry("CreatePartner")])
        .await
        .unwrap_err();
    assert!(storage::is_unique_violation(&error), "{error}");
}

/// A batch's steps of several sagas, two of them of one saga and one starting it, go in one
/// write: each saga ends as its last step left it, its log numbered on from its last row in
/// the order of the steps; a chain of steps whose versions do not follow is refused.
async fn several_steps_of_several_sagas_go_in_one_write(db: &Db) {
    let existing = new_saga();
    insert(db, &existing).await;
    append(db, &existing.saga, &[entry("CreatePartner")]).await;
    let started = new_saga();
    let mut started_later = started.clone();
    started_later.saga.estado = EstadoSaga::Fallida;
    started_later.saga.version = 2;
    let mut existing_changed = existing.clone();
    existing_changed.saga.estado = EstadoSaga::Completada;
    existing_changed.saga.version = 2;
    let (a, b, c, d) = (
        entry("CreatePartner"),
        entry("PartnerCreado"),
        entry("ContratoCreado"),
        entry("ContratoRechazado"),
    );
    let mut tx = db.begin().await.unwrap();
    let steps = [
        repo::Step {
            stored: &started,
            expected_version: None,
            entries: std::slice::from_ref(&a),
        },
        repo::Step {
            stored: &existing_changed,
            expected_version: Some(1),
            entries: std::slice::from_ref(&c),
        },
        repo::Step {
            stored: &started_later,
            expected_version: Some(1),
            entries: &[b.clone(), d.clone()],
        },
    ];
    assert!(repo::save_steps(&mut tx, &steps).await.unwrap());
    tx.commit().await.unwrap();
    assert_eq!(
        repo::find(db, started.saga.saga_id).await.unwrap(),
        Some(started_later.clone())
    );
    assert_eq!(
        repo::find(db, existing.saga.saga_id).await.unwrap(),
        Some(existing_changed.clone())
    );
    let ids = |log: Vec<repo::LogEntry>| -> Vec<(i64, String)> {
        log.into_iter()
            .map(|row| (row.orden, row.tipo_evento))
            .collect()
    };
    assert_eq!(
        ids(repo::log(db, started.saga.saga_id).await.unwrap()),
        [
            (1, "CreatePartner".to_owned()),
            (2, "PartnerCreado".to_owned()),
            (3, "ContratoRechazado".to_owned())
        ]
    );
    assert_eq!(
        ids(repo::log(db, existing.saga.saga_id).await.unwrap()),
        [
            (1, "CreatePartner".to_owned()),
            (2, "ContratoCreado".to_owned())
        ]
    );

    // The second step of a saga read a version its first step did not write.
    let mut first = existing_changed.clone();
    first.saga.version = 3;
    let mut second = existing_changed.clone();
    second.saga.version = 4;
    let mut tx = db.begin().await.unwrap();
    let steps = [
        repo::Step {
            stored: &first,
            expected_version: Some(2),
            entries: &[],
        },
        repo::Step {
            stored: &second,
            expected_version: Some(2),
            entries: &[],
        },
    ];
    assert!(!repo::save_steps(&mut tx, &steps).await.unwrap());
    drop(tx);
    assert_eq!(
        repo::find(db, existing.saga.saga_id).await.unwrap(),
        Some(existing_changed)
    );
}

/// What a batch writes from its lists reads back as it was written, every column, and is
/// found like a saga written on its own: by partner and contract, and by the deadline scan,
/// whose comparison of times must hold for a deadline written either way.
async fn a_batch_writes_every_field_as_a_lone_write_would(db: &Db) {
    let now = kernel::now();
    let mut started = new_saga();
    started.saga.partner_id = Some(Uuid::now_v7());
    started.saga.causa = Some("sin \"comillas\" ni ñ".into());
    // A whole second: its text has no fraction, and must still sort before a later time's.
    let whole_second = chrono::DateTime::from_timestamp(now.timestamp() - 1, 0).unwrap();
    started.saga.paso_deadline = Some(whole_second);
    let mut changed = new_saga();
    insert(db, &changed).await;
    changed.saga.partner_id = Some(Uuid::now_v7());
    changed.saga.contrato_id = Some(Uuid::now_v7());
    changed.saga.ultimo_paso = Paso::ContratoCreado;
    changed.saga.paso_deadline = Some(now - TimeDelta::microseconds(1));
    changed.saga.actualizada_en = now;
    changed.saga.version = 2;
    changed.traza.ultimo_evento_id = Uuid::now_v7();
    let mut failed = entry("ContratoCreado");
    failed.estado_procesamiento = EstadoProcesamiento::Error;
    failed.error = Some("línea 1\nlínea 2".into());
    failed.procesado_en = None;
    failed.evento_data = json!({"texto": "a \"b\" \\ c", "n": 1.5, "nada": null}).into();
    let mut logged = entry("CreatePartner");
    // The log keeps a payload's text as it came, spacing and escapes included, and reads back
    // one nested deeper than a JSON tree may be.
    let deep = format!("{}{}", "[".repeat(200), "]".repeat(200));
    logged.evento_data =
        kernel::Payload::from_text(format!(r#"{{ "deep": {deep}, "e": "\u00e9 \"x\"" }}"#))
            .unwrap();
    let mut tx = db.begin().await.unwrap();
    let steps = [
        repo::Step {
            stored: &started,
            expected_version: None,
            entries: std::slice::from_ref(&logged),
        },
        repo::Step {
            stored: &changed,
            expected_version: Some(1),
            entries: std::slice::from_ref(&failed),
        },
    ];
    assert!(repo::save_steps(&mut tx, &steps).await.unwrap());
    tx.commit().await.unwrap();

    for stored in [&started, &changed] {
        assert_eq!(
            repo::find(db, stored.saga.saga_id).await.unwrap().as_ref(),
            Some(stored)
        );
    }
    for (saga, written) in [(&started.saga, &logged), (&changed.saga, &failed)] {
        let log = repo::log(db, saga.saga_id).await.unwrap();
        let row = log.last().unwrap();
        assert_eq!(row.orden, log.len() as i64);
        assert_eq!(
            (
                row.saga_id,
                row.event_id,
                &row.tipo_evento,
                &row.evento_data,
                row.estado_procesamiento,
                &row.error,
                row.recibido_en,
                row.procesado_en,
                row.partner_id,
                row.onboarding_id,
            ),
            (
                saga.saga_id,
                written.event_id,
                &written.tipo_evento,
                &written.evento_data,
                written.estado_procesamiento,
                &written.error,
                written.recibido_en,
                written.procesado_en,
                saga.partner_id,
                Some(saga.onboarding_id),
            )
        );
    }
    let mut tx = db.begin().await.unwrap();
    assert_eq!(
        repo::saga_of_partner(&mut tx, started.saga.partner_id.unwrap())
            .await
            .unwrap(),
        Some(started.saga.saga_id)
    );
    assert_eq!(
        repo::saga_of_contrato(&mut tx, changed.saga.contrato_id.unwrap())
            .await
            .unwrap(),
        Some(changed.saga.saga_id)
    );
    drop(tx);
    assert_eq!(
        repo::due(db, now, 10).await.unwrap(),
        [started.saga.saga_id, changed.saga.saga_id]
    );
    assert_eq!(
        repo::due(db, whole_second + TimeDelta::milliseconds(500), 10)
            .await
            .unwrap(),
        [started.saga.saga_id]
    );

    // A change from a version the saga has left is refused, whatever else the batch holds.
    let mut stale = changed.clone();
    stale.saga.version = 3;
    let mut tx = db.begin().await.unwrap();
    let steps = [
        repo::Step {
            stored: &new_saga(),
            expected_version: None,
            entries: &[],
        },
        repo::Step {
            stored: &stale,
            expected_version: Some(1),
            entries: &[entry("SagaTimeout")],
        },
    ];
    assert!(!repo::save_steps(&mut tx, &steps).await.unwrap());
}

testkit::on_both_backends!(
    crate::helpers::SCHEMA;
    a_saga_round_trips,
    an_update_applies_only_at_the_expected_version,
    a_step_writes_the_saga_and_its_log_rows_together,
    a_second_saga_for_the_same_onboarding_is_refused,
    the_log_keeps_its_order_payloads_and_unique_event_ids,
    sagas_are_found_by_onboarding_partner_and_contract,
    only_started_sagas_past_their_deadline_are_due,
    lists_filter_count_and_paginate,
    timestamps_round_trip_in_utc,
    several_steps_of_several_sagas_go_in_one_write,
    a_batch_writes_every_field_as_a_lone_write_would,
);
