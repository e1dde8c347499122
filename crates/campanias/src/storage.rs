//! The repositories of campanias over `::storage::Db`: programs with their affiliations, the
//! partners known from events, and notifications with their delivery state. Each query is
//! written once with `$n` placeholders; the only dialect branches are the row locks and the
//! notification claim (PostgreSQL `FOR UPDATE [SKIP LOCKED]`; SQLite's single writer already
//! serializes write transactions).

use chrono::{DateTime, NaiveDate, Utc};
use kernel::Amount;
use uuid::Uuid;

use ::storage::{with_db, with_reader, with_tx, Backend, Db, Tx};

use crate::domain::{
    Afiliacion, BrandId, EstadoAfiliacion, EstadoNotificacion, EstadoPrograma, Mensaje,
    ModeloComision, Moneda, Nombre, PartnerConocido, Prioridad, Programa, ProgramaState, Terminos,
    TipoPrograma, ValueError, Vigencia,
};

/// The migrations of this service's tables, applied by `Db::migrate_with("campanias", …)`.
pub const MIGRATIONS: &[::storage::Migration] = &[::storage::Migration {
    version: 1,
    name: "programa_afiliacion_partner_notificacion",
    sqlite: include_str!("../migrations/sqlite/0001_init.sql"),
    postgres: include_str!("../migrations/postgres/0001_init.sql"),
}];

/// The repository error every service shares (`storage::RepoError`).
pub use ::storage::RepoError;

fn lock_clause(backend: Backend) -> &'static str {
    match backend {
        Backend::Postgres => " FOR UPDATE",
        Backend::Sqlite => "",
    }
}

// ---------------------------------------------------------------------------------------------
// Programs

/// List filters; `None` means "any". `afiliado_id` keeps the programs that partner is
/// affiliated to (in any state).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ProgramaFilter {
    pub estado: Option<EstadoPrograma>,
    pub brand_id: Option<String>,
    pub tipo: Option<TipoPrograma>,
    pub afiliado_id: Option<Uuid>,
}

const PROGRAMA_COLUMNS: &str = "programa_id, nombre, brand_id, tipo, estado, vigencia_inicio, \
    vigencia_fin, term_modelo, term_moneda, term_tarifa_base_centavos, term_tope_centavos, \
    presupuesto_centavos, fecha_creacion, fecha_actualizacion";

const AFILIACION_COLUMNS: &str = "programa_id, afiliado_id, estado, fecha_alta, fecha_baja";

#[derive(Debug, sqlx::FromRow)]
struct ProgramaRow {
    programa_id: Uuid,
    nombre: String,
    brand_id: String,
    tipo: String,
    estado: String,
    vigencia_inicio: NaiveDate,
    vigencia_fin: NaiveDate,
    term_modelo: String,
    term_moneda: String,
    term_tarifa_base_centavos: i64,
    term_tope_centavos: Option<i64>,
    presupuesto_centavos: Option<i64>,
    fecha_creacion: DateTime<Utc>,
    fecha_actualizacion: DateTime<Utc>,
}

#[derive(Debug, sqlx::FromRow)]
struct AfiliacionRow {
    programa_id: Uuid,
    afiliado_id: Uuid,
    estado: String,
    fecha_alta: DateTime<Utc>,
    fecha_baja: Option<DateTime<Utc>>,
}

impl AfiliacionRow {
    fn into_domain(self) -> Result<Afiliacion, RepoError> {
        Ok(Afiliacion {
            afiliado_id: self.afiliado_id,
            estado: EstadoAfiliacion::parse(&self.estado)
                .map_err(|e| RepoError::corrupt_row("afiliacion", self.programa_id, e))?,
            fecha_alta: self.fecha_alta,
            fecha_baja: self.fecha_baja,
        })
    }
}

