//! The event store, the read model and the templates over `::storage::Db`. Each query is
//! written once with `$n` placeholders and runs on SQLite or PostgreSQL through the `with_*!`
//! macros; the dialect branches are the row lock that serializes writers of one contract on
//! PostgreSQL (SQLite's single writer already does) and, on SQLite, a write's events and read
//! model sent as one query (`commit_events`). Appends check the expected version, and
//! the stream's primary key catches any writer that slipped past the check.

use chrono::{DateTime, NaiveDate, Utc};
use kernel::Amount;
use serde_json::Value;
use uuid::Uuid;

use ::storage::{with_reader, with_tx, Backend, Db, Tx};

use crate::domain::{
    Condiciones, Contrato, ContratoEvent, ContratoState, EstadoContrato, Moneda, Monto, Plantilla,
    TipoContrato, TipoPartner,
};
use crate::events::{self, CodecError};

/// The migrations of this service's tables, applied by `Db::migrate_with("alianzas", …)`.
pub const MIGRATIONS: &[::storage::Migration] = &[::storage::Migration {
    version: 1,
    name: "contrato_evento_snapshot_plantilla",
    sqlite: include_str!("../migrations/sqlite/0001_init.sql"),
    postgres: include_str!("../migrations/postgres/0001_init.sql"),
}];

#[derive(Debug, thiserror::Error)]
pub enum RepoError {
    /// The stream is not at the expected version: another writer appended first.
    #[error("the contract changed concurrently (expected version {expected})")]
    Conflict { expected: i64 },
    /// The partner already has its automatically created contract.
    #[error("the partner already has its contract")]
    PartnerTaken,
    /// A stored row no longer reads back (a manual edit or a bug).
    #[error("stored row is unreadable: {0}")]
    Corrupt(String),
    #[error(transparent)]
    Sqlx(#[from] sqlx::Error),
}

impl From<CodecError> for RepoError {
    fn from(error: CodecError) -> Self {
        RepoError::Corrupt(error.to_string())
    }
}

/// One stored event as read back: the raw stored data, and the event after upcasting.
#[derive(Debug, Clone, PartialEq)]
pub struct StoredEvent {
    pub version: i64,
    pub tipo: String,
    pub schema_version: i32,
    pub ocurrido_en: DateTime<Utc>,
    pub data: Value,
    pub event: ContratoEvent,
}

#[derive(Debug, sqlx::FromRow)]
struct EventRow {
    version: i64,
    tipo: String,
    schema_version: i32,
    data: String,
    ocurrido_en: DateTime<Utc>,
}

impl EventRow {
    fn into_stored(self) -> Result<StoredEvent, RepoError> {
        let data: Value = serde_json::from_str(&self.data)
            .map_err(|e| RepoError::Corrupt(format!("event {}: {e}", self.version)))?;
        let event = events::decode(&self.tipo, self.schema_version, data.clone())?;
        Ok(StoredEvent {
            version: self.version,
            tipo: self.tipo,
            schema_version: self.schema_version,
            ocurrido_en: self.ocurrido_en,
            data,
            event,
        })
    }
}

#[derive(Debug)]
struct SnapshotRow {
    version: i64,
    schema_version: i32,
    state: String,
}

const SELECT_EVENTS: &str = "SELECT version, tipo, schema_version, data, ocurrido_en
    FROM contrato_evento WHERE contrato_id = $1 AND version > $2 ORDER BY version";

/// A contract's latest snapshot (`kind` 0, its state in `data`) and the events after it (`kind`
/// 1), in one statement. Unordered: an `ORDER BY kind` would sort the whole tail in the
/// database, where [`split`] only puts the (already nearly ordered) events in order.
const SELECT_SNAPSHOT_AND_TAIL: &str = "WITH s AS (
        SELECT version, schema_version, state FROM contrato_snapshot
        WHERE contrato_id = $1 ORDER BY version DESC LIMIT 1)
    SELECT 0 AS kind, version, NULL AS tipo, schema_version, state AS data, NULL AS ocurrido_en
    FROM s
    UNION ALL
    SELECT 1, e.version, e.tipo, e.schema_version, e.data, e.ocurrido_en FROM contrato_evento e
    WHERE e.contrato_id = $1 AND e.version > COALESCE((SELECT version FROM s), 0)";

/// A row of [`SELECT_SNAPSHOT_AND_TAIL`].
#[derive(Debug, sqlx::FromRow)]
struct LoadRow {
    kind: i32,
    version: i64,
    tipo: Option<String>,
    schema_version: i32,
    data: String,
    ocurrido_en: Option<DateTime<Utc>>,
}

