//! The saga repository over `::storage::Db`: the `saga` row and its `saga_evento` log. Every
//! query is written once with `$n` placeholders; the one dialect branch is how a batch's steps
//! travel (`save_steps`: fixed statements over JSON lists, in each backend's own dialect). A
//! saga is locked for a change by a no-op `UPDATE` of its row, which takes the row lock on
//! PostgreSQL and the write lock on SQLite before anything is read, so concurrent changes apply
//! one after another.

use std::collections::HashMap;

use chrono::{DateTime, Utc};
use kernel::Payload;
use uuid::Uuid;

use ::storage::{json_list, with_reader, with_tx, Db, Hex, Stamp, Tx};

use crate::domain::{EstadoProcesamiento, EstadoSaga, Paso, Saga};

/// The migrations of this service's tables, applied by `Db::migrate_with("sagas", …)`.
pub const MIGRATIONS: &[::storage::Migration] = &[
    ::storage::Migration {
        version: 1,
        name: "saga_saga_evento",
        sqlite: include_str!("../migrations/sqlite/0001_init.sql"),
        postgres: include_str!("../migrations/postgres/0001_init.sql"),
    },
    ::storage::Migration {
        version: 2,
        name: "saga_fillfactor",
        sqlite: include_str!("../migrations/sqlite/0002_saga_fillfactor.sql"),
        postgres: include_str!("../migrations/postgres/0002_saga_fillfactor.sql"),
    },
];

/// The repository error every service shares (`storage::RepoError`).
pub use ::storage::RepoError;

/// Where a saga sits in its onboarding's conversation, so the messages it starts itself (a
/// review decision, a timeout) carry the onboarding's correlation, trace and causation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Traza {
    /// The id of the message of the saga's last step (received or published).
    pub ultimo_evento_id: Uuid,
    pub correlation_id: Option<Uuid>,
    pub traceparent: Option<String>,
}

/// A saga as stored: the domain state and its trace.
#[derive(Debug, Clone, PartialEq)]
pub struct StoredSaga {
    pub saga: Saga,
    pub traza: Traza,
}

/// One row of a saga's log.
#[derive(Debug, Clone, PartialEq)]
pub struct LogEntry {
    pub saga_evento_id: Uuid,
    pub saga_id: Uuid,
    /// 1, 2, … in the order the saga logged its rows.
    pub orden: i64,
    pub event_id: Uuid,
    pub tipo_evento: String,
    /// The payload's text as logged (no tree is built to read the log).
    pub evento_data: Payload,
    pub estado_procesamiento: EstadoProcesamiento,
    pub error: Option<String>,
    pub recibido_en: DateTime<Utc>,
    pub procesado_en: Option<DateTime<Utc>>,
    pub partner_id: Option<Uuid>,
    pub onboarding_id: Option<Uuid>,
}

/// A row to append to a saga's log (its `orden` is assigned on append).
#[derive(Debug, Clone, PartialEq)]
pub struct NewLogEntry {
    pub event_id: Uuid,
    pub tipo_evento: String,
    /// The event's payload as it arrived; the log keeps its text.
    pub evento_data: Payload,
    pub estado_procesamiento: EstadoProcesamiento,
    pub error: Option<String>,
    pub recibido_en: DateTime<Utc>,
    pub procesado_en: Option<DateTime<Utc>>,
}

/// List filters; `None` means "any".
#[derive(Debug, Clone, Default, PartialEq)]
pub struct SagaFilter {
    pub estado: Option<EstadoSaga>,
    pub partner_id: Option<Uuid>,
    pub onboarding_id: Option<Uuid>,
}

const SAGA_COLUMNS: &str = "saga_id, onboarding_id, partner_id, contrato_id, nombre, email, \
    estado, causa, ultimo_paso, ultimo_evento_id, paso_deadline, correlation_id, traceparent, \
    creada_en, actualizada_en, version";

const LOG_COLUMNS: &str = "saga_evento_id, saga_id, orden, event_id, tipo_evento, evento_data, \
    estado_procesamiento, error, recibido_en, procesado_en, partner_id, onboarding_id";

#[derive(Debug, sqlx::FromRow)]
struct SagaRow {
    saga_id: Uuid,
    onboarding_id: Uuid,
    partner_id: Option<Uuid>,
    contrato_id: Option<Uuid>,
    nombre: String,
    email: String,
    estado: String,
    causa: Option<String>,
    ultimo_paso: String,
    ultimo_evento_id: Uuid,
    paso_deadline: Option<DateTime<Utc>>,
    correlation_id: Option<Uuid>,
    traceparent: Option<String>,
    creada_en: DateTime<Utc>,
    actualizada_en: DateTime<Utc>,
    version: i64,
}

