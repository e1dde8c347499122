//! The BFF's own table: the onboardings it started. Written once with `$n` placeholders for
//! both backends; the outbox row of each onboarding's `CreatePartner` is written in the same
//! transaction (see `application`).

use std::sync::OnceLock;

use chrono::{DateTime, Utc};
use kernel::Envelope;
use serde_json::{json, Value};
use storage::{
    outbox, with_reader, with_tx, Arg, Backend, Db, Hex, Migration, Stamp, StorageError, Tx,
};
use uuid::Uuid;

use crate::domain::{Onboarding, SolicitudPartner};

/// This service's migrations, applied after the shared ones.
pub const MIGRATIONS: &[Migration] = &[Migration {
    version: 1,
    name: "onboarding",
    sqlite: include_str!("../migrations/sqlite/0001_init.sql"),
    postgres: include_str!("../migrations/postgres/0001_init.sql"),
}];

#[derive(Debug, thiserror::Error)]
pub enum RepoError {
    #[error(transparent)]
    Sqlx(#[from] sqlx::Error),
    #[error("stored onboarding {0} is unreadable: {1}")]
    Corrupt(Uuid, String),
}

/// An onboarding as stored: what the status endpoint needs to find its saga.
#[derive(Debug, Clone, PartialEq)]
pub struct OnboardingRecord {
    pub onboarding_id: Uuid,
    pub saga_id: Uuid,
    pub nombre: String,
    pub email: String,
    pub tipo: String,
    /// The validated request, as sent in `CreatePartner`.
    pub solicitud: Value,
    pub creada_en: DateTime<Utc>,
}

#[derive(sqlx::FromRow)]
struct OnboardingRow {
    onboarding_id: Uuid,
    saga_id: Uuid,
    nombre: String,
    email: String,
    tipo: String,
    solicitud: String,
    creada_en: DateTime<Utc>,
}

/// The validated request as JSON, the shape `CreatePartner` carries.
pub fn solicitud_json(solicitud: &SolicitudPartner) -> Value {
    json!({
        "nombre": solicitud.nombre.as_str(),
        "email": solicitud.email.as_str(),
        "telefono": solicitud.telefono.as_ref().map(|t| t.as_str()),
        "direccion": solicitud.direccion.as_ref().map(|d| d.as_str()),
        "tipo": solicitud.tipo.as_str(),
        "terminos": solicitud.terminos.as_ref().map(|t| t.to_value()),
    })
}

/// Inserts a new onboarding. Both ids are fresh, so a unique violation is a bug, not a
/// client mistake.
pub async fn insert_onboarding(tx: &mut Tx, onboarding: &Onboarding) -> Result<(), RepoError> {
    let solicitud = &onboarding.solicitud;
    with_tx!(tx, conn => sqlx::query(
        "INSERT INTO onboarding (onboarding_id, saga_id, nombre, email, tipo, solicitud, creada_en)
         VALUES ($1, $2, $3, $4, $5, $6, $7)",
    )
    .bind(onboarding.onboarding_id)
    .bind(onboarding.saga_id)
    .bind(solicitud.nombre.as_str())
    .bind(solicitud.email.as_str())
    .bind(solicitud.tipo.as_str())
    .bind(solicitud_json(solicitud).to_string())
    .bind(onboarding.creada_en)
    .execute(conn)
    .await
    .map(|r| r.rows_affected()))?;
    Ok(())
}

/// Writes new onboardings and the outbox rows of their commands (`(topic, envelope)`, in
/// order) as one transaction in one trip to the database ([`Db::write_once`]): the onboardings
/// as a JSON list unpacked by the database (SQLite stores ids as 16-byte blobs, PostgreSQL
/// parses the hex as a uuid), the time written as sqlx writes a `DateTime<Utc>` on SQLite, so
/// every row reads back alike. Nothing is written if any of it fails.
pub async fn insert_started<'a>(
    db: &Db,
    onboardings: &[&Onboarding],
    commands: impl IntoIterator<Item = (&'a str, &'a Envelope)>,
) -> Result<(), StorageError> {
    let rows: Vec<_> = onboardings
        .iter()
        .map(|onboarding| {
            let solicitud = &onboarding.solicitud;
            (
                Hex(onboarding.onboarding_id),
                Hex(onboarding.saga_id),
                solicitud.nombre.as_str(),
                solicitud.email.as_str(),
                solicitud.tipo.as_str(),
                solicitud_json(solicitud).to_string(),
                Stamp(onboarding.creada_en),
            )
        })
        .collect();
    static SQL: OnceLock<(String, String)> = OnceLock::new();
    let (sqlite, postgres) = SQL.get_or_init(|| {
        // `$1` the onboardings; the outbox rows' `$1` (time), `$2` (list) and `$3` (envelopes)
        // become `$2`, `$3`, `$4`.
        let outbox_rows = |backend| storage::renumbered(outbox::insert_list(backend), 1);
        (
            format!(
                "INSERT INTO onboarding (onboarding_id, saga_id, nombre, email, tipo, solicitud, creada_en)
                 SELECT unhex(value ->> 0), unhex(value ->> 1), value ->> 2, value ->> 3,
                     value ->> 4, value ->> 5, value ->> 6
                 FROM json_each($1);
                 {}",
                outbox_rows(Backend::Sqlite)
            ),
            format!(
                "WITH onboarded AS (
                     INSERT INTO onboarding (onboarding_id, saga_id, nombre, email, tipo, solicitud, creada_en)
                     SELECT (value ->> 0)::uuid, (value ->> 1)::uuid, value ->> 2, value ->> 3,
                         value ->> 4, value ->> 5, (value ->> 6)::timestamptz
                     FROM jsonb_array_elements($1::jsonb))
                 {}",
                outbox_rows(Backend::Postgres)
            ),
        )
    });
    let outbox_rows = outbox::list(commands);
    db.write_once(
        sqlite,
        postgres,
        vec![
            Arg::Text(storage::json_list(&rows)),
            Arg::Time(kernel::now()),
            Arg::Text(outbox_rows.rows),
            Arg::Bytes(outbox_rows.envelopes),
        ],
    )
    .await
}

/// The onboarding with this temporary id, if this BFF started it.
pub async fn find_onboarding(
    db: &Db,
    onboarding_id: Uuid,
) -> Result<Option<OnboardingRecord>, RepoError> {
    let row: Option<OnboardingRow> = with_reader!(db, conn => sqlx::query_as(
        "SELECT onboarding_id, saga_id, nombre, email, tipo, solicitud, creada_en
         FROM onboarding WHERE onboarding_id = $1",
    )
    .bind(onboarding_id)
    .fetch_optional(conn)
    .await)?;
    row.map(|row| {
        let solicitud = serde_json::from_str(&row.solicitud)
            .map_err(|error| RepoError::Corrupt(row.onboarding_id, error.to_string()))?;
        Ok(OnboardingRecord {
            onboarding_id: row.onboarding_id,
            saga_id: row.saga_id,
            nombre: row.nombre,
            email: row.email,
            tipo: row.tipo,
            solicitud,
            creada_en: row.creada_en,
        })
    })
    .transpose()
}