impl ProgramaRow {
    fn into_domain(self, afiliaciones: Vec<Afiliacion>) -> Result<Programa, RepoError> {
        let id = self.programa_id;
        let bad = |error: ValueError| RepoError::corrupt_row("programa", id, error);
        let terminos = Terminos::new(
            ModeloComision::parse(&self.term_modelo).map_err(bad)?,
            Moneda::parse(&self.term_moneda).map_err(bad)?,
            Amount::from_cents(self.term_tarifa_base_centavos),
            self.term_tope_centavos.map(Amount::from_cents),
        )
        .map_err(|error| RepoError::corrupt_row("programa", id, format!("{error:?}")))?;
        Ok(Programa::restore(ProgramaState {
            id,
            nombre: Nombre::parse(&self.nombre).map_err(bad)?,
            brand_id: BrandId::parse(&self.brand_id).map_err(bad)?,
            tipo: TipoPrograma::parse(&self.tipo).map_err(bad)?,
            estado: EstadoPrograma::parse(&self.estado).map_err(bad)?,
            vigencia: Vigencia::new(self.vigencia_inicio, self.vigencia_fin).map_err(bad)?,
            terminos,
            presupuesto: self.presupuesto_centavos.map(Amount::from_cents),
            afiliaciones,
            fecha_creacion: self.fecha_creacion,
            fecha_actualizacion: self.fecha_actualizacion,
        }))
    }
}

/// Inserts a new program with its affiliations.
pub async fn insert_programa(tx: &mut Tx, programa: &Programa) -> Result<(), RepoError> {
    let state = programa.state();
    let sql = format!(
        "INSERT INTO programa ({PROGRAMA_COLUMNS})
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14)"
    );
    with_tx!(&mut *tx, conn => sqlx::query(&sql)
        .bind(state.id)
        .bind(state.nombre.as_str())
        .bind(state.brand_id.as_str())
        .bind(state.tipo.as_str())
        .bind(state.estado.as_str())
        .bind(state.vigencia.inicio())
        .bind(state.vigencia.fin())
        .bind(state.terminos.modelo().as_str())
        .bind(state.terminos.moneda().as_str())
        .bind(state.terminos.tarifa_base().cents())
        .bind(state.terminos.tope().map(Amount::cents))
        .bind(state.presupuesto.map(Amount::cents))
        .bind(state.fecha_creacion)
        .bind(state.fecha_actualizacion)
        .execute(conn)
        .await
        .map(|r| r.rows_affected()))?;
    save_afiliaciones(tx, state).await
}

/// Writes a loaded program's state and its affiliations back.
pub async fn update_programa(tx: &mut Tx, programa: &Programa) -> Result<(), RepoError> {
    let state = programa.state();
    with_tx!(&mut *tx, conn => sqlx::query(
        "UPDATE programa SET estado = $2, fecha_actualizacion = $3 WHERE programa_id = $1",
    )
    .bind(state.id)
    .bind(state.estado.as_str())
    .bind(state.fecha_actualizacion)
    .execute(conn)
    .await
    .map(|r| r.rows_affected()))?;
    save_afiliaciones(tx, state).await
}

async fn save_afiliaciones(tx: &mut Tx, state: &ProgramaState) -> Result<(), RepoError> {
    for afiliacion in &state.afiliaciones {
        with_tx!(&mut *tx, conn => sqlx::query(
            "INSERT INTO afiliacion (programa_id, afiliado_id, estado, fecha_alta, fecha_baja)
             VALUES ($1, $2, $3, $4, $5)
             ON CONFLICT (programa_id, afiliado_id) DO UPDATE SET estado = excluded.estado,
                fecha_baja = excluded.fecha_baja",
        )
        .bind(state.id)
        .bind(afiliacion.afiliado_id)
        .bind(afiliacion.estado.as_str())
        .bind(afiliacion.fecha_alta)
        .bind(afiliacion.fecha_baja)
        .execute(conn)
        .await
        .map(|r| r.rows_affected()))?;
    }
    Ok(())
}