/// Splits the rows of [`SELECT_SNAPSHOT_AND_TAIL`] into the snapshot and the events after it.
fn split(id: Uuid, rows: Vec<LoadRow>) -> Result<Contrato, RepoError> {
    let mut snapshot = None;
    let mut events = Vec::with_capacity(rows.len());
    for row in rows {
        match (row.kind, row.tipo, row.ocurrido_en) {
            (0, _, _) => {
                snapshot = Some(SnapshotRow {
                    version: row.version,
                    schema_version: row.schema_version,
                    state: row.data,
                });
            }
            (_, Some(tipo), Some(ocurrido_en)) => events.push(EventRow {
                version: row.version,
                tipo,
                schema_version: row.schema_version,
                data: row.data,
                ocurrido_en,
            }),
            _ => {
                return Err(RepoError::Corrupt(format!(
                    "event {} of {id} has no type or time",
                    row.version
                )))
            }
        }
    }
    events.sort_by_key(|event| event.version);
    fold(id, snapshot, events)
}

fn fold(
    id: Uuid,
    snapshot: Option<SnapshotRow>,
    rows: Vec<EventRow>,
) -> Result<Contrato, RepoError> {
    let mut contrato = match snapshot {
        None => Contrato::new(id),
        Some(row) => {
            let state: Value = serde_json::from_str(&row.state)
                .map_err(|e| RepoError::Corrupt(format!("snapshot of {id}: {e}")))?;
            events::decode_snapshot(id, row.version, row.schema_version, state)?
        }
    };
    for row in rows {
        let stored = row.into_stored()?;
        contrato.apply(&stored.event, stored.ocurrido_en);
    }
    Ok(contrato)
}

/// Serializes the writers of contract `id` until `tx` ends (PostgreSQL row lock on the read
/// model; a no-op on SQLite, whose single writer already serializes transactions).
pub async fn lock(tx: &mut Tx, id: Uuid) -> Result<(), RepoError> {
    if tx.backend() == Backend::Postgres {
        let _locked: Option<i32> = with_tx!(&mut *tx, conn => sqlx::query_scalar(
            "SELECT 1 FROM contrato WHERE contrato_id = $1 FOR UPDATE",
        )
        .bind(id)
        .fetch_optional(conn)
        .await)?;
    }
    Ok(())
}

/// Loads contract `id` inside `tx`: its latest snapshot plus the later events. An unknown id
/// is the empty stream (version 0, no state).
pub async fn load(tx: &mut Tx, id: Uuid) -> Result<Contrato, RepoError> {
    let rows: Vec<LoadRow> = with_tx!(&mut *tx, conn => sqlx::query_as(SELECT_SNAPSHOT_AND_TAIL)
        .bind(id)
        .fetch_all(conn)
        .await)?;
    split(id, rows)
}

/// Like [`load`], outside a transaction (reader pool).
pub async fn load_latest(db: &Db, id: Uuid) -> Result<Contrato, RepoError> {
    let rows: Vec<LoadRow> = with_reader!(db, conn => sqlx::query_as(SELECT_SNAPSHOT_AND_TAIL)
        .bind(id)
        .fetch_all(conn)
        .await)?;
    split(id, rows)
}

/// The whole stream of contract `id`, oldest first (empty for an unknown id).
pub async fn read_stream(db: &Db, id: Uuid) -> Result<Vec<StoredEvent>, RepoError> {
    let rows: Vec<EventRow> = with_reader!(db, conn => sqlx::query_as(SELECT_EVENTS)
        .bind(id)
        .bind(0_i64)
        .fetch_all(conn)
        .await)?;
    rows.into_iter().map(EventRow::into_stored).collect()
}

/// Appends `events` to stream `id` as versions `expected + 1 ..`, refusing with `Conflict`
/// when the stream is not at `expected`: each insert checks the stream's version in the same
/// statement, and the primary key catches a writer that appends concurrently. On
/// PostgreSQL a conflict caught by the primary key aborts `tx`: the caller drops it.
pub async fn append(
    tx: &mut Tx,
    id: Uuid,
    expected: i64,
    new_events: &[ContratoEvent],
    at: DateTime<Utc>,
) -> Result<(), RepoError> {
    for (offset, event) in new_events.iter().enumerate() {
        let encoded = events::encode(event);
        let version = expected + 1 + offset as i64;
        let inserted = with_tx!(&mut *tx, conn => bind_event!(sqlx::query(INSERT_EVENT), id, version, encoded, at)
            .execute(conn)
            .await
            .map(|r| r.rows_affected()));
        appended(inserted, 1, expected)?;
    }
    Ok(())
}

/// One event at `version`, inserted only if the stream is at the version before it.
const INSERT_EVENT: &str = "INSERT INTO contrato_evento (contrato_id, version, tipo,
        schema_version, data, ocurrido_en)
     SELECT $1, $2, $3, $4, $5, $6
     WHERE (SELECT COALESCE(MAX(version), 0) FROM contrato_evento WHERE contrato_id = $1) = $7";
