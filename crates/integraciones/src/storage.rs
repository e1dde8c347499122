//! The partner repository over `::storage::Db`: each query is written once with `$n`
//! placeholders and runs on SQLite or PostgreSQL through the `with_*!` macros. The only dialect
//! branch is the row lock taken when a partner is loaded for a change (PostgreSQL `FOR UPDATE`;
//! SQLite's single writer already serializes write transactions).

use chrono::{DateTime, Utc};
use serde_json::{Map, Value};
use uuid::Uuid;

use ::storage::{with_reader, with_tx, Backend, Db, Tx};

use crate::domain::{
    Descripcion, Direccion, Email, EstadoKyc, EstadoPartner, Integracion, Motivo, Nombre, Partner,
    PartnerState, Telefono, TipoIntegracion, TipoPartner,
};

/// The migrations of this service's tables, applied by `Db::migrate_with("integraciones", …)`.
pub const MIGRATIONS: &[::storage::Migration] = &[
    ::storage::Migration {
        version: 1,
        name: "partner_integracion",
        sqlite: include_str!("../migrations/sqlite/0001_init.sql"),
        postgres: include_str!("../migrations/postgres/0001_init.sql"),
    },
    ::storage::Migration {
        version: 2,
        name: "partner_busqueda_trgm",
        sqlite: include_str!("../migrations/sqlite/0002_partner_busqueda_trgm.sql"),
        postgres: include_str!("../migrations/postgres/0002_partner_busqueda_trgm.sql"),
    },
    ::storage::Migration {
        version: 3,
        name: "partner_conteo",
        sqlite: include_str!("../migrations/sqlite/0003_partner_conteo.sql"),
        postgres: include_str!("../migrations/postgres/0003_partner_conteo.sql"),
    },
    ::storage::Migration {
        version: 4,
        name: "partner_conteo_delta",
        sqlite: include_str!("../migrations/sqlite/0004_partner_conteo_delta.sql"),
        postgres: include_str!("../migrations/postgres/0004_partner_conteo_delta.sql"),
    },
];

#[derive(Debug, thiserror::Error)]
pub enum RepoError {
    /// Another live partner has this e-mail (the unique index said so).
    #[error("the e-mail is used by another live partner")]
    EmailTaken,
    /// A partner was already created for this onboarding.
    #[error("a partner already exists for this onboarding")]
    OnboardingTaken,
    /// A stored row no longer parses into the domain (a manual edit or a bug).
    #[error("stored row is unreadable: {0}")]
    Corrupt(String),
    #[error(transparent)]
    Sqlx(#[from] sqlx::Error),
}

/// List filters; `None` means "any". `q` is matched case-insensitively as a substring of the
/// name or the e-mail.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct PartnerFilter {
    pub estado: Option<EstadoPartner>,
    pub tipo: Option<TipoPartner>,
    pub estado_kyc: Option<EstadoKyc>,
    pub q: Option<String>,
}

const PARTNER_COLUMNS: &str = "partner_id, nombre, email, telefono, direccion, tipo, estado, \
    estado_kyc, documentos_kyc, onboarding_id, fecha_creacion, fecha_actualizacion";

const INTEGRACION_COLUMNS: &str = "integracion_id, partner_id, tipo, nombre, descripcion, \
    configuracion, activa, fecha_creacion, fecha_revocacion, motivo_revocacion";

#[derive(Debug, sqlx::FromRow)]
struct PartnerRow {
    partner_id: Uuid,
    nombre: String,
    email: String,
    telefono: Option<String>,
    direccion: Option<String>,
    tipo: String,
    estado: String,
    estado_kyc: String,
    documentos_kyc: Option<String>,
    onboarding_id: Option<Uuid>,
    fecha_creacion: DateTime<Utc>,
    fecha_actualizacion: DateTime<Utc>,
}

