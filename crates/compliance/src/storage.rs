//! The compliance repository over `::storage::Db`: the rule configuration (one row), the
//! partners compliance knows, the evaluations (one per contract) and the financial accounts
//! (one per partner). Each query is written once with `$n` placeholders and runs on SQLite or
//! PostgreSQL; the only dialect difference is the sum cast in the report (PostgreSQL's SUM of a
//! BIGINT is NUMERIC).

use std::collections::{BTreeSet, HashMap, HashSet};

use chrono::{DateTime, Utc};
use kernel::Amount;
use uuid::Uuid;

use ::storage::{with_db, with_reader, with_tx, Db, Tx};

use crate::domain::{
    CuentaFinanciera, EmailBloqueado, EstadoCuenta, Evaluacion, LineaImpuesto, ListaBloqueo,
    MetodoPago, Moneda, PartnerConocido, Periodo, Porcentaje, Rechazo, Regla, ReglasCompliance,
    Veredicto,
};

/// The migrations of this service's tables, applied by `Db::migrate_with("compliance", …)`.
pub const MIGRATIONS: &[::storage::Migration] = &[::storage::Migration {
    version: 1,
    name: "reglas_evaluaciones_cuentas",
    sqlite: include_str!("../migrations/sqlite/0001_init.sql"),
    postgres: include_str!("../migrations/postgres/0001_init.sql"),
}];

/// The repository error every service shares (`storage::RepoError`).
pub use ::storage::RepoError;

fn json_strings(what: &str, text: &str) -> Result<Vec<String>, RepoError> {
    serde_json::from_str(text).map_err(|error| RepoError::corrupt(what, error))
}

fn to_json<T: serde::Serialize>(value: &T) -> String {
    // Vectors of strings always serialize.
    serde_json::to_string(value).unwrap_or_else(|_| "[]".to_owned())
}

// ---------------------------------------------------------------------------------------------
// Rule configuration

#[derive(Debug, sqlx::FromRow)]
struct ReglasRow {
    limite_centavos: i64,
    monedas_permitidas: String,
    partners_bloqueados: String,
    emails_bloqueados: String,
}

impl ReglasRow {
    fn into_domain(self) -> Result<ReglasCompliance, RepoError> {
        let monedas = json_strings("regla_config.monedas_permitidas", &self.monedas_permitidas)?
            .iter()
            .map(|code| {
                Moneda::parse(code).map_err(|e| RepoError::corrupt("regla_config moneda", e))
            })
            .collect::<Result<BTreeSet<_>, _>>()?;
        let partner_ids = json_strings(
            "regla_config.partners_bloqueados",
            &self.partners_bloqueados,
        )?
        .iter()
        .map(|id| Uuid::parse_str(id).map_err(|e| RepoError::corrupt("regla_config partner", e)))
        .collect::<Result<BTreeSet<_>, _>>()?;
        let emails = json_strings("regla_config.emails_bloqueados", &self.emails_bloqueados)?
            .iter()
            .map(|email| {
                EmailBloqueado::parse(email)
                    .map_err(|e| RepoError::corrupt("regla_config email", e))
            })
            .collect::<Result<BTreeSet<_>, _>>()?;
        ReglasCompliance::new(
            Amount::from_cents(self.limite_centavos),
            monedas,
            ListaBloqueo {
                partner_ids,
                emails,
            },
        )
        .map_err(|error| RepoError::corrupt("regla_config", format!("{:?}", error.0)))
    }
}

struct ReglasColumns {
    limite: i64,
    monedas: String,
    partners: String,
    emails: String,
}

fn reglas_columns(reglas: &ReglasCompliance) -> ReglasColumns {
    ReglasColumns {
        limite: reglas.limite().cents(),
        monedas: to_json(
            &reglas
                .monedas()
                .iter()
                .map(Moneda::as_str)
                .collect::<Vec<_>>(),
        ),
        partners: to_json(
            &reglas
                .bloqueo()
                .partner_ids
                .iter()
                .map(Uuid::to_string)
                .collect::<Vec<_>>(),
        ),
        emails: to_json(
            &reglas
                .bloqueo()
                .emails
                .iter()
                .map(EmailBloqueado::as_str)
                .collect::<Vec<_>>(),
        ),
    }
}