fn afiliaciones_sql() -> String {
    format!(
        "SELECT {AFILIACION_COLUMNS} FROM afiliacion WHERE programa_id = $1
         ORDER BY fecha_alta, afiliado_id"
    )
}

fn assemble(row: ProgramaRow, afiliaciones: Vec<AfiliacionRow>) -> Result<Programa, RepoError> {
    let afiliaciones = afiliaciones
        .into_iter()
        .map(AfiliacionRow::into_domain)
        .collect::<Result<_, _>>()?;
    row.into_domain(afiliaciones)
}

/// Loads a program with its affiliations inside `tx`, locking its row until `tx` ends so that
/// concurrent changes to one program apply one after the other.
pub async fn load_for_update(
    tx: &mut Tx,
    programa_id: Uuid,
) -> Result<Option<Programa>, RepoError> {
    let sql = format!(
        "SELECT {PROGRAMA_COLUMNS} FROM programa WHERE programa_id = $1{}",
        lock_clause(tx.backend())
    );
    let row: Option<ProgramaRow> = with_tx!(&mut *tx, conn => sqlx::query_as(&sql)
        .bind(programa_id)
        .fetch_optional(conn)
        .await)?;
    let Some(row) = row else {
        return Ok(None);
    };
    let sql = afiliaciones_sql();
    let afiliaciones: Vec<AfiliacionRow> = with_tx!(&mut *tx, conn => sqlx::query_as(&sql)
        .bind(programa_id)
        .fetch_all(conn)
        .await)?;
    assemble(row, afiliaciones).map(Some)
}

/// Reads a program with its affiliations (no lock).
pub async fn find(db: &Db, programa_id: Uuid) -> Result<Option<Programa>, RepoError> {
    let sql = format!("SELECT {PROGRAMA_COLUMNS} FROM programa WHERE programa_id = $1");
    let row: Option<ProgramaRow> = with_reader!(db, conn => sqlx::query_as(&sql)
        .bind(programa_id)
        .fetch_optional(conn)
        .await)?;
    let Some(row) = row else {
        return Ok(None);
    };
    let sql = afiliaciones_sql();
    let afiliaciones: Vec<AfiliacionRow> = with_reader!(db, conn => sqlx::query_as(&sql)
        .bind(programa_id)
        .fetch_all(conn)
        .await)?;
    assemble(row, afiliaciones).map(Some)
}

const LIST_WHERE: &str = "($1 IS NULL OR estado = $1)
    AND ($2 IS NULL OR brand_id = $2)
    AND ($3 IS NULL OR tipo = $3)
    AND ($4 IS NULL OR EXISTS (SELECT 1 FROM afiliacion a
        WHERE a.programa_id = programa.programa_id AND a.afiliado_id = $4))";