#[derive(Debug, sqlx::FromRow)]
struct IntegracionRow {
    integracion_id: Uuid,
    partner_id: Uuid,
    tipo: String,
    nombre: String,
    descripcion: Option<String>,
    configuracion: String,
    activa: bool,
    fecha_creacion: DateTime<Utc>,
    fecha_revocacion: Option<DateTime<Utc>>,
    motivo_revocacion: Option<String>,
}

fn corrupt(what: &str, id: Uuid, error: impl std::fmt::Display) -> RepoError {
    RepoError::Corrupt(format!("{what} {id}: {error}"))
}

fn json_object(what: &str, id: Uuid, text: &str) -> Result<Map<String, Value>, RepoError> {
    match serde_json::from_str(text) {
        Ok(Value::Object(map)) => Ok(map),
        Ok(_) => Err(corrupt(what, id, "not a JSON object")),
        Err(error) => Err(corrupt(what, id, error)),
    }
}

impl PartnerRow {
    fn into_state(self, integraciones: Vec<Integracion>) -> Result<PartnerState, RepoError> {
        let id = self.partner_id;
        let bad = |error: crate::domain::ValueError| corrupt("partner", id, error);
        Ok(PartnerState {
            id,
            nombre: Nombre::parse(&self.nombre).map_err(bad)?,
            email: Email::parse(&self.email).map_err(bad)?,
            telefono: Telefono::parse(self.telefono.as_deref()).map_err(bad)?,
            direccion: Direccion::parse(self.direccion.as_deref()).map_err(bad)?,
            tipo: TipoPartner::parse(&self.tipo).map_err(bad)?,
            estado: EstadoPartner::parse(&self.estado).map_err(bad)?,
            estado_kyc: EstadoKyc::parse(&self.estado_kyc).map_err(bad)?,
            documentos_kyc: self
                .documentos_kyc
                .as_deref()
                .map(|text| json_object("partner", id, text))
                .transpose()?,
            onboarding_id: self.onboarding_id,
            fecha_creacion: self.fecha_creacion,
            fecha_actualizacion: self.fecha_actualizacion,
            integraciones,
        })
    }
}

impl IntegracionRow {
    fn into_domain(self) -> Result<Integracion, RepoError> {
        let id = self.integracion_id;
        let bad = |error: crate::domain::ValueError| corrupt("integracion", id, error);
        Ok(Integracion {
            id,
            partner_id: self.partner_id,
            tipo: TipoIntegracion::parse(&self.tipo).map_err(bad)?,
            nombre: Nombre::parse(&self.nombre).map_err(bad)?,
            descripcion: Descripcion::parse(self.descripcion.as_deref()).map_err(bad)?,
            configuracion: json_object("integracion", id, &self.configuracion)?,
            activa: self.activa,
            fecha_creacion: self.fecha_creacion,
            fecha_revocacion: self.fecha_revocacion,
            motivo_revocacion: Motivo::parse(self.motivo_revocacion.as_deref()).map_err(bad)?,
        })
    }
}

/// Which unique index a violation hit. SQLite names the column, PostgreSQL the index; both
/// contain the word we look for.
fn unique_violation(error: &sqlx::Error) -> Option<RepoError> {
    let sqlx::Error::Database(db) = error else {
        return None;
    };
    if !db.is_unique_violation() {
        return None;
    }
    let text = format!("{} {}", db.constraint().unwrap_or_default(), db.message());
    if text.contains("email") {
        Some(RepoError::EmailTaken)
    } else if text.contains("onboarding") {
        Some(RepoError::OnboardingTaken)
    } else {
        None
    }
}

fn documentos_text(partner: &PartnerState) -> Option<String> {
    partner
        .documentos_kyc
        .as_ref()
        .map(|map| Value::Object(map.clone()).to_string())
}

/// The partner row's insert; `insert_partner` and `insert_partner_unless_taken` differ only in
/// what a unique index's refusal does.
macro_rules! insert_partner_sql {
    () => {
        "INSERT INTO partner (partner_id, nombre, nombre_busqueda, email, email_normalizado,
            telefono, direccion, tipo, estado, estado_kyc, documentos_kyc, onboarding_id,
            fecha_creacion, fecha_actualizacion)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14)"
    };
}