#[derive(Debug, sqlx::FromRow)]
struct LogRow {
    saga_evento_id: Uuid,
    saga_id: Uuid,
    orden: i64,
    event_id: Uuid,
    tipo_evento: String,
    evento_data: String,
    estado_procesamiento: String,
    error: Option<String>,
    recibido_en: DateTime<Utc>,
    procesado_en: Option<DateTime<Utc>>,
    partner_id: Option<Uuid>,
    onboarding_id: Option<Uuid>,
}

impl SagaRow {
    fn into_stored(self) -> Result<StoredSaga, RepoError> {
        let id = self.saga_id;
        let estado = EstadoSaga::parse(&self.estado).ok_or_else(|| {
            RepoError::corrupt_row("saga", id, format!("estado {:?}", self.estado))
        })?;
        let ultimo_paso = Paso::parse(&self.ultimo_paso).ok_or_else(|| {
            RepoError::corrupt_row("saga", id, format!("ultimo_paso {:?}", self.ultimo_paso))
        })?;
        Ok(StoredSaga {
            saga: Saga {
                saga_id: id,
                onboarding_id: self.onboarding_id,
                partner_id: self.partner_id,
                contrato_id: self.contrato_id,
                nombre: self.nombre,
                email: self.email,
                estado,
                causa: self.causa,
                ultimo_paso,
                paso_deadline: self.paso_deadline,
                creada_en: self.creada_en,
                actualizada_en: self.actualizada_en,
                version: self.version,
            },
            traza: Traza {
                ultimo_evento_id: self.ultimo_evento_id,
                correlation_id: self.correlation_id,
                traceparent: self.traceparent,
            },
        })
    }
}

impl LogRow {
    fn into_entry(self) -> Result<LogEntry, RepoError> {
        let id = self.saga_evento_id;
        Ok(LogEntry {
            saga_evento_id: id,
            saga_id: self.saga_id,
            orden: self.orden,
            event_id: self.event_id,
            tipo_evento: self.tipo_evento,
            evento_data: Payload::from_text(self.evento_data)
                .map_err(|error| RepoError::corrupt_row("saga_evento", id, error))?,
            estado_procesamiento: EstadoProcesamiento::parse(&self.estado_procesamiento)
                .ok_or_else(|| {
                    RepoError::corrupt_row("saga_evento", id, &self.estado_procesamiento)
                })?,
            error: self.error,
            recibido_en: self.recibido_en,
            procesado_en: self.procesado_en,
            partner_id: self.partner_id,
            onboarding_id: self.onboarding_id,
        })
    }
}

const INSERT_SAGA: &str = "INSERT INTO saga (saga_id, onboarding_id, partner_id, contrato_id,
        nombre, email, estado, causa, ultimo_paso, ultimo_evento_id, paso_deadline,
        correlation_id, traceparent, creada_en, actualizada_en, version)
     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16)";

macro_rules! bind_insert_saga {
    ($query:expr, $stored:expr) => {{
        let (saga, traza) = (&$stored.saga, &$stored.traza);
        $query
            .bind(saga.saga_id)
            .bind(saga.onboarding_id)
            .bind(saga.partner_id)
            .bind(saga.contrato_id)
            .bind(&saga.nombre)
            .bind(&saga.email)
            .bind(saga.estado.as_str())
            .bind(saga.causa.as_deref())
            .bind(saga.ultimo_paso.as_str())
            .bind(traza.ultimo_evento_id)
            .bind(saga.paso_deadline)
            .bind(traza.correlation_id)
            .bind(traza.traceparent.as_deref())
            .bind(saga.creada_en)
            .bind(saga.actualizada_en)
            .bind(saga.version)
    }};
}

const UPDATE_SAGA: &str = "UPDATE saga SET partner_id = $2, contrato_id = $3, estado = $4,
        causa = $5, ultimo_paso = $6, ultimo_evento_id = $7, paso_deadline = $8,
        actualizada_en = $9, version = $10
     WHERE saga_id = $1 AND version = $11";
const UPDATE_SAGA_PARAMS: usize = 11;

macro_rules! bind_update_saga {
    ($query:expr, $stored:expr, $expected_version:expr) => {{
        let (saga, traza) = (&$stored.saga, &$stored.traza);
        $query
            .bind(saga.saga_id)
            .bind(saga.partner_id)
            .bind(saga.contrato_id)
            .bind(saga.estado.as_str())
            .bind(saga.causa.as_deref())
            .bind(saga.ultimo_paso.as_str())
            .bind(traza.ultimo_evento_id)
            .bind(saga.paso_deadline)
            .bind(saga.actualizada_en)
            .bind(saga.version)
            .bind($expected_version)
    }};
}

/// One log row, numbered in the statement itself after the saga's last row.
const INSERT_LOG: &str = "INSERT INTO saga_evento (saga_evento_id, saga_id, orden, event_id,
        tipo_evento, evento_data, estado_procesamiento, error, recibido_en, procesado_en,
        partner_id, onboarding_id)
     SELECT $1, $2, COALESCE(MAX(orden), 0) + 1, $3, $4, $5, $6, $7, $8, $9, $10, $11
     FROM saga_evento WHERE saga_id = $2";