/// One page of programs in id (creation) order with their affiliations, plus the total
/// matching the filter. Returns up to `limit + 1` programs after the id `after`, so the caller
/// knows whether more exist.
pub async fn list(
    db: &Db,
    filter: &ProgramaFilter,
    limit: i64,
    after: Option<Uuid>,
) -> Result<(Vec<Programa>, i64), RepoError> {
    let estado = filter.estado.map(EstadoPrograma::as_str);
    let tipo = filter.tipo.map(TipoPrograma::as_str);
    let brand = filter.brand_id.as_deref();
    let sql = format!(
        "SELECT {PROGRAMA_COLUMNS} FROM programa WHERE {LIST_WHERE}
         AND ($5 IS NULL OR programa_id > $5) ORDER BY programa_id LIMIT $6"
    );
    let rows: Vec<ProgramaRow> = with_reader!(db, conn => sqlx::query_as(&sql)
        .bind(estado)
        .bind(brand)
        .bind(tipo)
        .bind(filter.afiliado_id)
        .bind(after)
        .bind(limit + 1)
        .fetch_all(conn)
        .await)?;
    let sql = format!("SELECT COUNT(*) FROM programa WHERE {LIST_WHERE}");
    let total: i64 = with_reader!(db, conn => sqlx::query_scalar(&sql)
        .bind(estado)
        .bind(brand)
        .bind(tipo)
        .bind(filter.afiliado_id)
        .fetch_one(conn)
        .await)?;
    let (Some(first), Some(last)) = (rows.first(), rows.last()) else {
        return Ok((Vec::new(), total));
    };
    // One query for the page's affiliations: the page spans an id range in key order.
    let sql = format!(
        "SELECT {AFILIACION_COLUMNS} FROM afiliacion WHERE programa_id >= $1 AND programa_id <= $2
         ORDER BY programa_id, fecha_alta, afiliado_id"
    );
    let afiliaciones: Vec<AfiliacionRow> = with_reader!(db, conn => sqlx::query_as(&sql)
        .bind(first.programa_id)
        .bind(last.programa_id)
        .fetch_all(conn)
        .await)?;
    let mut by_programa: std::collections::HashMap<Uuid, Vec<AfiliacionRow>> =
        std::collections::HashMap::new();
    for afiliacion in afiliaciones {
        by_programa
            .entry(afiliacion.programa_id)
            .or_default()
            .push(afiliacion);
    }
    let programas = rows
        .into_iter()
        .map(|row| {
            let afiliaciones = by_programa.remove(&row.programa_id).unwrap_or_default();
            assemble(row, afiliaciones)
        })
        .collect::<Result<_, _>>()?;
    Ok((programas, total))
}

/// The programs a partner is affiliated to with an affiliation in one of `estados`.
pub async fn programas_con_afiliado(
    tx: &mut Tx,
    afiliado_id: Uuid,
    estados: &[EstadoAfiliacion],
) -> Result<Vec<Uuid>, RepoError> {
    let rows: Vec<(Uuid, String)> = with_tx!(tx, conn => sqlx::query_as(
        "SELECT programa_id, estado FROM afiliacion WHERE afiliado_id = $1 ORDER BY programa_id",
    )
    .bind(afiliado_id)
    .fetch_all(conn)
    .await)?;
    Ok(rows
        .into_iter()
        .filter(|(_, estado)| estados.iter().any(|e| e.as_str() == estado))
        .map(|(id, _)| id)
        .collect())
}

// ---------------------------------------------------------------------------------------------
// Partners known from events

#[derive(Debug, sqlx::FromRow)]
struct PartnerRow {
    partner_id: Uuid,
    elegible: bool,
    bloqueado: bool,
    email: Option<String>,
    nombre: Option<String>,
    elegibilidad_en: Option<DateTime<Utc>>,
}

impl From<PartnerRow> for PartnerConocido {
    fn from(row: PartnerRow) -> Self {
        PartnerConocido {
            partner_id: row.partner_id,
            elegible: row.elegible,
            bloqueado: row.bloqueado,
            email: row.email,
            nombre: row.nombre,
            elegibilidad_en: row.elegibilidad_en,
        }
    }
}

const PARTNER_COLUMNS: &str = "partner_id, elegible, bloqueado, email, nombre, elegibilidad_en";

/// Loads what is known of a partner inside `tx`, creating an empty record first, and locks it
/// until `tx` ends. Every write that depends on a partner's standing takes this lock before any
/// program's, so an affiliation created while the partner becomes eligible is never missed by
/// the promotion (and lock order is always partner, then program).
pub async fn lock_partner(tx: &mut Tx, partner_id: Uuid) -> Result<PartnerConocido, RepoError> {
    // One statement: the no-op update of an existing record takes its row lock (PostgreSQL;
    // SQLite's single writer holds the database already) and returns it like a new one.
    let sql = format!(
        "INSERT INTO partner_conocido (partner_id, elegible, bloqueado, actualizado_en)
         VALUES ($1, FALSE, FALSE, $2)
         ON CONFLICT (partner_id) DO UPDATE SET elegible = partner_conocido.elegible
         RETURNING {PARTNER_COLUMNS}"
    );
    let row: PartnerRow = with_tx!(&mut *tx, conn => sqlx::query_as(&sql)
        .bind(partner_id)
        .bind(kernel::now())
        .fetch_one(conn)
        .await)?;
    Ok(row.into())
}