const SELECT_REGLAS: &str = "SELECT limite_centavos, monedas_permitidas, partners_bloqueados,
    emails_bloqueados FROM regla_config WHERE regla_config_id = 1";

/// Writes `defaults` unless a configuration exists (first start); an operator's changes are
/// never overwritten.
pub async fn ensure_rules(db: &Db, defaults: &ReglasCompliance) -> Result<(), RepoError> {
    let columns = reglas_columns(defaults);
    with_db!(db, conn => sqlx::query(
        "INSERT INTO regla_config (regla_config_id, limite_centavos, monedas_permitidas,
            partners_bloqueados, emails_bloqueados, fecha_actualizacion)
         VALUES (1, $1, $2, $3, $4, $5) ON CONFLICT (regla_config_id) DO NOTHING",
    )
    .bind(columns.limite)
    .bind(&columns.monedas)
    .bind(&columns.partners)
    .bind(&columns.emails)
    .bind(kernel::now())
    .execute(conn)
    .await
    .map(|r| r.rows_affected()))?;
    Ok(())
}

/// The configuration, read inside `tx` so an evaluation sees one consistent version.
pub async fn load_rules_tx(tx: &mut Tx) -> Result<ReglasCompliance, RepoError> {
    let row: Option<ReglasRow> = with_tx!(tx, conn => sqlx::query_as(SELECT_REGLAS)
        .fetch_optional(conn)
        .await)?;
    match row {
        Some(row) => row.into_domain(),
        None => Err(RepoError::Corrupt("regla_config has no row".into())),
    }
}

pub async fn load_rules(db: &Db) -> Result<ReglasCompliance, RepoError> {
    let row: Option<ReglasRow> = with_reader!(db, conn => sqlx::query_as(SELECT_REGLAS)
        .fetch_optional(conn)
        .await)?;
    match row {
        Some(row) => row.into_domain(),
        None => Err(RepoError::Corrupt("regla_config has no row".into())),
    }
}

/// Replaces the configuration.
pub async fn save_rules(
    tx: &mut Tx,
    reglas: &ReglasCompliance,
    at: DateTime<Utc>,
) -> Result<(), RepoError> {
    let columns = reglas_columns(reglas);
    with_tx!(tx, conn => sqlx::query(
        "INSERT INTO regla_config (regla_config_id, limite_centavos, monedas_permitidas,
            partners_bloqueados, emails_bloqueados, fecha_actualizacion)
         VALUES (1, $1, $2, $3, $4, $5)
         ON CONFLICT (regla_config_id) DO UPDATE SET limite_centavos = excluded.limite_centavos,
            monedas_permitidas = excluded.monedas_permitidas,
            partners_bloqueados = excluded.partners_bloqueados,
            emails_bloqueados = excluded.emails_bloqueados,
            fecha_actualizacion = excluded.fecha_actualizacion",
    )
    .bind(columns.limite)
    .bind(&columns.monedas)
    .bind(&columns.partners)
    .bind(&columns.emails)
    .bind(at)
    .execute(conn)
    .await
    .map(|r| r.rows_affected()))?;
    Ok(())
}

/// When the configuration last changed.
pub async fn rules_updated_at(db: &Db) -> Result<Option<DateTime<Utc>>, RepoError> {
    Ok(with_reader!(db, conn => sqlx::query_scalar(
        "SELECT fecha_actualizacion FROM regla_config WHERE regla_config_id = 1",
    )
    .fetch_optional(conn)
    .await)?)
}

// ---------------------------------------------------------------------------------------------
// Known partners

#[derive(Debug, sqlx::FromRow)]
struct PartnerRow {
    partner_id: Uuid,
    email: String,
    nombre: String,
    tipo: String,
}

impl From<PartnerRow> for PartnerConocido {
    fn from(row: PartnerRow) -> Self {
        PartnerConocido {
            partner_id: row.partner_id,
            email: row.email,
            nombre: row.nombre,
            tipo: row.tipo,
        }
    }
}