macro_rules! bind_log_entry {
    ($query:expr, $saga:expr, $entry:expr) => {{
        let (saga, entry) = ($saga, $entry);
        $query
            .bind(kernel::new_id())
            .bind(saga.saga_id)
            .bind(entry.event_id)
            .bind(&entry.tipo_evento)
            .bind(entry.evento_data.text())
            .bind(entry.estado_procesamiento.as_str())
            .bind(entry.error.as_deref())
            .bind(entry.recibido_en)
            .bind(entry.procesado_en)
            .bind(saga.partner_id)
            .bind(saga.onboarding_id)
    }};
}

/// Inserts a new saga. Fails with a unique violation when its id or onboarding exists.
pub async fn insert_saga(tx: &mut Tx, stored: &StoredSaga) -> Result<(), sqlx::Error> {
    with_tx!(tx, conn => bind_insert_saga!(sqlx::query(INSERT_SAGA), stored)
        .execute(conn)
        .await
        .map(|r| r.rows_affected()))?;
    Ok(())
}

/// Writes a changed saga back if it is still at `expected_version`. `Ok(false)` means another
/// writer changed it first: the caller drops `tx`.
pub async fn update_saga(
    tx: &mut Tx,
    stored: &StoredSaga,
    expected_version: i64,
) -> Result<bool, sqlx::Error> {
    let updated = with_tx!(tx, conn => bind_update_saga!(sqlx::query(UPDATE_SAGA), stored, expected_version)
        .execute(conn)
        .await
        .map(|r| r.rows_affected()))?;
    Ok(updated == 1)
}

/// One step of a saga to write: the saga as it is now, the version it was read at (`None`: a
/// new saga, inserted) and the step's new log rows.
pub struct Step<'a> {
    pub stored: &'a StoredSaga,
    pub expected_version: Option<i64>,
    pub entries: &'a [NewLogEntry],
}

/// Writes one step of a saga into `tx`: the saga itself (inserted when `expected_version` is
/// `None`, else updated if still at that version) and its new log rows. `Ok(false)` means
/// another writer changed the saga first: the caller drops `tx`, log rows included. A new saga
/// whose id or onboarding exists fails with a unique violation.
pub async fn save_step(
    tx: &mut Tx,
    stored: &StoredSaga,
    expected_version: Option<i64>,
    entries: &[NewLogEntry],
) -> Result<bool, sqlx::Error> {
    save_steps(
        tx,
        &[Step {
            stored,
            expected_version,
            entries,
        }],
    )
    .await
}

/// Writes `steps` in order, as [`save_step`] writes one (two steps of one saga follow each
/// other: each is guarded by the version the one before it wrote). `Ok(false)`: some saga was
/// not at its expected version, and the caller drops `tx`.
///
/// One round trip, and on either backend the same text whatever the batch: the new sagas, the
/// changed ones and the log rows travel as JSON lists ([`Lists`]). On SQLite a text that
/// changed with the batch's size and shape (one statement per saga and per log row) was
/// prepared afresh for nearly every batch, and parsing and compiling those statements, with
/// the allocations that go with it, was a third of the saga log's thread (BENCHMARKS.md,
/// fourteenth run).
pub async fn save_steps(tx: &mut Tx, steps: &[Step<'_>]) -> Result<bool, sqlx::Error> {
    let Some(lists) = Lists::of(steps) else {
        return Ok(false);
    };
    match &mut tx.conn {
        ::storage::TxConn::Sqlite(transaction) => save_steps_sqlite(transaction, &lists).await,
        ::storage::TxConn::Postgres(transaction) => save_steps_postgres(transaction, &lists).await,
    }
}

/// A saga's steps of one batch as one write: the saga as its last step left it, guarded by
/// the version its first step read (`None`: new, inserted).
struct Collapsed<'a> {
    stored: &'a StoredSaga,
    expected_version: Option<i64>,
}

/// A batch of steps as the statements of [`save_steps`] read it. Steps of one saga are
/// collapsed into one write first, because two writes of one row in one statement would not
/// see each other. Rows are serialized straight from these borrowing structs
/// (`storage::json_list`).
struct Lists<'a> {
    collapsed: Vec<Collapsed<'a>>,
    /// New sagas.
    nuevas: Vec<SagaJson<'a>>,
    /// Log rows, each with its place `k` among its saga's rows of the batch.
    registradas: Vec<LogJson<'a>>,
    /// The log rows' event data end to end, bound beside their list (`storage::Texts`).
    datos: Vec<u8>,
}

/// A saga as a JSON object named as its columns; `expected_version` only for a change.
#[derive(serde::Serialize)]
struct SagaJson<'a> {
    saga_id: Hex,
    onboarding_id: Hex,
    partner_id: Option<Hex>,
    contrato_id: Option<Hex>,
    nombre: &'a str,
    email: &'a str,
    estado: &'static str,
    causa: Option<&'a str>,
    ultimo_paso: &'static str,
    ultimo_evento_id: Hex,
    paso_deadline: Option<Stamp>,
    correlation_id: Option<Hex>,
    traceparent: Option<&'a str>,
    creada_en: Stamp,
    actualizada_en: Stamp,
    version: i64,
    #[serde(skip_serializing_if = "Option::is_none")]
    expected_version: Option<i64>,
}