pub async fn save_partner(tx: &mut Tx, partner: &PartnerConocido) -> Result<(), RepoError> {
    with_tx!(tx, conn => sqlx::query(
        "UPDATE partner_conocido SET elegible = $2, bloqueado = $3, email = $4, nombre = $5,
            elegibilidad_en = $6, actualizado_en = $7
         WHERE partner_id = $1",
    )
    .bind(partner.partner_id)
    .bind(partner.elegible)
    .bind(partner.bloqueado)
    .bind(&partner.email)
    .bind(&partner.nombre)
    .bind(partner.elegibilidad_en)
    .bind(kernel::now())
    .execute(conn)
    .await
    .map(|r| r.rows_affected()))?;
    Ok(())
}

/// What is known of a partner (no lock); `None` when nothing was ever heard of it.
pub async fn find_partner(db: &Db, partner_id: Uuid) -> Result<Option<PartnerConocido>, RepoError> {
    let sql = format!("SELECT {PARTNER_COLUMNS} FROM partner_conocido WHERE partner_id = $1");
    let row: Option<PartnerRow> = with_reader!(db, conn => sqlx::query_as(&sql)
        .bind(partner_id)
        .fetch_optional(conn)
        .await)?;
    Ok(row.map(Into::into))
}

// ---------------------------------------------------------------------------------------------
// Notifications

/// A stored notification with its delivery state.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Notificacion {
    pub id: Uuid,
    pub evento_id: Uuid,
    pub tipo_evento: String,
    pub destinatario: String,
    pub asunto: String,
    pub contenido: String,
    pub prioridad: Prioridad,
    pub estado: EstadoNotificacion,
    pub intentos: i32,
    pub ultimo_error: Option<String>,
    pub creada_en: DateTime<Utc>,
    pub enviada_en: Option<DateTime<Utc>>,
}

#[derive(Debug, sqlx::FromRow)]
struct NotificacionRow {
    notificacion_id: Uuid,
    evento_id: Uuid,
    tipo_evento: String,
    destinatario: String,
    asunto: String,
    contenido: String,
    prioridad: String,
    estado: String,
    intentos: i32,
    ultimo_error: Option<String>,
    creada_en: DateTime<Utc>,
    enviada_en: Option<DateTime<Utc>>,
}

impl NotificacionRow {
    fn into_record(self) -> Result<Notificacion, RepoError> {
        let id = self.notificacion_id;
        let bad = |error: ValueError| RepoError::corrupt_row("notificacion", id, error);
        Ok(Notificacion {
            id,
            evento_id: self.evento_id,
            tipo_evento: self.tipo_evento,
            destinatario: self.destinatario,
            asunto: self.asunto,
            contenido: self.contenido,
            prioridad: Prioridad::parse(&self.prioridad).map_err(bad)?,
            estado: EstadoNotificacion::parse(&self.estado).map_err(bad)?,
            intentos: self.intentos,
            ultimo_error: self.ultimo_error,
            creada_en: self.creada_en,
            enviada_en: self.enviada_en,
        })
    }
}

const NOTIFICACION_COLUMNS: &str = "notificacion_id, evento_id, tipo_evento, destinatario, \
    asunto, contenido, prioridad, estado, intentos, ultimo_error, creada_en, enviada_en";