const SELECT_PARTNER: &str =
    "SELECT partner_id, email, nombre, tipo FROM partner_conocido WHERE partner_id = $1";

/// Records a partner; `false` when it was known already (the first record stays).
pub async fn insert_known_partner(
    tx: &mut Tx,
    partner: &PartnerConocido,
    at: DateTime<Utc>,
) -> Result<bool, RepoError> {
    let inserted = with_tx!(tx, conn => bind_known_partner!(sqlx::query(INSERT_KNOWN_PARTNER), partner, at)
    .execute(conn)
    .await
    .map(|r| r.rows_affected()))?;
    Ok(inserted == 1)
}

const INSERT_KNOWN_PARTNER: &str = "INSERT INTO partner_conocido (partner_id, email, nombre, tipo,
        registrado_en) VALUES ($1, $2, $3, $4, $5) ON CONFLICT (partner_id) DO NOTHING";
const INSERT_KNOWN_PARTNER_PARAMS: usize = 5;

macro_rules! bind_known_partner {
    ($query:expr, $partner:expr, $at:expr) => {{
        let partner = $partner;
        $query
            .bind(partner.partner_id)
            .bind(&partner.email)
            .bind(&partner.nombre)
            .bind(&partner.tipo)
            .bind($at)
    }};
}
use bind_known_partner;

/// Records `partners`, each as [`insert_known_partner`] does. On SQLite the inserts go as one
/// query, one trip to the connection's thread instead of one per partner; PostgreSQL prepares
/// one statement per query, so there they run in turn.
pub async fn insert_known_partners(
    tx: &mut Tx,
    partners: &[PartnerConocido],
    at: DateTime<Utc>,
) -> Result<(), RepoError> {
    if let ::storage::TxConn::Sqlite(transaction) = &mut tx.conn {
        let sql = ::storage::joined(
            partners
                .iter()
                .map(|_| (INSERT_KNOWN_PARTNER, INSERT_KNOWN_PARTNER_PARAMS)),
        );
        let mut query = sqlx::query(&sql);
        for partner in partners {
            query = bind_known_partner!(query, partner, at);
        }
        query.execute(&mut **transaction).await?;
        return Ok(());
    }
    for partner in partners {
        insert_known_partner(tx, partner, at).await?;
    }
    Ok(())
}

pub async fn find_known_partner(
    db: &Db,
    partner_id: Uuid,
) -> Result<Option<PartnerConocido>, RepoError> {
    let row: Option<PartnerRow> = with_reader!(db, conn => sqlx::query_as(SELECT_PARTNER)
        .bind(partner_id)
        .fetch_optional(conn)
        .await)?;
    Ok(row.map(PartnerConocido::from))
}

// ---------------------------------------------------------------------------------------------
// Evaluations

#[derive(Debug, sqlx::FromRow)]
struct EvaluacionRow {
    contrato_id: Uuid,
    partner_id: Uuid,
    onboarding_id: Option<Uuid>,
    monto_centavos: i64,
    moneda: String,
    validaciones_pasadas: String,
    validacion_fallida: Option<String>,
    causa_rechazo: Option<String>,
    evaluado_en: DateTime<Utc>,
}

impl EvaluacionRow {
    fn into_domain(self) -> Result<Evaluacion, RepoError> {
        let what = format!("evaluacion {}", self.contrato_id);
        let validaciones_pasadas = json_strings(&what, &self.validaciones_pasadas)?
            .iter()
            .map(|nombre| {
                Regla::from_nombre(nombre)
                    .ok_or_else(|| RepoError::corrupt(&what, format!("rule {nombre}")))
            })
            .collect::<Result<Vec<_>, _>>()?;
        let rechazo = match self.validacion_fallida {
            None => None,
            Some(codigo) => Some(Rechazo {
                regla: Regla::from_codigo_fallo(&codigo)
                    .ok_or_else(|| RepoError::corrupt(&what, format!("code {codigo}")))?,
                causa: self.causa_rechazo.unwrap_or_default(),
                partner_desconocido: false,
            }),
        };
        Ok(Evaluacion {
            contrato_id: self.contrato_id,
            partner_id: self.partner_id,
            onboarding_id: self.onboarding_id,
            monto: Amount::from_cents(self.monto_centavos),
            moneda: self.moneda,
            veredicto: Veredicto {
                validaciones_pasadas,
                rechazo,
            },
            evaluado_en: self.evaluado_en,
        })
    }
}