impl<'a> SagaJson<'a> {
    fn of(stored: &'a StoredSaga, expected_version: Option<i64>) -> Self {
        let (saga, traza) = (&stored.saga, &stored.traza);
        SagaJson {
            saga_id: Hex(saga.saga_id),
            onboarding_id: Hex(saga.onboarding_id),
            partner_id: saga.partner_id.map(Hex),
            contrato_id: saga.contrato_id.map(Hex),
            nombre: &saga.nombre,
            email: &saga.email,
            estado: saga.estado.as_str(),
            causa: saga.causa.as_deref(),
            ultimo_paso: saga.ultimo_paso.as_str(),
            ultimo_evento_id: Hex(traza.ultimo_evento_id),
            paso_deadline: saga.paso_deadline.map(Stamp),
            correlation_id: traza.correlation_id.map(Hex),
            traceparent: traza.traceparent.as_deref(),
            creada_en: Stamp(saga.creada_en),
            actualizada_en: Stamp(saga.actualizada_en),
            version: saga.version,
            expected_version,
        }
    }
}

/// A log row as a JSON object named as its columns, with its place `k` instead of `orden` and
/// where its event data lies in [`Lists::datos`] (1-based byte offset and length) instead of
/// the text: escaped into the list, the payload was parsed and unescaped again row by row.
#[derive(serde::Serialize)]
struct LogJson<'a> {
    saga_evento_id: Hex,
    saga_id: Hex,
    k: i64,
    event_id: Hex,
    tipo_evento: &'a str,
    evento_data_at: usize,
    evento_data_len: usize,
    estado_procesamiento: &'static str,
    error: Option<&'a str>,
    recibido_en: Stamp,
    procesado_en: Option<Stamp>,
    partner_id: Option<Hex>,
    onboarding_id: Hex,
}

impl<'a> Lists<'a> {
    /// `None`: a step of a saga does not follow the one before it in the batch.
    fn of(steps: &'a [Step<'a>]) -> Option<Self> {
        let mut collapsed: Vec<Collapsed<'a>> = Vec::new();
        let mut at: HashMap<Uuid, usize> = HashMap::new();
        let mut registradas = Vec::new();
        let mut datos = ::storage::Texts::default();
        let mut rows_of: HashMap<Uuid, i64> = HashMap::new();
        for step in steps {
            let saga = &step.stored.saga;
            match at.get(&saga.saga_id) {
                Some(&i) => {
                    // The version the step before it wrote, or the write would not match.
                    if step.expected_version != Some(collapsed[i].stored.saga.version) {
                        return None;
                    }
                    collapsed[i].stored = step.stored;
                }
                None => {
                    at.insert(saga.saga_id, collapsed.len());
                    collapsed.push(Collapsed {
                        stored: step.stored,
                        expected_version: step.expected_version,
                    });
                }
            }
            for entry in step.entries {
                let k = rows_of.entry(saga.saga_id).or_insert(0);
                *k += 1;
                let (evento_data_at, evento_data_len) = datos.push_with(|bytes| {
                    bytes.extend_from_slice(entry.evento_data.text().as_bytes())
                });
                registradas.push(LogJson {
                    saga_evento_id: Hex(kernel::new_id()),
                    saga_id: Hex(saga.saga_id),
                    k: *k,
                    event_id: Hex(entry.event_id),
                    tipo_evento: &entry.tipo_evento,
                    evento_data_at,
                    evento_data_len,
                    estado_procesamiento: entry.estado_procesamiento.as_str(),
                    error: entry.error.as_deref(),
                    recibido_en: Stamp(entry.recibido_en),
                    procesado_en: entry.procesado_en.map(Stamp),
                    partner_id: saga.partner_id.map(Hex),
                    onboarding_id: Hex(saga.onboarding_id),
                });
            }
        }
        let nuevas = collapsed
            .iter()
            .filter(|step| step.expected_version.is_none())
            .map(|step| SagaJson::of(step.stored, None))
            .collect();
        Some(Lists {
            collapsed,
            nuevas,
            registradas,
            datos: datos.into_bytes(),
        })
    }

    /// The changed sagas: written back if still at the version their first step read.
    fn cambiadas(&self) -> impl Iterator<Item = (&'a StoredSaga, i64)> + '_ {
        self.collapsed
            .iter()
            .filter_map(|step| step.expected_version.map(|version| (step.stored, version)))
    }

    /// Saga rows and log rows the write must touch.
    fn rows(&self) -> i64 {
        (self.collapsed.len() + self.registradas.len()) as i64
    }
}