/// Stores a new notification caused by the event `evento_id`, due at once. Returns `false`
/// when that event already made a notification to that recipient (a redelivery).
pub async fn insert_notificacion(
    tx: &mut Tx,
    evento_id: Uuid,
    tipo_evento: &str,
    mensaje: &Mensaje,
) -> Result<bool, RepoError> {
    let now = kernel::now();
    let inserted = with_tx!(tx, conn => sqlx::query(
        "INSERT INTO notificacion (notificacion_id, evento_id, tipo_evento, destinatario, asunto,
            contenido, prioridad, estado, intentos, creada_en, proximo_intento)
         VALUES ($1, $2, $3, $4, $5, $6, $7, 'PENDIENTE', 0, $8, $8)
         ON CONFLICT (evento_id, destinatario) DO NOTHING",
    )
    .bind(kernel::new_id())
    .bind(evento_id)
    .bind(tipo_evento)
    .bind(&mensaje.destinatario)
    .bind(&mensaje.asunto)
    .bind(&mensaje.contenido)
    .bind(mensaje.prioridad.as_str())
    .bind(now)
    .execute(conn)
    .await
    .map(|r| r.rows_affected()))?;
    Ok(inserted == 1)
}

/// Notification list filters; `None` means "any".
#[derive(Debug, Clone, Default, PartialEq)]
pub struct NotificacionFilter {
    pub estado: Option<EstadoNotificacion>,
    pub destinatario: Option<String>,
}

const NOTIFICACION_WHERE: &str =
    "($1 IS NULL OR estado = $1) AND ($2 IS NULL OR destinatario = $2)";

/// One page of notifications in id (creation) order, plus the total matching the filter.
pub async fn list_notificaciones(
    db: &Db,
    filter: &NotificacionFilter,
    limit: i64,
    after: Option<Uuid>,
) -> Result<(Vec<Notificacion>, i64), RepoError> {
    let estado = filter.estado.map(EstadoNotificacion::as_str);
    let destinatario = filter.destinatario.as_deref();
    let sql = format!(
        "SELECT {NOTIFICACION_COLUMNS} FROM notificacion WHERE {NOTIFICACION_WHERE}
         AND ($3 IS NULL OR notificacion_id > $3) ORDER BY notificacion_id LIMIT $4"
    );
    let rows: Vec<NotificacionRow> = with_reader!(db, conn => sqlx::query_as(&sql)
        .bind(estado)
        .bind(destinatario)
        .bind(after)
        .bind(limit + 1)
        .fetch_all(conn)
        .await)?;
    let sql = format!("SELECT COUNT(*) FROM notificacion WHERE {NOTIFICACION_WHERE}");
    let total: i64 = with_reader!(db, conn => sqlx::query_scalar(&sql)
        .bind(estado)
        .bind(destinatario)
        .fetch_one(conn)
        .await)?;
    let notificaciones = rows
        .into_iter()
        .map(NotificacionRow::into_record)
        .collect::<Result<_, _>>()?;
    Ok((notificaciones, total))
}

const CLAIM_SQLITE: &str = "UPDATE notificacion SET reclamada_por = $1, reclamada_hasta = $2
    WHERE notificacion_id IN (
        SELECT notificacion_id FROM notificacion
        WHERE estado = 'PENDIENTE' AND proximo_intento <= $3
          AND (reclamada_hasta IS NULL OR reclamada_hasta < $3)
        ORDER BY proximo_intento, notificacion_id LIMIT $4)
    RETURNING notificacion_id, evento_id, tipo_evento, destinatario, asunto, contenido,
        prioridad, estado, intentos, ultimo_error, creada_en, enviada_en";

const CLAIM_POSTGRES: &str = "UPDATE notificacion SET reclamada_por = $1, reclamada_hasta = $2
    WHERE notificacion_id IN (
        SELECT notificacion_id FROM notificacion
        WHERE estado = 'PENDIENTE' AND proximo_intento <= $3
          AND (reclamada_hasta IS NULL OR reclamada_hasta < $3)
        ORDER BY proximo_intento, notificacion_id LIMIT $4
        FOR UPDATE SKIP LOCKED)
    RETURNING notificacion_id, evento_id, tipo_evento, destinatario, asunto, contenido,
        prioridad, estado, intentos, ultimo_error, creada_en, enviada_en";