const INSERT_EVENT_PARAMS: usize = 7;

macro_rules! bind_event {
    ($query:expr, $id:expr, $version:expr, $encoded:expr, $at:expr) => {{
        let (version, encoded) = ($version, &$encoded);
        $query
            .bind($id)
            .bind(version)
            .bind(encoded.tipo)
            .bind(encoded.schema_version)
            .bind(encoded.data.to_string())
            .bind($at)
            .bind(version - 1)
    }};
}
use bind_event;

/// Turns the rows an append wrote (`wanted` when every event went in) into the outcome: fewer
/// rows, or a duplicate key, means another writer appended first.
fn appended(
    written: Result<u64, sqlx::Error>,
    wanted: u64,
    expected: i64,
) -> Result<(), RepoError> {
    match written {
        Ok(rows) if rows == wanted => Ok(()),
        Ok(_) => Err(RepoError::Conflict { expected }),
        Err(error) if ::storage::is_unique_violation(&error) => {
            Err(RepoError::Conflict { expected })
        }
        Err(error) => Err(error.into()),
    }
}

/// Stores a snapshot of `contrato` at its version.
pub async fn save_snapshot(tx: &mut Tx, contrato: &Contrato) -> Result<(), RepoError> {
    with_tx!(&mut *tx, conn => sqlx::query(
        "INSERT INTO contrato_snapshot (contrato_id, version, schema_version, state, tomado_en)
         VALUES ($1, $2, $3, $4, $5) ON CONFLICT (contrato_id, version) DO NOTHING",
    )
    .bind(contrato.id())
    .bind(contrato.version())
    .bind(events::SNAPSHOT_VERSION)
    .bind(events::encode_snapshot(contrato).to_string())
    .bind(kernel::now())
    .execute(conn)
    .await
    .map(|r| r.rows_affected()))?;
    Ok(())
}

/// How many snapshots contract `id` has, for tests and diagnostics.
pub async fn snapshot_versions(db: &Db, id: Uuid) -> Result<Vec<i64>, RepoError> {
    Ok(with_reader!(db, conn => sqlx::query_scalar(
        "SELECT version FROM contrato_snapshot WHERE contrato_id = $1 ORDER BY version",
    )
    .bind(id)
    .fetch_all(conn)
    .await)?)
}

/// Writes the read model row of `contrato` (its state after the append).
pub async fn project(tx: &mut Tx, contrato: &Contrato) -> Result<(), RepoError> {
    let Some(state) = contrato.state() else {
        return Ok(());
    };
    with_tx!(&mut *tx, conn => bind_projection!(sqlx::query(PROJECT), contrato, state)
        .execute(conn)
        .await
        .map(|r| r.rows_affected()))?;
    Ok(())
}

/// The read model's row of a contract, inserted or replaced: one changed row either way.
const PROJECT: &str = "INSERT INTO contrato (contrato_id, partner_id, onboarding_id, tipo,
        monto_centavos, moneda, condiciones, fecha_inicio, fecha_fin, estado, version,
        fecha_creacion, fecha_actualizacion)
     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13)
     ON CONFLICT (contrato_id) DO UPDATE SET tipo = excluded.tipo,
        monto_centavos = excluded.monto_centavos, moneda = excluded.moneda,
        condiciones = excluded.condiciones, fecha_fin = excluded.fecha_fin,
        estado = excluded.estado, version = excluded.version,
        fecha_actualizacion = excluded.fecha_actualizacion";

const PROJECT_PARAMS: usize = 13;

macro_rules! bind_projection {
    ($query:expr, $contrato:expr, $state:expr) => {{
        let (contrato, state) = ($contrato, $state);
        $query
            .bind(contrato.id())
            .bind(state.partner_id)
            .bind(state.onboarding_id)
            .bind(state.tipo.as_str())
            .bind(state.monto.amount().cents())
            .bind(state.moneda.as_str())
            .bind(state.condiciones.as_ref().map(Condiciones::as_str))
            .bind(state.fecha_inicio)
            .bind(state.fecha_fin)
            .bind(state.estado.as_str())
            .bind(contrato.version())
            .bind(state.fecha_creacion)
            .bind(state.fecha_actualizacion)
    }};
}
use bind_projection;

/// Appends `new_events` to `contrato`'s stream at its version, applies them, snapshots when
/// the new version crosses a multiple of `snapshot_every`, and updates the read model — all in
/// `tx`. Returns the contract after the events.
pub async fn commit_events(
    tx: &mut Tx,
    contrato: &Contrato,
    new_events: &[ContratoEvent],
    at: DateTime<Utc>,
    snapshot_every: u32,
) -> Result<Contrato, RepoError> {
    let write = Write {
        contrato,
        events: new_events,
        at,
        partner: None,
    };
    let mut after = commit_many(tx, std::slice::from_ref(&write), snapshot_every).await?;
    Ok(after.pop().expect("one contract written"))
}