/// [`save_steps`] on SQLite: three statements of fixed text (prepared once per connection)
/// in one query — the new sagas, the changed ones (`UPDATE … FROM` the list, each by its key
/// and expected version) and the log rows, each numbered after its saga's last row as the
/// statement found it plus its place `k` (SQLite computes an `INSERT … SELECT` that reads its
/// own table in full before inserting). Each saga written returns a row; the log rows are
/// inserted whole or the query fails. Each list is made JSONB once (see
/// `storage::json_list`).
const SAVE_STEPS_SQLITE: &str = "WITH nuevas AS MATERIALIZED (
        SELECT key, jsonb(value) AS r FROM json_each($1))
     INSERT INTO saga (saga_id, onboarding_id, partner_id, contrato_id, nombre, email, estado,
        causa, ultimo_paso, ultimo_evento_id, paso_deadline, correlation_id, traceparent,
        creada_en, actualizada_en, version)
     SELECT unhex(r ->> 'saga_id'), unhex(r ->> 'onboarding_id'), unhex(r ->> 'partner_id'),
        unhex(r ->> 'contrato_id'), r ->> 'nombre', r ->> 'email', r ->> 'estado',
        r ->> 'causa', r ->> 'ultimo_paso', unhex(r ->> 'ultimo_evento_id'),
        r ->> 'paso_deadline', unhex(r ->> 'correlation_id'), r ->> 'traceparent',
        r ->> 'creada_en', r ->> 'actualizada_en', r ->> 'version'
     FROM nuevas ORDER BY key
     RETURNING 1;
     WITH cambiadas AS MATERIALIZED (SELECT jsonb(value) AS r FROM json_each($2))
     UPDATE saga SET partner_id = unhex(c.r ->> 'partner_id'),
        contrato_id = unhex(c.r ->> 'contrato_id'), estado = c.r ->> 'estado',
        causa = c.r ->> 'causa', ultimo_paso = c.r ->> 'ultimo_paso',
        ultimo_evento_id = unhex(c.r ->> 'ultimo_evento_id'),
        paso_deadline = c.r ->> 'paso_deadline', actualizada_en = c.r ->> 'actualizada_en',
        version = c.r ->> 'version'
     FROM cambiadas AS c
     WHERE saga.saga_id = unhex(c.r ->> 'saga_id') AND saga.version = c.r ->> 'expected_version'
     RETURNING 1;
     WITH registradas AS MATERIALIZED (SELECT key, jsonb(value) AS r FROM json_each($3))
     INSERT INTO saga_evento (saga_evento_id, saga_id, orden, event_id, tipo_evento,
        evento_data, estado_procesamiento, error, recibido_en, procesado_en, partner_id,
        onboarding_id)
     SELECT unhex(r ->> 'saga_evento_id'), unhex(r ->> 'saga_id'),
        (SELECT COALESCE(MAX(e.orden), 0) FROM saga_evento e
         WHERE e.saga_id = unhex(r ->> 'saga_id')) + (r ->> 'k'),
        unhex(r ->> 'event_id'), r ->> 'tipo_evento',
        CAST(substr($4, r ->> 'evento_data_at', r ->> 'evento_data_len') AS TEXT),
        r ->> 'estado_procesamiento', r ->> 'error', r ->> 'recibido_en', r ->> 'procesado_en',
        unhex(r ->> 'partner_id'), unhex(r ->> 'onboarding_id')
     FROM registradas ORDER BY key
     RETURNING 1";

async fn save_steps_sqlite(
    transaction: &mut sqlx::Transaction<'static, sqlx::Sqlite>,
    lists: &Lists<'_>,
) -> Result<bool, sqlx::Error> {
    let cambiadas: Vec<SagaJson<'_>> = lists
        .cambiadas()
        .map(|(stored, expected_version)| SagaJson::of(stored, Some(expected_version)))
        .collect();
    let written = sqlx::query(SAVE_STEPS_SQLITE)
        .bind(json_list(&lists.nuevas))
        .bind(json_list(&cambiadas))
        .bind(json_list(&lists.registradas))
        .bind(&lists.datos)
        .fetch_all(&mut **transaction)
        .await?;
    Ok(written.len() as i64 == lists.rows())
}

/// New sagas, inserted from a JSON list (an `INSERT` reads no table, so no plan can go wrong).
const NUEVAS_POSTGRES: &str = "nuevas AS (INSERT INTO saga (saga_id, onboarding_id,
        partner_id, contrato_id, nombre, email, estado, causa, ultimo_paso, ultimo_evento_id,
        paso_deadline, correlation_id, traceparent, creada_en, actualizada_en, version)
     SELECT saga_id, onboarding_id, partner_id, contrato_id, nombre, email, estado, causa,
        ultimo_paso, ultimo_evento_id, paso_deadline, correlation_id, traceparent, creada_en,
        actualizada_en, version
     FROM jsonb_to_recordset($1::jsonb) AS r (saga_id uuid, onboarding_id uuid,
        partner_id uuid, contrato_id uuid, nombre text, email text, estado text, causa text,
        ultimo_paso text, ultimo_evento_id uuid, paso_deadline timestamptz, correlation_id uuid,
        traceparent text, creada_en timestamptz, actualizada_en timestamptz, version bigint)
     RETURNING 1)";