/// Claims up to `limit` due notifications for `claim_id` until `until`: no other worker (in
/// this process or another replica) takes them while the lease lasts.
pub async fn claim_due(
    db: &Db,
    claim_id: Uuid,
    now: DateTime<Utc>,
    until: DateTime<Utc>,
    limit: i64,
) -> Result<Vec<Notificacion>, RepoError> {
    let sql = match db.backend() {
        Backend::Sqlite => CLAIM_SQLITE,
        Backend::Postgres => CLAIM_POSTGRES,
    };
    let rows: Vec<NotificacionRow> = with_db!(db, conn => sqlx::query_as(sql)
        .bind(claim_id)
        .bind(until)
        .bind(now)
        .bind(limit)
        .fetch_all(conn)
        .await)?;
    let mut claimed = rows
        .into_iter()
        .map(NotificacionRow::into_record)
        .collect::<Result<Vec<_>, _>>()?;
    claimed.sort_by_key(|n| n.id);
    Ok(claimed)
}

/// The outcome of one delivery attempt, recorded under the claim that made it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Intento {
    Enviada {
        at: DateTime<Utc>,
    },
    /// Failed; try again at `proximo`.
    Reintentar {
        error: String,
        proximo: DateTime<Utc>,
    },
    /// Failed for good.
    Fallida {
        error: String,
    },
}

/// Records an attempt on a claimed notification and releases the claim. Returns `false` when
/// the claim was lost (its lease expired and another worker took the row over).
pub async fn record_attempt(
    db: &Db,
    notificacion_id: Uuid,
    claim_id: Uuid,
    intento: &Intento,
) -> Result<bool, RepoError> {
    let recorded = record_attempts(db, claim_id, &[(notificacion_id, intento.clone())]).await?;
    Ok(recorded[0])
}

/// Records the attempts on notifications of one claim, in one transaction (one synced commit
/// for a worker's whole batch instead of one per notification), and releases their claims.
/// Says for each whether it was recorded (`false`: its claim was lost).
pub async fn record_attempts(
    db: &Db,
    claim_id: Uuid,
    attempts: &[(Uuid, Intento)],
) -> Result<Vec<bool>, RepoError> {
    let mut tx = db.begin().await?;
    let mut recorded = Vec::with_capacity(attempts.len());
    for (notificacion_id, intento) in attempts {
        let (estado, error, enviada_en, proximo) = match intento {
            Intento::Enviada { at } => (EstadoNotificacion::Enviada, None, Some(*at), None),
            Intento::Reintentar { error, proximo } => (
                EstadoNotificacion::Pendiente,
                Some(error.as_str()),
                None,
                Some(*proximo),
            ),
            Intento::Fallida { error } => (
                EstadoNotificacion::Fallida,
                Some(error.as_str()),
                None,
                None,
            ),
        };
        let updated = with_tx!(tx, conn => sqlx::query(
            "UPDATE notificacion SET estado = $3, intentos = intentos + 1,
                ultimo_error = COALESCE($4, ultimo_error), enviada_en = $5,
                proximo_intento = COALESCE($6, proximo_intento),
                reclamada_por = NULL, reclamada_hasta = NULL
             WHERE notificacion_id = $1 AND reclamada_por = $2",
        )
        .bind(notificacion_id)
        .bind(claim_id)
        .bind(estado.as_str())
        .bind(error)
        .bind(enviada_en)
        .bind(proximo)
        .execute(conn)
        .await
        .map(|r| r.rows_affected()))?;
        recorded.push(updated == 1);
    }
    tx.commit().await?;
    Ok(recorded)
}