const EVALUACION_COLUMNS: &str = "contrato_id, partner_id, onboarding_id, monto_centavos, moneda,
    validaciones_pasadas, validacion_fallida, causa_rechazo, evaluado_en";

/// Records the decision on a contract; `false` when the contract was decided before (a
/// concurrent or earlier delivery won), in which case nothing may be published again.
pub async fn insert_evaluation(tx: &mut Tx, evaluacion: &Evaluacion) -> Result<bool, RepoError> {
    let inserted = with_tx!(tx, conn => bind_evaluation!(sqlx::query(INSERT_EVALUATION), evaluacion)
    .execute(conn)
    .await
    .map(|r| r.rows_affected()))?;
    Ok(inserted == 1)
}

const INSERT_EVALUATION: &str = "INSERT INTO evaluacion (contrato_id, partner_id, onboarding_id,
        monto_centavos, moneda, aprobado, validaciones_pasadas, validacion_fallida, causa_rechazo,
        evaluado_en, dia)
     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)
     ON CONFLICT (contrato_id) DO NOTHING";
const INSERT_EVALUATION_PARAMS: usize = 11;

macro_rules! bind_evaluation {
    ($query:expr, $evaluacion:expr) => {{
        let evaluacion = $evaluacion;
        let veredicto = &evaluacion.veredicto;
        $query
            .bind(evaluacion.contrato_id)
            .bind(evaluacion.partner_id)
            .bind(evaluacion.onboarding_id)
            .bind(evaluacion.monto.cents())
            .bind(&evaluacion.moneda)
            .bind(veredicto.aprobado())
            .bind(to_json(&veredicto.nombres_pasadas()))
            .bind(veredicto.validacion_fallida())
            .bind(veredicto.causa_rechazo())
            .bind(evaluacion.evaluado_en)
            .bind(evaluacion.evaluado_en.date_naive())
    }};
}
use bind_evaluation;

/// Records decisions and opens accounts, each as [`insert_evaluation`] and [`insert_account`]
/// do; `Ok(false)` when some contract was decided or some partner had its account already
/// (which one cannot be told), and the caller drops `tx`. On SQLite the inserts go as one
/// query, one trip to the connection's thread instead of one per row; PostgreSQL prepares one
/// statement per query, so there they run in turn.
pub async fn insert_decisions(
    tx: &mut Tx,
    evaluaciones: &[Evaluacion],
    cuentas: &[CuentaFinanciera],
) -> Result<bool, RepoError> {
    if let ::storage::TxConn::Sqlite(transaction) = &mut tx.conn {
        let sql = ::storage::joined(
            evaluaciones
                .iter()
                .map(|_| (INSERT_EVALUATION, INSERT_EVALUATION_PARAMS))
                .chain(
                    cuentas
                        .iter()
                        .map(|_| (INSERT_ACCOUNT, INSERT_ACCOUNT_PARAMS)),
                ),
        );
        let impuestos: Vec<String> = cuentas.iter().map(impuestos_column).collect();
        let mut query = sqlx::query(&sql);
        for evaluacion in evaluaciones {
            query = bind_evaluation!(query, evaluacion);
        }
        for (cuenta, impuestos) in cuentas.iter().zip(&impuestos) {
            query = bind_account!(query, cuenta, impuestos);
        }
        let inserted = query.execute(&mut **transaction).await?.rows_affected();
        return Ok(inserted == (evaluaciones.len() + cuentas.len()) as u64);
    }
    for evaluacion in evaluaciones {
        if !insert_evaluation(tx, evaluacion).await? {
            return Ok(false);
        }
    }
    for cuenta in cuentas {
        if !insert_account(tx, cuenta).await? {
            return Ok(false);
        }
    }
    Ok(true)
}