/// Runs `sql` (the partner insert, with or without a conflict clause) for `state`; returns the
/// rows it inserted.
async fn insert_partner_row(
    tx: &mut Tx,
    state: &PartnerState,
    sql: &'static str,
) -> Result<u64, sqlx::Error> {
    with_tx!(tx, conn => bind_partner!(sqlx::query(sql), state)
    .execute(conn)
    .await
    .map(|r| r.rows_affected()))
}

/// Binds the parameters of [`insert_partner_sql!`] for `state`.
macro_rules! bind_partner {
    ($query:expr, $state:expr) => {{
        let state = $state;
        $query
            .bind(state.id)
            .bind(state.nombre.as_str())
            .bind(state.nombre.as_str().to_lowercase())
            .bind(state.email.as_str())
            .bind(state.email.normalized())
            .bind(state.telefono.as_ref().map(Telefono::as_str))
            .bind(state.direccion.as_ref().map(Direccion::as_str))
            .bind(state.tipo.as_str())
            .bind(state.estado.as_str())
            .bind(state.estado_kyc.as_str())
            .bind(documentos_text(state))
            .bind(state.onboarding_id)
            .bind(state.fecha_creacion)
            .bind(state.fecha_actualizacion)
    }};
}
use bind_partner;

/// PostgreSQL: inserts a new partner without integrations together with its outbox row
/// (`::storage::outbox::row`) in one statement that commits on its own, one round trip
/// instead of four. `Ok(false)`: a live partner holds the e-mail, and nothing was written.
/// The caller wakes the relay after a write.
///
/// A plain insert, not `ON CONFLICT DO NOTHING`: a refused e-mail fails the whole statement,
/// outbox row included, which is what is wanted here, and the usual insert is spared the
/// speculative-insertion protocol (a look into every unique index first, and a second WAL
/// record to confirm the row).
pub async fn insert_new_partner_committed(
    pool: &sqlx::PgPool,
    partner: &Partner,
    row: &(Uuid, String, String),
) -> Result<bool, RepoError> {
    static SQL: std::sync::LazyLock<String> =
        std::sync::LazyLock::new(|| ::storage::outbox::with_row(insert_partner_sql!(), 14));
    let state = partner.state();
    if !state.integraciones.is_empty() {
        return Err(RepoError::Corrupt(
            "a partner created in one statement has no integrations yet".into(),
        ));
    }
    let (event_id, topic, envelope) = row;
    let written = bind_partner!(sqlx::query(&SQL), state)
        .bind(event_id)
        .bind(topic)
        .bind(envelope)
        .bind(kernel::now())
        .execute(pool)
        .await;
    match written {
        Ok(_) => Ok(true),
        Err(error) => match unique_violation(&error) {
            Some(RepoError::EmailTaken) => Ok(false),
            _ => Err(RepoError::Sqlx(error)),
        },
    }
}

/// Inserts a new partner (and any integrations it already has). A live partner with the same
/// e-mail is `EmailTaken`; on PostgreSQL the violation aborts `tx`, so the caller must drop it.
pub async fn insert_partner(tx: &mut Tx, partner: &Partner) -> Result<(), RepoError> {
    let state = partner.state();
    if let Err(error) = insert_partner_row(tx, state, insert_partner_sql!()).await {
        return Err(unique_violation(&error).unwrap_or(RepoError::Sqlx(error)));
    }
    save_integraciones(tx, state).await
}