/// New events of one contract, waiting to be written with others (see [`commit_many`]).
pub struct Write<'a> {
    /// The contract as loaded: its stream is expected at this version.
    pub contrato: &'a Contrato,
    pub events: &'a [ContratoEvent],
    pub at: DateTime<Utc>,
    /// Links the contract first as this partner's automatically created one.
    pub partner: Option<Uuid>,
}

/// Writes each of `writes` as [`commit_events`] writes one, its partner link first (see
/// [`link_partner`]); returns the contracts after their events, in order.
///
/// On SQLite every statement goes in one query: one trip to the connection's thread instead of
/// one per statement (see `storage::renumbered`). Each statement changes one row when its
/// stream was at its version and its partner had no contract, so the total says whether all
/// did; when not, which one failed cannot be told, and a refused link comes back as a
/// `Conflict` too. PostgreSQL prepares one statement per query, so there the writes go as one
/// statement of data-modifying `WITH`s ([`commit_many_postgres`]), with the same answer; two
/// writes of one contract, which that statement could not chain, run in turn.
pub async fn commit_many(
    tx: &mut Tx,
    writes: &[Write<'_>],
    snapshot_every: u32,
) -> Result<Vec<Contrato>, RepoError> {
    let afters: Vec<Contrato> = writes
        .iter()
        .map(|write| {
            let mut after = write.contrato.clone();
            for event in write.events {
                after.apply(event, write.at);
            }
            after
        })
        .collect();
    let Some(first) = writes.first() else {
        return Ok(afters);
    };
    match &mut tx.conn {
        ::storage::TxConn::Sqlite(transaction) => {
            let encoded: Vec<Vec<_>> = writes
                .iter()
                .map(|write| write.events.iter().map(events::encode).collect())
                .collect();
            let statements: Vec<(&str, usize)> = writes
                .iter()
                .zip(&encoded)
                .zip(&afters)
                .flat_map(|((write, encoded), after)| {
                    write
                        .partner
                        .map(|_| (LINK_PARTNER, LINK_PARTNER_PARAMS))
                        .into_iter()
                        .chain(encoded.iter().map(|_| (INSERT_EVENT, INSERT_EVENT_PARAMS)))
                        .chain(after.state().map(|_| (PROJECT, PROJECT_PARAMS)))
                })
                .collect();
            let rows = statements.len() as u64;
            let sql = ::storage::joined(statements);
            let mut query = sqlx::query(&sql);
            for ((write, encoded), after) in writes.iter().zip(&encoded).zip(&afters) {
                let before = write.contrato.version();
                if let Some(partner) = write.partner {
                    query = query.bind(partner).bind(write.contrato.id());
                }
                for (offset, event) in encoded.iter().enumerate() {
                    let version = before + 1 + offset as i64;
                    query = bind_event!(query, write.contrato.id(), version, event, write.at);
                }
                if let Some(state) = after.state() {
                    query = bind_projection!(query, after, state);
                }
            }
            let written = query
                .execute(&mut **transaction)
                .await
                .map(|r| r.rows_affected());
            appended(written, rows, first.contrato.version())?;
        }
        ::storage::TxConn::Postgres(transaction) if distinct_contracts(writes) => {
            let all_written = commit_many_postgres(transaction, writes, &afters).await;
            appended(all_written.map(u64::from), 1, first.contrato.version())?;
        }
        ::storage::TxConn::Postgres(_) => {
            for (write, after) in writes.iter().zip(&afters) {
                if let Some(partner) = write.partner {
                    link_partner(tx, partner, write.contrato.id()).await?;
                }
                let (id, before) = (write.contrato.id(), write.contrato.version());
                append(tx, id, before, write.events, write.at).await?;
                project(tx, after).await?;
            }
        }
    }
    let every = i64::from(snapshot_every.max(1));
    for (write, after) in writes.iter().zip(&afters) {
        if after.version() / every > write.contrato.version() / every {
            save_snapshot(tx, after).await?;
        }
    }
    Ok(afters)
}

/// Whether no contract has two of `writes`: only then can they go as one statement on
/// PostgreSQL, whose parts all read the snapshot from before it (a contract's second write
/// would not see its first).
fn distinct_contracts(writes: &[Write<'_>]) -> bool {
    let mut seen = std::collections::HashSet::with_capacity(writes.len());
    writes.iter().all(|write| seen.insert(write.contrato.id()))
}

/// [`commit_many`] on PostgreSQL for writes of distinct contracts: one statement of
/// data-modifying `WITH`s — the partner links, every event (inserted only while its stream is
/// at the version its write read), the read model's rows — from three JSON lists, instead of one
/// statement (one round trip) each. Answers whether every row was written.
async fn commit_many_postgres(
    transaction: &mut sqlx::Transaction<'static, sqlx::Postgres>,
    writes: &[Write<'_>],
    afters: &[Contrato],
) -> Result<bool, sqlx::Error> {
    let mut vinculos = Vec::new();
    let mut eventos = Vec::new();
    let mut proyectados = Vec::new();
    for (write, after) in writes.iter().zip(afters) {
        let (id, before) = (write.contrato.id(), write.contrato.version());
        if let Some(partner) = write.partner {
            vinculos.push(serde_json::json!({"partner_id": partner, "contrato_id": id}));
        }
        for (offset, event) in write.events.iter().enumerate() {
            let encoded = events::encode(event);
            eventos.push(serde_json::json!({
                "contrato_id": id,
                "version": before + 1 + offset as i64,
                "antes": before,
                "tipo": encoded.tipo,
                "schema_version": encoded.schema_version,
                "data": encoded.data.to_string(),
                "ocurrido_en": write.at,
            }));
        }
        if let Some(state) = after.state() {
            proyectados.push(serde_json::json!({
                "contrato_id": id,
                "partner_id": state.partner_id,
                "onboarding_id": state.onboarding_id,
                "tipo": state.tipo.as_str(),
                "monto_centavos": state.monto.amount().cents(),
                "moneda": state.moneda.as_str(),
                "condiciones": state.condiciones.as_ref().map(Condiciones::as_str),
                "fecha_inicio": state.fecha_inicio,
                "fecha_fin": state.fecha_fin,
                "estado": state.estado.as_str(),
                "version": after.version(),
                "fecha_creacion": state.fecha_creacion,
                "fecha_actualizacion": state.fecha_actualizacion,
            }));
        }
    }
    let wanted = (vinculos.len() + eventos.len() + proyectados.len()) as i64;
    let written = sqlx::query_scalar::<_, i64>(COMMIT_MANY_POSTGRES)
        .bind(serde_json::Value::Array(vinculos).to_string())
        .bind(serde_json::Value::Array(eventos).to_string())
        .bind(serde_json::Value::Array(proyectados).to_string())
        .fetch_one(&mut **transaction)
        .await?;
    Ok(written == wanted)
}

/// See [`commit_many_postgres`]. An event's check reads its stream as the statement found it,
/// so every event of one write is checked against the version the write read (`antes`); the
/// primary key still refuses a twin that appended concurrently.
const COMMIT_MANY_POSTGRES: &str = "WITH
    vinculos AS (INSERT INTO contrato_partner (partner_id, contrato_id)
        SELECT partner_id, contrato_id
        FROM jsonb_to_recordset($1::jsonb) AS r (partner_id uuid, contrato_id uuid)
        ON CONFLICT (partner_id) DO NOTHING
        RETURNING 1),
    eventos AS (INSERT INTO contrato_evento (contrato_id, version, tipo, schema_version, data,
            ocurrido_en)
        SELECT r.contrato_id, r.version, r.tipo, r.schema_version, r.data, r.ocurrido_en
        FROM jsonb_to_recordset($2::jsonb) AS r (contrato_id uuid, version bigint, antes bigint,
            tipo text, schema_version integer, data text, ocurrido_en timestamptz)
        WHERE (SELECT COALESCE(MAX(e.version), 0) FROM contrato_evento e
               WHERE e.contrato_id = r.contrato_id) = r.antes
        RETURNING 1),
    proyectados AS (INSERT INTO contrato (contrato_id, partner_id, onboarding_id, tipo,
            monto_centavos, moneda, condiciones, fecha_inicio, fecha_fin, estado, version,
            fecha_creacion, fecha_actualizacion)
        SELECT contrato_id, partner_id, onboarding_id, tipo, monto_centavos, moneda,
            condiciones, fecha_inicio, fecha_fin, estado, version, fecha_creacion,
            fecha_actualizacion
        FROM jsonb_to_recordset($3::jsonb) AS r (contrato_id uuid, partner_id uuid,
            onboarding_id uuid, tipo text, monto_centavos bigint, moneda text, condiciones text,
            fecha_inicio date, fecha_fin date, estado text, version bigint,
            fecha_creacion timestamptz, fecha_actualizacion timestamptz)
        ON CONFLICT (contrato_id) DO UPDATE SET tipo = excluded.tipo,
            monto_centavos = excluded.monto_centavos, moneda = excluded.moneda,
            condiciones = excluded.condiciones, fecha_fin = excluded.fecha_fin,
            estado = excluded.estado, version = excluded.version,
            fecha_actualizacion = excluded.fecha_actualizacion
        RETURNING 1)
    SELECT (SELECT COUNT(*) FROM vinculos) + (SELECT COUNT(*) FROM eventos)
        + (SELECT COUNT(*) FROM proyectados)";

const CONTRATO_COLUMNS: &str = "contrato_id, partner_id, onboarding_id, tipo, monto_centavos, \
    moneda, condiciones, fecha_inicio, fecha_fin, estado, version, fecha_creacion, fecha_actualizacion";

#[derive(Debug, sqlx::FromRow)]
struct ContratoRow {
    contrato_id: Uuid,
    partner_id: Uuid,
    onboarding_id: Option<Uuid>,
    tipo: String,
    monto_centavos: i64,
    moneda: String,
    condiciones: Option<String>,
    fecha_inicio: NaiveDate,
    fecha_fin: Option<NaiveDate>,
    estado: String,
    version: i64,
    fecha_creacion: DateTime<Utc>,
    fecha_actualizacion: DateTime<Utc>,
}

impl ContratoRow {
    fn into_domain(self) -> Result<Contrato, RepoError> {
        let id = self.contrato_id;
        let bad = |e: crate::domain::ValueError| RepoError::Corrupt(format!("contrato {id}: {e}"));
        let state = ContratoState {
            partner_id: self.partner_id,
            onboarding_id: self.onboarding_id,
            tipo: TipoContrato::parse(&self.tipo).map_err(bad)?,
            monto: Monto::new(Amount::from_cents(self.monto_centavos)).map_err(bad)?,
            moneda: Moneda::parse(&self.moneda).map_err(bad)?,
            condiciones: Condiciones::parse(self.condiciones.as_deref()).map_err(bad)?,
            fecha_inicio: self.fecha_inicio,
            fecha_fin: self.fecha_fin,
            estado: EstadoContrato::parse(&self.estado).map_err(bad)?,
            fecha_creacion: self.fecha_creacion,
            fecha_actualizacion: self.fecha_actualizacion,
        };
        Ok(Contrato::from_snapshot(id, self.version, Some(state)))
    }
}

/// A contract from the read model.
pub async fn find(db: &Db, id: Uuid) -> Result<Option<Contrato>, RepoError> {
    let sql = format!("SELECT {CONTRATO_COLUMNS} FROM contrato WHERE contrato_id = $1");
    let row: Option<ContratoRow> = with_reader!(db, conn => sqlx::query_as(&sql)
        .bind(id)
        .fetch_optional(conn)
        .await)?;
    row.map(ContratoRow::into_domain).transpose()
}

/// List filters; `None` means "any".
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ContratoFilter {
    pub partner_id: Option<Uuid>,
    pub estado: Option<EstadoContrato>,
    pub tipo: Option<TipoContrato>,
}

const LIST_WHERE: &str =
    "($1 IS NULL OR partner_id = $1) AND ($2 IS NULL OR estado = $2) AND ($3 IS NULL OR tipo = $3)";

/// One page of contracts in id (creation) order from the read model, up to `limit + 1` rows
/// after `after`, plus the total matching the filter.
pub async fn list(
    db: &Db,
    filter: &ContratoFilter,
    limit: i64,
    after: Option<Uuid>,
) -> Result<(Vec<Contrato>, i64), RepoError> {
    let estado = filter.estado.map(EstadoContrato::as_str);
    let tipo = filter.tipo.map(TipoContrato::as_str);
    let sql = format!(
        "SELECT {CONTRATO_COLUMNS} FROM contrato WHERE {LIST_WHERE}
         AND ($4 IS NULL OR contrato_id > $4) ORDER BY contrato_id LIMIT $5"
    );
    let rows: Vec<ContratoRow> = with_reader!(db, conn => sqlx::query_as(&sql)
        .bind(filter.partner_id)
        .bind(estado)
        .bind(tipo)
        .bind(after)
        .bind(limit + 1)
        .fetch_all(conn)
        .await)?;
    let sql = format!("SELECT COUNT(*) FROM contrato WHERE {LIST_WHERE}");
    let total: i64 = with_reader!(db, conn => sqlx::query_scalar(&sql)
        .bind(filter.partner_id)
        .bind(estado)
        .bind(tipo)
        .fetch_one(conn)
        .await)?;
    let contratos = rows
        .into_iter()
        .map(ContratoRow::into_domain)
        .collect::<Result<_, _>>()?;
    Ok((contratos, total))
}

/// Contracts whose `fecha_fin` is before `hoy` and that are still live, oldest first.
pub async fn expired(db: &Db, hoy: NaiveDate, limit: i64) -> Result<Vec<Uuid>, RepoError> {
    Ok(with_reader!(db, conn => sqlx::query_scalar(
        "SELECT contrato_id FROM contrato WHERE fecha_fin < $1
         AND estado IN ('pendiente', 'activo', 'suspendido') ORDER BY contrato_id LIMIT $2",
    )
    .bind(hoy)
    .bind(limit)
    .fetch_all(conn)
    .await)?)
}

/// The contract created automatically for `partner_id`, if any.
pub async fn contrato_of_partner(tx: &mut Tx, partner_id: Uuid) -> Result<Option<Uuid>, RepoError> {
    Ok(with_tx!(tx, conn => sqlx::query_scalar(
        "SELECT contrato_id FROM contrato_partner WHERE partner_id = $1",
    )
    .bind(partner_id)
    .fetch_optional(conn)
    .await)?)
}

const LINK_PARTNER: &str = "INSERT INTO contrato_partner (partner_id, contrato_id) VALUES ($1, $2)
     ON CONFLICT (partner_id) DO NOTHING";
const LINK_PARTNER_PARAMS: usize = 2;

/// The contracts created automatically for those of `partner_ids` that have one, as
/// `(partner_id, contrato_id)`, in one statement.
pub async fn contratos_of_partners(
    tx: &mut Tx,
    partner_ids: &[Uuid],
) -> Result<Vec<(Uuid, Uuid)>, RepoError> {
    let sql = format!(
        "SELECT partner_id, contrato_id FROM contrato_partner WHERE {}",
        ::storage::id_among(tx.backend(), "partner_id", 1)
    );
    Ok(with_tx!(tx, conn => sqlx::query_as(&sql)
        .bind(::storage::hex_list(partner_ids.iter().map(|id| [*id])))
        .fetch_all(conn)
        .await)?)
}

/// Records the partner's automatically created contract; `PartnerTaken` when it has one.
/// A twin linking concurrently is waited for; the refusal leaves `tx` usable (no constraint
/// violation), so the caller can read the winner's link in the same transaction.
pub async fn link_partner(
    tx: &mut Tx,
    partner_id: Uuid,
    contrato_id: Uuid,
) -> Result<(), RepoError> {
    let inserted = with_tx!(tx, conn => sqlx::query(LINK_PARTNER)
    .bind(partner_id)
    .bind(contrato_id)
    .execute(conn)
    .await
    .map(|r| r.rows_affected()))?;
    if inserted == 0 {
        return Err(RepoError::PartnerTaken);
    }
    Ok(())
}

#[derive(Debug, sqlx::FromRow)]
struct PlantillaRow {
    tipo_partner: String,
    tipo: String,
    monto_centavos: i64,
    moneda: String,
    condiciones: Option<String>,
    duracion_dias: i64,
}

impl PlantillaRow {
    fn into_domain(self) -> Result<Plantilla, RepoError> {
        let bad = |e: crate::domain::ValueError| {
            RepoError::Corrupt(format!("plantilla {}: {e}", self.tipo_partner))
        };
        Ok(Plantilla {
            tipo_partner: TipoPartner::parse(&self.tipo_partner).map_err(bad)?,
            tipo: TipoContrato::parse(&self.tipo).map_err(bad)?,
            monto: Monto::new(Amount::from_cents(self.monto_centavos)).map_err(bad)?,
            moneda: Moneda::parse(&self.moneda).map_err(bad)?,
            condiciones: Condiciones::parse(self.condiciones.as_deref()).map_err(bad)?,
            duracion_dias: crate::domain::parse_duracion_dias(self.duracion_dias).map_err(bad)?,
        })
    }
}

const PLANTILLA_COLUMNS: &str =
    "tipo_partner, tipo, monto_centavos, moneda, condiciones, CAST(duracion_dias AS BIGINT) AS duracion_dias";

/// Inserts `plantillas` that do not exist yet (an operator's edits are kept).
pub async fn seed_plantillas(db: &Db, plantillas: &[Plantilla]) -> Result<(), RepoError> {
    let mut tx = db.begin().await.map_err(storage_error)?;
    for plantilla in plantillas {
        write_plantilla(&mut tx, plantilla, false).await?;
    }
    tx.commit().await.map_err(storage_error)?;
    Ok(())
}

fn storage_error(error: ::storage::StorageError) -> RepoError {
    match error {
        ::storage::StorageError::Sqlx(error) => RepoError::Sqlx(error),
        other => RepoError::Corrupt(other.to_string()),
    }
}

/// Inserts or (with `replace`) overwrites a template. Returns whether it was new.
pub async fn write_plantilla(
    tx: &mut Tx,
    plantilla: &Plantilla,
    replace: bool,
) -> Result<bool, RepoError> {
    let existed: Option<i32> = with_tx!(&mut *tx, conn => sqlx::query_scalar(
        "SELECT 1 FROM plantilla WHERE tipo_partner = $1",
    )
    .bind(plantilla.tipo_partner.as_str())
    .fetch_optional(conn)
    .await)?;
    let on_conflict = if replace {
        "DO UPDATE SET tipo = excluded.tipo, monto_centavos = excluded.monto_centavos,
            moneda = excluded.moneda, condiciones = excluded.condiciones,
            duracion_dias = excluded.duracion_dias, fecha_actualizacion = excluded.fecha_actualizacion"
    } else {
        "DO NOTHING"
    };
    let sql = format!(
        "INSERT INTO plantilla (tipo_partner, tipo, monto_centavos, moneda, condiciones,
            duracion_dias, fecha_actualizacion) VALUES ($1, $2, $3, $4, $5, $6, $7)
         ON CONFLICT (tipo_partner) {on_conflict}"
    );
    with_tx!(&mut *tx, conn => sqlx::query(&sql)
        .bind(plantilla.tipo_partner.as_str())
        .bind(plantilla.tipo.as_str())
        .bind(plantilla.monto.amount().cents())
        .bind(plantilla.moneda.as_str())
        .bind(plantilla.condiciones.as_ref().map(Condiciones::as_str))
        .bind(plantilla.duracion_dias as i32)
        .bind(kernel::now())
        .execute(conn)
        .await
        .map(|r| r.rows_affected()))?;
    Ok(existed.is_none())
}

/// Every template, in partner-kind order.
pub async fn list_plantillas(db: &Db) -> Result<Vec<Plantilla>, RepoError> {
    let sql = format!("SELECT {PLANTILLA_COLUMNS} FROM plantilla");
    let rows: Vec<PlantillaRow> = with_reader!(db, conn => sqlx::query_as(&sql)
        .fetch_all(conn)
        .await)?;
    into_plantillas(rows)
}

/// Every template, read through `tx` (see [`contrato_y_plantilla_in`]).
pub async fn plantillas_in(tx: &mut Tx) -> Result<Vec<Plantilla>, RepoError> {
    let sql = format!("SELECT {PLANTILLA_COLUMNS} FROM plantilla");
    let rows: Vec<PlantillaRow> = with_tx!(tx, conn => sqlx::query_as(&sql)
        .fetch_all(conn)
        .await)?;
    into_plantillas(rows)
}

fn into_plantillas(rows: Vec<PlantillaRow>) -> Result<Vec<Plantilla>, RepoError> {
    let mut plantillas = rows
        .into_iter()
        .map(PlantillaRow::into_domain)
        .collect::<Result<Vec<_>, _>>()?;
    plantillas.sort_by_key(|p| TipoPartner::ALL.iter().position(|t| *t == p.tipo_partner));
    Ok(plantillas)
}

fn select_plantilla() -> String {
    format!("SELECT {PLANTILLA_COLUMNS} FROM plantilla WHERE tipo_partner = $1")
}

/// The template of one partner kind.
pub async fn find_plantilla(db: &Db, tipo: TipoPartner) -> Result<Option<Plantilla>, RepoError> {
    let sql = select_plantilla();
    let row: Option<PlantillaRow> = with_reader!(db, conn => sqlx::query_as(&sql)
        .bind(tipo.as_str())
        .fetch_optional(conn)
        .await)?;
    row.map(PlantillaRow::into_domain).transpose()
}

/// What creating a partner's contract reads inside `tx`, in one query (one round trip instead
/// of two): the contract the partner already has, if any, and the template of its kind.
pub async fn contrato_y_plantilla_in(
    tx: &mut Tx,
    partner_id: Uuid,
    tipo: TipoPartner,
) -> Result<(Option<Uuid>, Option<Plantilla>), RepoError> {
    #[derive(sqlx::FromRow)]
    struct Row {
        existente: Option<Uuid>,
        tipo_partner: Option<String>,
        tipo: Option<String>,
        monto_centavos: Option<i64>,
        moneda: Option<String>,
        condiciones: Option<String>,
        duracion_dias: Option<i64>,
    }
    let row: Row = with_tx!(tx, conn => sqlx::query_as(
        "SELECT (SELECT contrato_id FROM contrato_partner WHERE partner_id = $1) AS existente,
            p.tipo_partner, p.tipo, p.monto_centavos, p.moneda, p.condiciones,
            CAST(p.duracion_dias AS BIGINT) AS duracion_dias
         FROM (SELECT 1 AS uno) AS uno LEFT JOIN plantilla p ON p.tipo_partner = $2",
    )
    .bind(partner_id)
    .bind(tipo.as_str())
    .fetch_one(conn)
    .await)?;
    let plantilla = match (
        row.tipo_partner,
        row.tipo,
        row.monto_centavos,
        row.moneda,
        row.duracion_dias,
    ) {
        (
            Some(tipo_partner),
            Some(tipo),
            Some(monto_centavos),
            Some(moneda),
            Some(duracion_dias),
        ) => Some(
            PlantillaRow {
                tipo_partner,
                tipo,
                monto_centavos,
                moneda,
                condiciones: row.condiciones,
                duracion_dias,
            }
            .into_domain()?,
        ),
        _ => None,
    };
    Ok((row.existente, plantilla))
}