/// What a batch of contract evaluations must know before deciding, in one statement: which of
/// `contrato_ids` were decided, which of `partner_ids` compliance knows, and which of those
/// have an account.
#[derive(Debug, Default)]
pub struct Conocidos {
    pub decididos: HashSet<Uuid>,
    pub partners: HashMap<Uuid, PartnerConocido>,
    pub con_cuenta: HashSet<Uuid>,
}

/// Reads [`Conocidos`] for a batch's contracts and partners inside `tx`.
pub async fn conocidos_tx(
    tx: &mut Tx,
    contrato_ids: &[Uuid],
    partner_ids: &[Uuid],
) -> Result<Conocidos, RepoError> {
    // One index probe per id on PostgreSQL (see `storage::select_by_unique_keys`): each
    // table is keyed by the id it is looked up by.
    let backend = tx.backend();
    let by_id = |select: &str, table: &str, key: &str, param: usize| {
        ::storage::select_by_unique_keys(
            backend,
            select,
            table,
            key,
            ::storage::ListedKey::Uuid,
            param,
            None,
        )
    };
    let sql = [
        by_id(
            "0 AS kind, contrato_id AS id, NULL AS email, NULL AS nombre, NULL AS tipo",
            "evaluacion",
            "contrato_id",
            1,
        ),
        by_id(
            "1, partner_id, email, nombre, tipo",
            "partner_conocido",
            "partner_id",
            2,
        ),
        by_id(
            "2, partner_id, NULL, NULL, NULL",
            "cuenta_financiera",
            "partner_id",
            2,
        ),
    ]
    .join(" UNION ALL ");
    #[derive(sqlx::FromRow)]
    struct Row {
        kind: i32,
        id: Uuid,
        email: Option<String>,
        nombre: Option<String>,
        tipo: Option<String>,
    }
    let rows: Vec<Row> = with_tx!(tx, conn => sqlx::query_as(&sql)
        .bind(::storage::hex_list(contrato_ids.iter().map(|id| [*id])))
        .bind(::storage::hex_list(partner_ids.iter().map(|id| [*id])))
        .fetch_all(conn)
        .await)?;
    let mut conocidos = Conocidos::default();
    for row in rows {
        match (row.kind, row.email, row.nombre, row.tipo) {
            (0, ..) => {
                conocidos.decididos.insert(row.id);
            }
            (1, Some(email), Some(nombre), Some(tipo)) => {
                let partner = PartnerConocido {
                    partner_id: row.id,
                    email,
                    nombre,
                    tipo,
                };
                conocidos.partners.insert(row.id, partner);
            }
            (2, ..) => {
                conocidos.con_cuenta.insert(row.id);
            }
            (kind, ..) => {
                return Err(RepoError::Corrupt(format!(
                    "unexpected row {kind} for {}",
                    row.id
                )))
            }
        }
    }
    Ok(conocidos)
}

pub async fn find_evaluation_tx(
    tx: &mut Tx,
    contrato_id: Uuid,
) -> Result<Option<Evaluacion>, RepoError> {
    let sql = format!("SELECT {EVALUACION_COLUMNS} FROM evaluacion WHERE contrato_id = $1");
    let row: Option<EvaluacionRow> = with_tx!(tx, conn => sqlx::query_as(&sql)
        .bind(contrato_id)
        .fetch_optional(conn)
        .await)?;
    row.map(EvaluacionRow::into_domain).transpose()
}

/// What evaluating a contract reads, taken in one query (one round trip inside the handler's
/// transaction instead of three): whether the contract was decided already, the rules, and the
/// partner if compliance knows it.
#[derive(Debug)]
pub struct Antecedentes {
    pub decidido: bool,
    pub reglas: ReglasCompliance,
    pub partner: Option<PartnerConocido>,
}