/// Inserts a new partner unless a live partner holds its e-mail or a partner its onboarding;
/// returns whether it was inserted. Unlike [`insert_partner`] a refusal leaves `tx` usable on
/// both backends, so a transaction that carries other work (a batch of commands) survives a
/// twin that committed first. On PostgreSQL the insert waits for an uncommitted twin and is
/// refused only if that twin commits.
pub async fn insert_partner_unless_taken(
    tx: &mut Tx,
    partner: &Partner,
) -> Result<bool, RepoError> {
    let state = partner.state();
    let inserted = insert_partner_row(
        tx,
        state,
        concat!(insert_partner_sql!(), " ON CONFLICT DO NOTHING"),
    )
    .await?;
    if inserted == 0 {
        return Ok(false);
    }
    save_integraciones(tx, state).await?;
    Ok(true)
}

/// Writes a loaded partner's changed state and its integrations back.
pub async fn update_partner(tx: &mut Tx, partner: &Partner) -> Result<(), RepoError> {
    let state = partner.state();
    with_tx!(tx, conn => sqlx::query(
        "UPDATE partner SET nombre = $2, nombre_busqueda = $3, telefono = $4, direccion = $5,
            tipo = $6, estado = $7, estado_kyc = $8, documentos_kyc = $9, fecha_actualizacion = $10
         WHERE partner_id = $1",
    )
    .bind(state.id)
    .bind(state.nombre.as_str())
    .bind(state.nombre.as_str().to_lowercase())
    .bind(state.telefono.as_ref().map(Telefono::as_str))
    .bind(state.direccion.as_ref().map(Direccion::as_str))
    .bind(state.tipo.as_str())
    .bind(state.estado.as_str())
    .bind(state.estado_kyc.as_str())
    .bind(documentos_text(state))
    .bind(state.fecha_actualizacion)
    .execute(conn)
    .await
    .map(|r| r.rows_affected()))?;
    save_integraciones(tx, state).await
}

/// Upserts every integration: new ones are inserted, existing ones get their revocation.
async fn save_integraciones(tx: &mut Tx, state: &PartnerState) -> Result<(), RepoError> {
    for integracion in &state.integraciones {
        let configuracion = Value::Object(integracion.configuracion.clone()).to_string();
        with_tx!(&mut *tx, conn => sqlx::query(
            "INSERT INTO integracion (integracion_id, partner_id, tipo, nombre, descripcion,
                configuracion, activa, fecha_creacion, fecha_revocacion, motivo_revocacion)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)
             ON CONFLICT (integracion_id) DO UPDATE SET activa = excluded.activa,
                fecha_revocacion = excluded.fecha_revocacion,
                motivo_revocacion = excluded.motivo_revocacion",
        )
        .bind(integracion.id)
        .bind(integracion.partner_id)
        .bind(integracion.tipo.as_str())
        .bind(integracion.nombre.as_str())
        .bind(integracion.descripcion.as_ref().map(Descripcion::as_str))
        .bind(&configuracion)
        .bind(integracion.activa)
        .bind(integracion.fecha_creacion)
        .bind(integracion.fecha_revocacion)
        .bind(integracion.motivo_revocacion.as_ref().map(Motivo::as_str))
        .execute(conn)
        .await
        .map(|r| r.rows_affected()))?;
    }
    Ok(())
}

fn select_partner(lock: &str) -> String {
    format!("SELECT {PARTNER_COLUMNS} FROM partner WHERE partner_id = $1{lock}")
}

fn select_integraciones() -> String {
    format!(
        "SELECT {INTEGRACION_COLUMNS} FROM integracion WHERE partner_id = $1 ORDER BY integracion_id"
    )
}

fn assemble(row: PartnerRow, integraciones: Vec<IntegracionRow>) -> Result<Partner, RepoError> {
    let integraciones = integraciones
        .into_iter()
        .map(IntegracionRow::into_domain)
        .collect::<Result<_, _>>()?;
    Ok(Partner::restore(row.into_state(integraciones)?))
}