/// Log rows from a JSON list, each numbered after its saga's last row as the statement found
/// it (every part of one statement reads the same snapshot) plus its place `k` among the
/// saga's rows of the list; the maximum is a probe of the `(saga_id, orden)` index.
const REGISTRADAS_POSTGRES: &str = "registradas AS (INSERT INTO saga_evento (saga_evento_id,
        saga_id, orden, event_id, tipo_evento, evento_data, estado_procesamiento, error,
        recibido_en, procesado_en, partner_id, onboarding_id)
     SELECT r.saga_evento_id, r.saga_id,
        (SELECT COALESCE(MAX(e.orden), 0) FROM saga_evento e WHERE e.saga_id = r.saga_id) + r.k,
        r.event_id, r.tipo_evento,
        convert_from(substring($3::bytea FROM r.evento_data_at FOR r.evento_data_len), 'UTF8'),
        r.estado_procesamiento, r.error,
        r.recibido_en, r.procesado_en, r.partner_id, r.onboarding_id
     FROM jsonb_to_recordset($2::jsonb) AS r (saga_evento_id uuid, saga_id uuid, k bigint,
        event_id uuid, tipo_evento text, evento_data_at int, evento_data_len int,
        estado_procesamiento text, error text,
        recibido_en timestamptz, procesado_en timestamptz, partner_id uuid, onboarding_id uuid)
     RETURNING 1)";

/// [`save_steps`] on PostgreSQL: one statement — the new sagas, one `UPDATE` per changed saga
/// (by its key and expected version, which any plan looks up in the primary key, where a
/// join with a list could be planned as a scan while the table is new), and the log rows —
/// whose answer is the number of rows it wrote.
async fn save_steps_postgres(
    transaction: &mut sqlx::Transaction<'static, sqlx::Postgres>,
    lists: &Lists<'_>,
) -> Result<bool, sqlx::Error> {
    // `$1` and `$2` are the JSON lists and `$3` the log rows' event data; each update's own
    // eleven arguments follow.
    let mut parts = vec![NUEVAS_POSTGRES.to_owned(), REGISTRADAS_POSTGRES.to_owned()];
    let mut counts = vec![
        "(SELECT COUNT(*) FROM nuevas)".to_owned(),
        "(SELECT COUNT(*) FROM registradas)".to_owned(),
    ];
    for n in 0..lists.cambiadas().count() {
        let name = format!("cambiada_{n}");
        parts.push(format!(
            "{name} AS ({} RETURNING 1)",
            ::storage::renumbered(UPDATE_SAGA, 3 + n * UPDATE_SAGA_PARAMS)
        ));
        counts.push(format!("(SELECT COUNT(*) FROM {name})"));
    }
    let sql = format!("WITH {} SELECT {}", parts.join(",\n"), counts.join(" + "));
    let mut query = sqlx::query_scalar::<_, i64>(&sql)
        .bind(json_list(&lists.nuevas))
        .bind(json_list(&lists.registradas))
        .bind(&lists.datos);
    for (stored, expected_version) in lists.cambiadas() {
        query = bind_update_saga!(query, stored, expected_version);
    }
    let written = query.fetch_one(&mut **transaction).await?;
    Ok(written == lists.rows())
}

/// Locks a saga for a change until `tx` ends and loads it; `None` when it does not exist.
pub async fn load_for_update(tx: &mut Tx, saga_id: Uuid) -> Result<Option<StoredSaga>, RepoError> {
    Ok(load_for_update_after(tx, saga_id, None)
        .await?
        .map(|(stored, _)| stored))
}

/// Like [`load_for_update`], and also says whether the saga has logged the message `cause`
/// (`false` when `cause` is `None`): the lock, the read and the check in one statement.
pub async fn load_for_update_after(
    tx: &mut Tx,
    saga_id: Uuid,
    cause: Option<Uuid>,
) -> Result<Option<(StoredSaga, bool)>, RepoError> {
    #[derive(sqlx::FromRow)]
    struct Locked {
        #[sqlx(flatten)]
        saga: SagaRow,
        cause_logged: bool,
    }
    // A no-op write that returns the row: the row lock on PostgreSQL, the database write lock
    // on SQLite (taken with the read, so a second connection never works from a stale
    // snapshot), in one statement.
    let sql = format!(
        "UPDATE saga SET version = version WHERE saga_id = $1 RETURNING {SAGA_COLUMNS}, \
         EXISTS (SELECT 1 FROM saga_evento e WHERE e.saga_id = $1 AND e.event_id = $2) \
         AS cause_logged"
    );
    let row: Option<Locked> = with_tx!(&mut *tx, conn => sqlx::query_as(&sql)
        .bind(saga_id)
        .bind(cause)
        .fetch_optional(conn)
        .await)?;
    row.map(|locked| Ok((locked.saga.into_stored()?, locked.cause_logged)))
        .transpose()
}