#[derive(Debug, sqlx::FromRow)]
struct AntecedentesRow {
    decidido: bool,
    #[sqlx(flatten)]
    reglas: ReglasRow,
    partner_id: Option<Uuid>,
    email: Option<String>,
    nombre: Option<String>,
    tipo: Option<String>,
}

/// Reads [`Antecedentes`] for `contrato_id` of `partner_id` inside `tx`, so the evaluation sees
/// one consistent version of the rules and the partner.
pub async fn antecedentes_tx(
    tx: &mut Tx,
    contrato_id: Uuid,
    partner_id: Uuid,
) -> Result<Antecedentes, RepoError> {
    let row: Option<AntecedentesRow> = with_tx!(tx, conn => sqlx::query_as(
        "SELECT EXISTS (SELECT 1 FROM evaluacion WHERE contrato_id = $1) AS decidido,
            r.limite_centavos, r.monedas_permitidas, r.partners_bloqueados, r.emails_bloqueados,
            p.partner_id, p.email, p.nombre, p.tipo
         FROM regla_config r LEFT JOIN partner_conocido p ON p.partner_id = $2
         WHERE r.regla_config_id = 1",
    )
    .bind(contrato_id)
    .bind(partner_id)
    .fetch_optional(conn)
    .await)?;
    let Some(row) = row else {
        return Err(RepoError::Corrupt("regla_config has no row".into()));
    };
    let partner = match (row.partner_id, row.email, row.nombre, row.tipo) {
        (Some(partner_id), Some(email), Some(nombre), Some(tipo)) => Some(PartnerConocido {
            partner_id,
            email,
            nombre,
            tipo,
        }),
        _ => None,
    };
    Ok(Antecedentes {
        decidido: row.decidido,
        reglas: row.reglas.into_domain()?,
        partner,
    })
}

pub async fn find_evaluation(db: &Db, contrato_id: Uuid) -> Result<Option<Evaluacion>, RepoError> {
    let sql = format!("SELECT {EVALUACION_COLUMNS} FROM evaluacion WHERE contrato_id = $1");
    let row: Option<EvaluacionRow> = with_reader!(db, conn => sqlx::query_as(&sql)
        .bind(contrato_id)
        .fetch_optional(conn)
        .await)?;
    row.map(EvaluacionRow::into_domain).transpose()
}

// ---------------------------------------------------------------------------------------------
// Financial accounts

#[derive(Debug, sqlx::FromRow)]
struct CuentaRow {
    partner_id: Uuid,
    estado: String,
    enable_at: DateTime<Utc>,
    moneda: String,
    metodo_pago: String,
    impuestos: String,
    fecha_creacion: DateTime<Utc>,
}

#[derive(serde::Serialize, serde::Deserialize)]
struct ImpuestoColumn {
    nombre: String,
    porcentaje: String,
}

impl CuentaRow {
    fn into_domain(self) -> Result<CuentaFinanciera, RepoError> {
        let what = format!("cuenta_financiera {}", self.partner_id);
        let bad = |error: crate::domain::ValueError| RepoError::corrupt(&what, error);
        let impuestos: Vec<ImpuestoColumn> =
            serde_json::from_str(&self.impuestos).map_err(|e| RepoError::corrupt(&what, e))?;
        let impuestos = impuestos
            .into_iter()
            .map(|linea| {
                Ok(LineaImpuesto {
                    nombre: linea.nombre,
                    porcentaje: Porcentaje::parse(&linea.porcentaje).map_err(bad)?,
                })
            })
            .collect::<Result<Vec<_>, RepoError>>()?;
        Ok(CuentaFinanciera {
            partner_id: self.partner_id,
            estado: EstadoCuenta::parse(&self.estado).map_err(bad)?,
            enable_at: self.enable_at,
            moneda: Moneda::parse(&self.moneda).map_err(bad)?,
            metodo_pago: MetodoPago::parse(&self.metodo_pago).map_err(bad)?,
            impuestos,
            fecha_creacion: self.fecha_creacion,
        })
    }
}

const CUENTA_COLUMNS: &str =
    "partner_id, estado, enable_at, moneda, metodo_pago, impuestos, fecha_creacion";