/// Loads a partner with its integrations inside `tx`, locking its row until `tx` ends so that
/// concurrent changes to one partner apply one after the other.
pub async fn load_for_update(tx: &mut Tx, partner_id: Uuid) -> Result<Option<Partner>, RepoError> {
    let lock = match tx.backend() {
        Backend::Postgres => " FOR UPDATE",
        Backend::Sqlite => "",
    };
    let sql = select_partner(lock);
    let row: Option<PartnerRow> = with_tx!(&mut *tx, conn => sqlx::query_as(&sql)
        .bind(partner_id)
        .fetch_optional(conn)
        .await)?;
    let Some(row) = row else {
        return Ok(None);
    };
    let sql = select_integraciones();
    let integraciones: Vec<IntegracionRow> = with_tx!(&mut *tx, conn => sqlx::query_as(&sql)
        .bind(partner_id)
        .fetch_all(conn)
        .await)?;
    assemble(row, integraciones).map(Some)
}

/// Reads a partner with its integrations (no lock).
pub async fn find(db: &Db, partner_id: Uuid) -> Result<Option<Partner>, RepoError> {
    // One round-trip: the partner joined with its integrations (one row each, or one row with
    // no integration). The read behind `GET /partners/{id}`, the hottest one.
    static SQL: std::sync::LazyLock<String> = std::sync::LazyLock::new(|| {
        let partner: Vec<String> = PARTNER_COLUMNS
            .split(',')
            .map(|column| format!("p.{}", column.trim()))
            .collect();
        format!(
            "SELECT {}, i.integracion_id AS i_integracion_id, i.tipo AS i_tipo, \
             i.nombre AS i_nombre, i.descripcion AS i_descripcion, \
             i.configuracion AS i_configuracion, i.activa AS i_activa, \
             i.fecha_creacion AS i_fecha_creacion, i.fecha_revocacion AS i_fecha_revocacion, \
             i.motivo_revocacion AS i_motivo_revocacion \
             FROM partner p LEFT JOIN integracion i ON i.partner_id = p.partner_id \
             WHERE p.partner_id = $1 ORDER BY i.integracion_id",
            partner.join(", ")
        )
    });
    let rows: Vec<JoinedRow> = with_reader!(db, conn => sqlx::query_as(&SQL)
        .bind(partner_id)
        .fetch_all(conn)
        .await)?;
    let mut partner = None;
    let mut integraciones = Vec::new();
    for row in rows {
        if let Some(integracion) = row.integracion.into_row(row.partner.partner_id)? {
            integraciones.push(integracion);
        }
        partner.get_or_insert(row.partner);
    }
    let Some(partner) = partner else {
        return Ok(None);
    };
    assemble(partner, integraciones).map(Some)
}

/// A row of [`find`]'s join: the partner's columns and, if it has any, one integration's.
#[derive(sqlx::FromRow)]
struct JoinedRow {
    #[sqlx(flatten)]
    partner: PartnerRow,
    #[sqlx(flatten)]
    integracion: JoinedIntegracion,
}

/// An integration's columns as [`find`] names them (`i_…`, beside the partner's); all null
/// when the partner has none.
#[derive(sqlx::FromRow)]
struct JoinedIntegracion {
    i_integracion_id: Option<Uuid>,
    i_tipo: Option<String>,
    i_nombre: Option<String>,
    i_descripcion: Option<String>,
    i_configuracion: Option<String>,
    i_activa: Option<bool>,
    i_fecha_creacion: Option<DateTime<Utc>>,
    i_fecha_revocacion: Option<DateTime<Utc>>,
    i_motivo_revocacion: Option<String>,
}

impl JoinedIntegracion {
    fn into_row(self, partner_id: Uuid) -> Result<Option<IntegracionRow>, RepoError> {
        let Some(integracion_id) = self.i_integracion_id else {
            return Ok(None);
        };
        let missing =
            |column: &str| corrupt("integration", integracion_id, format!("{column} is null"));
        Ok(Some(IntegracionRow {
            integracion_id,
            partner_id,
            tipo: self.i_tipo.ok_or_else(|| missing("tipo"))?,
            nombre: self.i_nombre.ok_or_else(|| missing("nombre"))?,
            descripcion: self.i_descripcion,
            configuracion: self
                .i_configuracion
                .ok_or_else(|| missing("configuracion"))?,
            activa: self.i_activa.ok_or_else(|| missing("activa"))?,
            fecha_creacion: self
                .i_fecha_creacion
                .ok_or_else(|| missing("fecha_creacion"))?,
            fecha_revocacion: self.i_fecha_revocacion,
            motivo_revocacion: self.i_motivo_revocacion,
        }))
    }
}