/// Locks and loads every existing saga among `saga_ids` in one statement (see
/// [`load_for_update`]), for a batch of events that name their sagas.
pub async fn load_many_for_update(
    tx: &mut Tx,
    saga_ids: &[Uuid],
) -> Result<Vec<StoredSaga>, RepoError> {
    let list = ::storage::hex_list(saga_ids.iter().map(|id| [*id]));
    let sql = format!(
        "UPDATE saga SET version = version WHERE {} RETURNING {SAGA_COLUMNS}",
        ::storage::id_among(tx.backend(), "saga_id", 1)
    );
    let rows: Vec<SagaRow> = with_tx!(&mut *tx, conn => sqlx::query_as(&sql)
        .bind(list)
        .fetch_all(conn)
        .await)?;
    rows.into_iter().map(SagaRow::into_stored).collect()
}

/// Which of the `(saga, event)` pairs the log holds: one statement for a batch's causes (see
/// [`load_for_update_after`]).
pub async fn logged_among(
    tx: &mut Tx,
    pairs: &[(Uuid, Uuid)],
) -> Result<std::collections::HashSet<(Uuid, Uuid)>, RepoError> {
    let list = ::storage::hex_list(
        pairs
            .iter()
            .map(|(saga_id, event_id)| [*saga_id, *event_id]),
    );
    let sql = match tx.backend() {
        ::storage::Backend::Sqlite => {
            "SELECT e.saga_id, e.event_id FROM json_each($1) j JOIN saga_evento e \
             ON e.saga_id = unhex(j.value ->> 0) AND e.event_id = unhex(j.value ->> 1)"
        }
        // One index lookup per pair: joined, PostgreSQL estimated the list at a hundred pairs
        // and hashed the whole log instead; the `LIMIT` keeps the subquery from being
        // flattened back into that join (the pair is unique).
        ::storage::Backend::Postgres => {
            "SELECT e.saga_id, e.event_id FROM jsonb_array_elements($1::jsonb) j \
             CROSS JOIN LATERAL (SELECT saga_id, event_id FROM saga_evento \
                 WHERE saga_id = (j.value ->> 0)::uuid AND event_id = (j.value ->> 1)::uuid \
                 LIMIT 1) e"
        }
    };
    let logged: Vec<(Uuid, Uuid)> = with_tx!(&mut *tx, conn => sqlx::query_as(sql)
        .bind(list)
        .fetch_all(conn)
        .await)?;
    Ok(logged.into_iter().collect())
}

/// Reads a saga (no lock).
pub async fn find(db: &Db, saga_id: Uuid) -> Result<Option<StoredSaga>, RepoError> {
    let sql = format!("SELECT {SAGA_COLUMNS} FROM saga WHERE saga_id = $1");
    let row: Option<SagaRow> = with_reader!(db, conn => sqlx::query_as(&sql)
        .bind(saga_id)
        .fetch_optional(conn)
        .await)?;
    row.map(SagaRow::into_stored).transpose()
}

/// The saga whose `column` equals `value` (the most recent one if several share a partner).
async fn saga_id_by(tx: &mut Tx, column: &str, value: Uuid) -> Result<Option<Uuid>, RepoError> {
    let sql = format!("SELECT saga_id FROM saga WHERE {column} = $1 ORDER BY creada_en DESC, saga_id DESC LIMIT 1");
    Ok(with_tx!(tx, conn => sqlx::query_scalar(&sql)
        .bind(value)
        .fetch_optional(conn)
        .await)?)
}

pub async fn saga_of_onboarding(
    tx: &mut Tx,
    onboarding_id: Uuid,
) -> Result<Option<Uuid>, RepoError> {
    saga_id_by(tx, "onboarding_id", onboarding_id).await
}

/// Saga `saga_id` if it exists, else the (most recent) saga of `onboarding_id`: one statement.
pub async fn saga_by_id_or_onboarding(
    tx: &mut Tx,
    saga_id: Option<Uuid>,
    onboarding_id: Uuid,
) -> Result<Option<Uuid>, RepoError> {
    Ok(with_tx!(tx, conn => sqlx::query_scalar(
        "SELECT saga_id FROM saga WHERE saga_id = $1 OR onboarding_id = $2
         ORDER BY CASE WHEN saga_id = $1 THEN 0 ELSE 1 END, creada_en DESC, saga_id DESC
         LIMIT 1",
    )
    .bind(saga_id)
    .bind(onboarding_id)
    .fetch_optional(conn)
    .await)?)
}