/// Opens the partner's account; `false` when it has one already (which is left unchanged:
/// never a second account).
pub async fn insert_account(tx: &mut Tx, cuenta: &CuentaFinanciera) -> Result<bool, RepoError> {
    let impuestos = impuestos_column(cuenta);
    let inserted = with_tx!(tx, conn => bind_account!(sqlx::query(INSERT_ACCOUNT), cuenta, &impuestos)
    .execute(conn)
    .await
    .map(|r| r.rows_affected()))?;
    Ok(inserted == 1)
}

const INSERT_ACCOUNT: &str = "INSERT INTO cuenta_financiera (partner_id, estado, enable_at,
        moneda, metodo_pago, impuestos, fecha_creacion, dia_creacion)
     VALUES ($1, $2, $3, $4, $5, $6, $7, $8) ON CONFLICT (partner_id) DO NOTHING";
const INSERT_ACCOUNT_PARAMS: usize = 8;

macro_rules! bind_account {
    ($query:expr, $cuenta:expr, $impuestos:expr) => {{
        let cuenta = $cuenta;
        $query
            .bind(cuenta.partner_id)
            .bind(cuenta.estado.as_str())
            .bind(cuenta.enable_at)
            .bind(cuenta.moneda.as_str())
            .bind(cuenta.metodo_pago.as_str())
            .bind($impuestos)
            .bind(cuenta.fecha_creacion)
            .bind(cuenta.fecha_creacion.date_naive())
    }};
}
use bind_account;

/// The account's tax lines as stored (a JSON list).
fn impuestos_column(cuenta: &CuentaFinanciera) -> String {
    let impuestos: Vec<ImpuestoColumn> = cuenta
        .impuestos
        .iter()
        .map(|linea| ImpuestoColumn {
            nombre: linea.nombre.clone(),
            porcentaje: linea.porcentaje.to_string(),
        })
        .collect();
    to_json(&impuestos)
}

pub async fn find_account_tx(
    tx: &mut Tx,
    partner_id: Uuid,
) -> Result<Option<CuentaFinanciera>, RepoError> {
    let sql = format!("SELECT {CUENTA_COLUMNS} FROM cuenta_financiera WHERE partner_id = $1");
    let row: Option<CuentaRow> = with_tx!(tx, conn => sqlx::query_as(&sql)
        .bind(partner_id)
        .fetch_optional(conn)
        .await)?;
    row.map(CuentaRow::into_domain).transpose()
}

pub async fn find_account(
    db: &Db,
    partner_id: Uuid,
) -> Result<Option<CuentaFinanciera>, RepoError> {
    let sql = format!("SELECT {CUENTA_COLUMNS} FROM cuenta_financiera WHERE partner_id = $1");
    let row: Option<CuentaRow> = with_reader!(db, conn => sqlx::query_as(&sql)
        .bind(partner_id)
        .fetch_optional(conn)
        .await)?;
    row.map(CuentaRow::into_domain).transpose()
}

/// List filters; `None` means "any".
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CuentaFilter {
    pub estado: Option<EstadoCuenta>,
    pub moneda: Option<Moneda>,
}

const CUENTA_WHERE: &str = "($1 IS NULL OR estado = $1) AND ($2 IS NULL OR moneda = $2)";

/// One page of accounts in partner id order (up to `limit + 1` rows after `after`, so the
/// caller knows whether more exist) and the total matching the filter.
pub async fn list_accounts(
    db: &Db,
    filter: &CuentaFilter,
    limit: i64,
    after: Option<Uuid>,
) -> Result<(Vec<CuentaFinanciera>, i64), RepoError> {
    let estado = filter.estado.map(EstadoCuenta::as_str);
    let moneda = filter.moneda.as_ref().map(Moneda::as_str);
    let sql = format!(
        "SELECT {CUENTA_COLUMNS} FROM cuenta_financiera WHERE {CUENTA_WHERE}
         AND ($3 IS NULL OR partner_id > $3) ORDER BY partner_id LIMIT $4"
    );
    let rows: Vec<CuentaRow> = with_reader!(db, conn => sqlx::query_as(&sql)
        .bind(estado)
        .bind(moneda)
        .bind(after)
        .bind(limit + 1)
        .fetch_all(conn)
        .await)?;
    let sql = format!("SELECT COUNT(*) FROM cuenta_financiera WHERE {CUENTA_WHERE}");
    let total: i64 = with_reader!(db, conn => sqlx::query_scalar(&sql)
        .bind(estado)
        .bind(moneda)
        .fetch_one(conn)
        .await)?;
    let cuentas = rows
        .into_iter()
        .map(CuentaRow::into_domain)
        .collect::<Result<_, _>>()?;
    Ok((cuentas, total))
}