/// The partner an integration belongs to.
pub async fn partner_of_integracion(
    tx: &mut Tx,
    integracion_id: Uuid,
) -> Result<Option<Uuid>, RepoError> {
    Ok(with_tx!(tx, conn => sqlx::query_scalar(
        "SELECT partner_id FROM integracion WHERE integracion_id = $1",
    )
    .bind(integracion_id)
    .fetch_optional(conn)
    .await)?)
}

/// What a `CreatePartner` must know before it inserts, in one statement: the partner already
/// created for `onboarding_id`, and whether a live (not deleted) partner uses `email` (`false`
/// without one). The e-mail check is a pre-check only: the unique index stays the authority,
/// because a concurrent insert can slip between check and insert.
pub async fn onboarding_partner_and_email(
    tx: &mut Tx,
    onboarding_id: Uuid,
    email: Option<&Email>,
) -> Result<(Option<Uuid>, bool), RepoError> {
    Ok(with_tx!(tx, conn => sqlx::query_as(
        "SELECT (SELECT partner_id FROM partner WHERE onboarding_id = $1) AS existing,
            EXISTS (SELECT 1 FROM partner
                WHERE email_normalizado = $2 AND estado <> 'ELIMINADO') AS email_taken",
    )
    .bind(onboarding_id)
    .bind(email.map(Email::normalized))
    .fetch_one(conn)
    .await)?)
}

/// What a batch of `CreatePartner` commands must know before creating its partners, in one
/// statement: which of `onboarding_ids` have a partner (`(onboarding_id, partner_id)`), and
/// which of the normalized `emails` a live partner holds.
pub async fn onboardings_and_emails_taken(
    tx: &mut Tx,
    onboarding_ids: &[Uuid],
    emails: &[String],
) -> Result<(Vec<(Uuid, Uuid)>, Vec<String>), RepoError> {
    // One index probe per onboarding and per e-mail on PostgreSQL (see
    // `storage::select_by_unique_keys`); a live partner's e-mail is unique
    // (`partner_email_vivo`).
    let backend = tx.backend();
    let sql = format!(
        "{} UNION ALL {}",
        ::storage::select_by_unique_keys(
            backend,
            "onboarding_id, partner_id, NULL AS email_normalizado",
            "partner",
            "onboarding_id",
            ::storage::ListedKey::Uuid,
            1,
            None,
        ),
        ::storage::select_by_unique_keys(
            backend,
            "NULL, NULL, email_normalizado",
            "partner",
            "email_normalizado",
            ::storage::ListedKey::Text,
            2,
            Some("estado <> 'ELIMINADO'"),
        ),
    );
    let emails: Vec<[&str; 1]> = emails.iter().map(|email| [email.as_str()]).collect();
    let rows: Vec<(Option<Uuid>, Option<Uuid>, Option<String>)> = with_tx!(tx, conn => sqlx::query_as(&sql)
            .bind(::storage::hex_list(onboarding_ids.iter().map(|id| [*id])))
            .bind(serde_json::to_string(&emails).expect("strings serialize to JSON"))
            .fetch_all(conn)
            .await)?;
    let mut onboardings = Vec::new();
    let mut taken = Vec::new();
    for row in rows {
        match row {
            (Some(onboarding_id), Some(partner_id), _) => {
                onboardings.push((onboarding_id, partner_id))
            }
            (_, _, Some(email)) => taken.push(email),
            _ => {}
        }
    }
    Ok((onboardings, taken))
}