/// The sagas among `saga_ids`, and those of `onboarding_ids`, as `(saga_id, onboarding_id)`:
/// what [`saga_by_id_or_onboarding`] would find for each of a batch's commands, in one
/// statement.
pub async fn sagas_by_ids_or_onboardings(
    tx: &mut Tx,
    saga_ids: &[Uuid],
    onboarding_ids: &[Uuid],
) -> Result<Vec<(Uuid, Uuid)>, RepoError> {
    let backend = tx.backend();
    let sql = format!(
        "SELECT saga_id, onboarding_id FROM saga WHERE {} OR {}",
        ::storage::id_among(backend, "saga_id", 1),
        ::storage::id_among(backend, "onboarding_id", 2)
    );
    Ok(with_tx!(&mut *tx, conn => sqlx::query_as(&sql)
        .bind(::storage::hex_list(saga_ids.iter().map(|id| [*id])))
        .bind(::storage::hex_list(onboarding_ids.iter().map(|id| [*id])))
        .fetch_all(conn)
        .await)?)
}

pub async fn saga_of_partner(tx: &mut Tx, partner_id: Uuid) -> Result<Option<Uuid>, RepoError> {
    saga_id_by(tx, "partner_id", partner_id).await
}

pub async fn saga_of_contrato(tx: &mut Tx, contrato_id: Uuid) -> Result<Option<Uuid>, RepoError> {
    saga_id_by(tx, "contrato_id", contrato_id).await
}

/// Appends rows to a saga's log in order, numbering them after its last row. The saga must be
/// locked (or new) in `tx`, so no other writer numbers rows of the same saga concurrently.
pub async fn append_log(
    tx: &mut Tx,
    saga: &Saga,
    entries: &[NewLogEntry],
) -> Result<(), sqlx::Error> {
    for entry in entries {
        with_tx!(&mut *tx, conn => bind_log_entry!(sqlx::query(INSERT_LOG), saga, entry)
            .execute(conn)
            .await
            .map(|r| r.rows_affected()))?;
    }
    Ok(())
}

/// A saga's log, oldest first.
pub async fn log(db: &Db, saga_id: Uuid) -> Result<Vec<LogEntry>, RepoError> {
    let sql = format!("SELECT {LOG_COLUMNS} FROM saga_evento WHERE saga_id = $1 ORDER BY orden");
    let rows: Vec<LogRow> = with_reader!(db, conn => sqlx::query_as(&sql)
        .bind(saga_id)
        .fetch_all(conn)
        .await)?;
    rows.into_iter().map(LogRow::into_entry).collect()
}

/// Up to `limit` sagas whose step deadline passed before `now`, the oldest deadline first.
pub async fn due(db: &Db, now: DateTime<Utc>, limit: i64) -> Result<Vec<Uuid>, sqlx::Error> {
    with_reader!(db, conn => sqlx::query_scalar(
        "SELECT saga_id FROM saga
         WHERE estado = 'INICIADA' AND paso_deadline IS NOT NULL AND paso_deadline < $1
         ORDER BY paso_deadline LIMIT $2",
    )
    .bind(now)
    .bind(limit)
    .fetch_all(conn)
    .await)
}

const LIST_WHERE: &str = "($1 IS NULL OR estado = $1)
    AND ($2 IS NULL OR partner_id = $2)
    AND ($3 IS NULL OR onboarding_id = $3)";

/// One page of sagas in id order plus the total matching `filter`: up to `limit + 1` rows
/// after the id `after`, so the caller knows whether more exist.
pub async fn list(
    db: &Db,
    filter: &SagaFilter,
    limit: i64,
    after: Option<Uuid>,
) -> Result<(Vec<StoredSaga>, i64), RepoError> {
    let estado = filter.estado.map(EstadoSaga::as_str);
    let sql = format!(
        "SELECT {SAGA_COLUMNS} FROM saga WHERE {LIST_WHERE}
         AND ($4 IS NULL OR saga_id > $4) ORDER BY saga_id LIMIT $5"
    );
    let rows: Vec<SagaRow> = with_reader!(db, conn => sqlx::query_as(&sql)
        .bind(estado)
        .bind(filter.partner_id)
        .bind(filter.onboarding_id)
        .bind(after)
        .bind(limit + 1)
        .fetch_all(conn)
        .await)?;
    let sql = format!("SELECT COUNT(*) FROM saga WHERE {LIST_WHERE}");
    let total: i64 = with_reader!(db, conn => sqlx::query_scalar(&sql)
        .bind(estado)
        .bind(filter.partner_id)
        .bind(filter.onboarding_id)
        .fetch_one(conn)
        .await)?;
    let sagas = rows
        .into_iter()
        .map(SagaRow::into_stored)
        .collect::<Result<_, _>>()?;
    Ok((sagas, total))
}

/// How many sagas are in each state, for `/metrics`.
pub async fn count_by_estado(db: &Db) -> Result<Vec<(String, i64)>, sqlx::Error> {
    with_reader!(db, conn => sqlx::query_as(
        "SELECT estado, COUNT(*) FROM saga GROUP BY estado ORDER BY estado",
    )
    .fetch_all(conn)
    .await)
}