// ---------------------------------------------------------------------------------------------
// Reports

/// Decisions of one currency in a period.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TotalEvaluaciones {
    pub moneda: String,
    pub aprobado: bool,
    pub contratos: i64,
    /// Sum of the contracts' amounts (exact).
    pub monto: Amount,
}

/// Accounts of one currency and state opened in a period.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TotalCuentas {
    pub moneda: String,
    pub estado: EstadoCuenta,
    pub cuentas: i64,
}

#[derive(Debug, sqlx::FromRow)]
struct TotalEvaluacionesRow {
    moneda: String,
    aprobado: bool,
    contratos: i64,
    centavos: i64,
}

#[derive(Debug, sqlx::FromRow)]
struct TotalCuentasRow {
    moneda: String,
    estado: String,
    cuentas: i64,
}

/// Contracts decided in `periodo` grouped by currency and outcome, ordered by both.
pub async fn evaluation_totals(
    db: &Db,
    periodo: &Periodo,
) -> Result<Vec<TotalEvaluaciones>, RepoError> {
    let rows: Vec<TotalEvaluacionesRow> = with_reader!(db, conn => sqlx::query_as(
        "SELECT moneda, aprobado, COUNT(*) AS contratos,
            CAST(COALESCE(SUM(monto_centavos), 0) AS BIGINT) AS centavos
         FROM evaluacion
         WHERE ($1 IS NULL OR dia >= $1) AND ($2 IS NULL OR dia <= $2)
         GROUP BY moneda, aprobado ORDER BY moneda, aprobado DESC",
    )
    .bind(periodo.desde())
    .bind(periodo.hasta())
    .fetch_all(conn)
    .await)?;
    Ok(rows
        .into_iter()
        .map(|row| TotalEvaluaciones {
            moneda: row.moneda,
            aprobado: row.aprobado,
            contratos: row.contratos,
            monto: Amount::from_cents(row.centavos),
        })
        .collect())
}

/// Accounts opened in `periodo` grouped by currency and current state.
pub async fn account_totals(db: &Db, periodo: &Periodo) -> Result<Vec<TotalCuentas>, RepoError> {
    let rows: Vec<TotalCuentasRow> = with_reader!(db, conn => sqlx::query_as(
        "SELECT moneda, estado, COUNT(*) AS cuentas FROM cuenta_financiera
         WHERE ($1 IS NULL OR dia_creacion >= $1) AND ($2 IS NULL OR dia_creacion <= $2)
         GROUP BY moneda, estado ORDER BY moneda, estado",
    )
    .bind(periodo.desde())
    .bind(periodo.hasta())
    .fetch_all(conn)
    .await)?;
    rows.into_iter()
        .map(|row| {
            Ok(TotalCuentas {
                estado: EstadoCuenta::parse(&row.estado)
                    .map_err(|e| RepoError::corrupt("cuenta_financiera estado", e))?,
                moneda: row.moneda,
                cuentas: row.cuentas,
            })
        })
        .collect()
}

/// For tests and diagnostics: how many accounts a partner has (0 or 1, by construction).
pub async fn count_accounts(db: &Db, partner_id: Uuid) -> Result<i64, RepoError> {
    Ok(with_reader!(db, conn => sqlx::query_scalar(
        "SELECT COUNT(*) FROM cuenta_financiera WHERE partner_id = $1",
    )
    .bind(partner_id)
    .fetch_one(conn)
    .await)?)
}