/// Inserts new partners, each as [`insert_partner_unless_taken`] does; `Ok(false)` when some
/// e-mail or onboarding was taken (which one cannot be told), and the caller drops `tx`. On
/// SQLite the inserts go as one query, one trip to the connection's thread instead of one per
/// partner; PostgreSQL prepares one statement per query, so there they run in turn.
pub async fn insert_partners_unless_taken(
    tx: &mut Tx,
    partners: &[&Partner],
) -> Result<bool, RepoError> {
    const SQL: &str = concat!(insert_partner_sql!(), " ON CONFLICT DO NOTHING");
    const PARAMS: usize = 14;
    if let ::storage::TxConn::Sqlite(transaction) = &mut tx.conn {
        let sql = ::storage::joined(partners.iter().map(|_| (SQL, PARAMS)));
        let mut query = sqlx::query(&sql);
        for partner in partners {
            query = bind_partner!(query, partner.state());
        }
        let inserted = query.execute(&mut **transaction).await?.rows_affected();
        if inserted != partners.len() as u64 {
            return Ok(false);
        }
        for partner in partners {
            save_integraciones(tx, partner.state()).await?;
        }
        return Ok(true);
    }
    for partner in partners {
        if !insert_partner_unless_taken(tx, partner).await? {
            return Ok(false);
        }
    }
    Ok(true)
}

/// Escapes `LIKE` wildcards so `q` is matched literally.
fn like_pattern(q: &str) -> String {
    let mut pattern = String::from("%");
    for c in q.to_lowercase().chars() {
        if matches!(c, '%' | '_' | '\\') {
            pattern.push('\\');
        }
        pattern.push(c);
    }
    pattern.push('%');
    pattern
}

const LIST_WHERE: &str = "($1 IS NULL OR estado = $1)
    AND ($2 IS NULL OR tipo = $2)
    AND ($3 IS NULL OR estado_kyc = $3)
    AND ($4 IS NULL OR nombre_busqueda LIKE $4 ESCAPE '\\' OR email_normalizado LIKE $4 ESCAPE '\\')";

/// The number of partners with the enumerated values `$1` (estado), `$2` (tipo) and `$3`
/// (estado_kyc), `NULL` meaning any: the counts table plus the changes not yet folded into it
/// (migrations 0003 and 0004), in one statement so that a concurrent fold is seen whole or
/// not at all.
pub const COUNT_FROM_CONTEO: &str = "SELECT CAST(COALESCE(SUM(n), 0) AS BIGINT) FROM (
        SELECT tipo, estado, estado_kyc, n FROM partner_conteo
        UNION ALL
        SELECT tipo, estado, estado_kyc, n FROM partner_conteo_delta) AS conteo
    WHERE ($1 IS NULL OR estado = $1)
      AND ($2 IS NULL OR tipo = $2)
      AND ($3 IS NULL OR estado_kyc = $3)";

/// The number of partners with these enumerated values (`None` = any) from the counts the
/// triggers keep exact in every writing transaction: a sum over a few dozen rows costs far
/// less than counting the partners.
async fn count_from_conteo(
    db: &Db,
    estado: Option<&str>,
    tipo: Option<&str>,
    estado_kyc: Option<&str>,
) -> Result<i64, RepoError> {
    let count = with_reader!(db, conn => sqlx::query_scalar(COUNT_FROM_CONTEO)
        .bind(estado)
        .bind(tipo)
        .bind(estado_kyc)
        .fetch_one(conn)
        .await)?;
    Ok(count)
}

/// PostgreSQL: moves the count changes writers appended to `partner_conteo_delta` into
/// `partner_conteo`, in one statement that deletes the rows it sums, so a count never sees a
/// change twice or misses one. A fold already running elsewhere (another replica) makes this one
/// a no-op instead of a wait. Returns how many appended rows it folded. SQLite's triggers add
/// to the counts directly: nothing to fold there.
///
/// The folded rows are then vacuumed away at once: every count reads the whole appended table,
/// dead versions included, and autovacuum looks at a table once a minute at best (500,000 dead
/// rows after a bulk load made a list's count take ~40 ms instead of ~1).
pub async fn fold_counts(db: &Db) -> Result<u64, sqlx::Error> {
    let Db::Postgres(pool) = db else {
        return Ok(0);
    };
    let folded: i64 = sqlx::query_scalar(
        "WITH turno AS (SELECT pg_try_advisory_xact_lock(hashtext('partner_conteo_delta')) AS mio),
              movido AS (DELETE FROM partner_conteo_delta WHERE (SELECT mio FROM turno)
                         RETURNING tipo, estado, estado_kyc, n),
              sumado AS (INSERT INTO partner_conteo (tipo, estado, estado_kyc, shard, n)
                         SELECT tipo, estado, estado_kyc, 0, SUM(n) FROM movido
                          GROUP BY tipo, estado, estado_kyc
                         ON CONFLICT (tipo, estado, estado_kyc, shard)
                         DO UPDATE SET n = partner_conteo.n + EXCLUDED.n)
         SELECT COUNT(*) FROM movido",
    )
    .fetch_one(pool)
    .await?;
    if folded > 0 {
        // SKIP_LOCKED: a replica's vacuum already running does the work.
        sqlx::query("VACUUM (SKIP_LOCKED) partner_conteo_delta")
            .execute(pool)
            .await?;
    }
    Ok(folded as u64)
}

/// One page of partners in id (creation) order, without their integrations, plus the total
/// number matching the filter. Returns up to `limit + 1` rows after the id `after`, so the
/// caller knows whether more exist.
///
/// A first page that holds every match is its own total, with no count at all: that is the
/// usual answer to a `q` search for a name or an address, whose count would walk the trigram
/// indexes a second time (~11 ms over 500,000 partners for a rare term made of trigrams common
/// to nearly every row, such as `partner123456` when each e-mail holds `partner`). Otherwise
/// the total is summed from the counts table when the filter names only enumerated columns,
/// and counted over the rows when it has a `q` search.
pub async fn list(
    db: &Db,
    filter: &PartnerFilter,
    limit: i64,
    after: Option<Uuid>,
) -> Result<(Vec<Partner>, i64), RepoError> {
    let estado = filter.estado.map(EstadoPartner::as_str);
    let tipo = filter.tipo.map(TipoPartner::as_str);
    let estado_kyc = filter.estado_kyc.map(EstadoKyc::as_str);
    let q = filter
        .q
        .as_deref()
        .map(str::trim)
        .filter(|q| !q.is_empty())
        .map(like_pattern);
    let sql = format!(
        "SELECT {PARTNER_COLUMNS} FROM partner WHERE {LIST_WHERE}
         AND ($5 IS NULL OR partner_id > $5) ORDER BY partner_id LIMIT $6"
    );
    let rows: Vec<PartnerRow> = with_reader!(db, conn => sqlx::query_as(&sql)
        .bind(estado)
        .bind(tipo)
        .bind(estado_kyc)
        .bind(q.as_deref())
        .bind(after)
        .bind(limit + 1)
        .fetch_all(conn)
        .await)?;
    let whole = after.is_none() && i64::try_from(rows.len()).is_ok_and(|found| found <= limit);
    let total = match q.as_deref() {
        _ if whole => rows.len() as i64,
        None => count_from_conteo(db, estado, tipo, estado_kyc).await?,
        Some(q) => {
            let sql = format!("SELECT COUNT(*) FROM partner WHERE {LIST_WHERE}");
            with_reader!(db, conn => sqlx::query_scalar(&sql)
                .bind(estado)
                .bind(tipo)
                .bind(estado_kyc)
                .bind(q)
                .fetch_one(conn)
                .await)?
        }
    };
    let partners = rows
        .into_iter()
        .map(|row| row.into_state(Vec::new()).map(Partner::restore))
        .collect::<Result<_, _>>()?;
    Ok((partners, total))
}
