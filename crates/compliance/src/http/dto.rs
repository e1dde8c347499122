//! Wire shapes of the compliance API. Requests hold raw input (strings, JSON values) so that
//! every bad field is reported by name, and convert once into domain types; responses are built
//! by hand from the domain (which never derives Serialize). Money travels as decimal strings.

use std::collections::BTreeSet;

use chrono::{DateTime, NaiveDate, Utc};
use kernel::Amount;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use utoipa::{IntoParams, ToSchema};
use uuid::Uuid;

use crate::application::Informe;
use crate::domain::{
    CambiosReglas, ContratoPropuesto, CuentaFinanciera, EmailBloqueado, EstadoCuenta, FieldIssue,
    MetodoPago, Moneda, Periodo, ReglasCompliance, Veredicto, Vigencia, ESTADOS_CONTRATO,
    ESTADO_ACEPTABLE, TIPOS_CONTRATO,
};
use crate::http::error::ApiError;
use crate::storage::CuentaFilter;

use web::dto::given;
pub use web::dto::timestamp;

fn required<'a>(
    campo: &'static str,
    raw: &'a Option<String>,
    issues: &mut Vec<FieldIssue>,
) -> Option<&'a str> {
    match given(raw) {
        Some(raw) => Some(raw),
        None => {
            issues.push(FieldIssue::new(campo, "is required"));
            None
        }
    }
}

fn uuid_field(
    campo: &'static str,
    raw: &Option<String>,
    issues: &mut Vec<FieldIssue>,
) -> Option<Uuid> {
    let raw = required(campo, raw, issues)?;
    Uuid::parse_str(raw)
        .map_err(|_| issues.push(FieldIssue::new(campo, "must be a UUID")))
        .ok()
}

fn date_field(campo: &'static str, raw: &str, issues: &mut Vec<FieldIssue>) -> Option<NaiveDate> {
    NaiveDate::parse_from_str(raw, "%Y-%m-%d")
        .map_err(|_| issues.push(FieldIssue::new(campo, "must be a date YYYY-MM-DD")))
        .ok()
}

/// An amount given as a JSON number or a decimal string with at most two places.
fn amount_field(
    campo: &'static str,
    raw: Option<&Value>,
    issues: &mut Vec<FieldIssue>,
) -> Option<Amount> {
    match raw {
        None | Some(Value::Null) => {
            issues.push(FieldIssue::new(campo, "is required"));
            None
        }
        Some(value @ (Value::Number(_) | Value::String(_))) => {
            serde_json::from_value::<Amount>(value.clone())
                .map_err(|error| issues.push(FieldIssue::new(campo, error.to_string())))
                .ok()
        }
        Some(_) => {
            issues.push(FieldIssue::new(
                campo,
                "must be a number or a decimal string",
            ));
            None
        }
    }
}

fn moneda_field(
    campo: &'static str,
    raw: &Option<String>,
    issues: &mut Vec<FieldIssue>,
) -> Option<Moneda> {
    let raw = required(campo, raw, issues)?;
    Moneda::parse(raw)
        .map_err(|error| issues.push(FieldIssue::new(campo, error.0)))
        .ok()
}

fn finish<T>(value: Option<T>, issues: Vec<FieldIssue>) -> Result<T, ApiError> {
    match value {
        Some(value) if issues.is_empty() => Ok(value),
        _ => Err(ApiError::Invalid(issues)),
    }
}

/// Body of `POST /partners/validate`: a proposed contract.
#[derive(Debug, Clone, Default, Deserialize, ToSchema)]
pub struct ValidarContratoRequest {
    pub partner_id: Option<String>,
    /// `CPA`, `CPL`, `CPC`, `revshare` or `fijo`.
    #[schema(example = "CPA")]
    pub tipo: Option<String>,
    /// A JSON number or a decimal string with at most two places.
    #[schema(value_type = String, example = "1500.00")]
    pub monto: Option<Value>,
    /// ISO 4217 code.
    #[schema(example = "USD")]
    pub moneda: Option<String>,
    /// A contract state; default `pendiente` (the only one compliance accepts).
    pub estado: Option<String>,
    /// `YYYY-MM-DD`.
    #[schema(example = "2025-01-01")]
    pub fecha_inicio: Option<String>,
    /// `YYYY-MM-DD`, optional.
    pub fecha_fin: Option<String>,
}

impl ValidarContratoRequest {
    /// The contract to evaluate. Malformed input is a 400; a well-formed contract that breaks
    /// a rule (negative amount, currency not allowed, end before start) is for the rules.
    pub fn parse(&self) -> Result<ContratoPropuesto, ApiError> {
        let mut issues = Vec::new();
        let partner_id = uuid_field("partner_id", &self.partner_id, &mut issues);
        if let Some(tipo) = required("tipo", &self.tipo, &mut issues) {
            if !TIPOS_CONTRATO.contains(&tipo) {
                issues.push(FieldIssue::new(
                    "tipo",
                    format!("must be one of {}", TIPOS_CONTRATO.join(", ")),
                ));
            }
        }
        let monto = amount_field("monto", self.monto.as_ref(), &mut issues);
        let moneda = moneda_field("moneda", &self.moneda, &mut issues);
        let estado = match self
            .estado
            .as_deref()
            .map(str::trim)
            .filter(|e| !e.is_empty())
        {
            None => Some(ESTADO_ACEPTABLE.to_owned()),
            Some(estado) if ESTADOS_CONTRATO.contains(&estado) => Some(estado.to_owned()),
            Some(_) => {
                issues.push(FieldIssue::new(
                    "estado",
                    format!("must be one of {}", ESTADOS_CONTRATO.join(", ")),
                ));
                None
            }
        };
        let inicio = required("fecha_inicio", &self.fecha_inicio, &mut issues)
            .and_then(|raw| date_field("fecha_inicio", raw, &mut issues));
        let fin = match self
            .fecha_fin
            .as_deref()
            .map(str::trim)
            .filter(|f| !f.is_empty())
        {
            None => Some(None),
            Some(raw) => date_field("fecha_fin", raw, &mut issues).map(Some),
        };
        let contrato = match (partner_id, monto, moneda, estado, inicio, fin) {
            (
                Some(partner_id),
                Some(monto),
                Some(moneda),
                Some(estado),
                Some(inicio),
                Some(fin),
            ) => Some(ContratoPropuesto {
                partner_id,
                monto,
                moneda: moneda.as_str().to_owned(),
                estado,
                vigencia: Vigencia::Fechas { inicio, fin },
            }),
            _ => None,
        };
        finish(contrato, issues)
    }
}

/// The rules' answer to a proposed contract.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct ValidacionDto {
    pub aprobado: bool,
    /// The rules passed, in order (all four when approved).
    pub validaciones_pasadas: Vec<String>,
    /// `MONTO_INVALIDO`, `MONEDA_NO_PERMITIDA`, `PARTNER_INVALIDO` or `ESTADO_INVALIDO`.
    pub validacion_fallida: Option<String>,
    pub causa_rechazo: Option<String>,
}

impl ValidacionDto {
    pub fn from_domain(veredicto: &Veredicto) -> Self {
        Self {
            aprobado: veredicto.aprobado(),
            validaciones_pasadas: veredicto.nombres_pasadas(),
            validacion_fallida: veredicto.validacion_fallida().map(str::to_owned),
            causa_rechazo: veredicto.causa_rechazo().map(str::to_owned),
        }
    }
}

/// Body of `POST /compliance/register`.
#[derive(Debug, Clone, Default, Deserialize, ToSchema)]
pub struct RegistrarCuentaRequest {
    pub partner_id: Option<String>,
    /// ISO 4217 code.
    #[schema(example = "COP")]
    pub moneda: Option<String>,
    /// `CREDIT_CARD`, `BANK_TRANSFER` (default) or `PAYPAL`.
    pub metodo_pago: Option<String>,
}

/// A validated account registration.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NuevaCuenta {
    pub partner_id: Uuid,
    pub moneda: Moneda,
    pub metodo_pago: MetodoPago,
}

impl RegistrarCuentaRequest {
    pub fn parse(&self) -> Result<NuevaCuenta, ApiError> {
        let mut issues = Vec::new();
        let partner_id = uuid_field("partner_id", &self.partner_id, &mut issues);
        let moneda = moneda_field("moneda", &self.moneda, &mut issues);
        let metodo_pago = match self
            .metodo_pago
            .as_deref()
            .map(str::trim)
            .filter(|m| !m.is_empty())
        {
            None => Some(MetodoPago::default()),
            Some(raw) => MetodoPago::parse(raw)
                .map_err(|error| issues.push(FieldIssue::new("metodo_pago", error.0)))
                .ok(),
        };
        let cuenta = match (partner_id, moneda, metodo_pago) {
            (Some(partner_id), Some(moneda), Some(metodo_pago)) => Some(NuevaCuenta {
                partner_id,
                moneda,
                metodo_pago,
            }),
            _ => None,
        };
        finish(cuenta, issues)
    }
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct ImpuestoDto {
    pub nombre: String,
    /// Percent with two decimals, e.g. `"19.00"`.
    pub porcentaje: String,
}

/// A financial account.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct CuentaDto {
    pub partner_id: Uuid,
    /// `ACTIVE`, `INACTIVE` or `SUSPENDED`.
    pub estado: String,
    pub enable_at: String,
    pub moneda: String,
    /// `CREDIT_CARD`, `BANK_TRANSFER` or `PAYPAL`.
    pub metodo_pago: String,
    pub impuestos: Vec<ImpuestoDto>,
    pub fecha_creacion: String,
}

impl CuentaDto {
    pub fn from_domain(cuenta: &CuentaFinanciera) -> Self {
        Self {
            partner_id: cuenta.partner_id,
            estado: cuenta.estado.as_str().to_owned(),
            enable_at: timestamp(cuenta.enable_at),
            moneda: cuenta.moneda.as_str().to_owned(),
            metodo_pago: cuenta.metodo_pago.as_str().to_owned(),
            impuestos: cuenta
                .impuestos
                .iter()
                .map(|linea| ImpuestoDto {
                    nombre: linea.nombre.clone(),
                    porcentaje: linea.porcentaje.to_string(),
                })
                .collect(),
            fecha_creacion: timestamp(cuenta.fecha_creacion),
        }
    }
}

/// Query of `GET /compliance/cuentas`.
#[derive(Debug, Clone, Default, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ListarCuentasParams {
    /// `ACTIVE`, `INACTIVE` or `SUSPENDED`.
    pub estado: Option<String>,
    /// ISO 4217 code.
    pub moneda: Option<String>,
    /// Items per page, 1 to 500 (default 50).
    pub limit: Option<i64>,
    /// The `next_cursor` of the previous page.
    pub cursor: Option<String>,
}

impl ListarCuentasParams {
    pub fn parse(&self) -> Result<(CuentaFilter, web::pagination::PageRequest), ApiError> {
        let mut issues = Vec::new();
        let estado = given(&self.estado).and_then(|raw| {
            EstadoCuenta::parse(raw)
                .map_err(|error| issues.push(FieldIssue::new("estado", error.0)))
                .ok()
        });
        let moneda = given(&self.moneda).and_then(|raw| {
            Moneda::parse(raw)
                .map_err(|error| issues.push(FieldIssue::new("moneda", error.0)))
                .ok()
        });
        let page = web::PageParams {
            limit: self.limit,
            cursor: self.cursor.clone(),
        }
        .parse_along(web::field_errors(issues))?;
        Ok((CuentaFilter { estado, moneda }, page))
    }
}

/// The rule configuration.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct ReglasDto {
    /// Contracts above this amount are rejected (`MONTO_INVALIDO`).
    #[schema(example = "50000.00")]
    pub limite_monto: String,
    /// ISO 4217 codes, sorted.
    pub monedas_permitidas: Vec<String>,
    /// Partner ids rejected by rule 3.
    pub partners_bloqueados: Vec<Uuid>,
    /// E-mails rejected by rule 3 (compared case-insensitively).
    pub emails_bloqueados: Vec<String>,
    pub fecha_actualizacion: Option<String>,
}

impl ReglasDto {
    pub fn from_domain(reglas: &ReglasCompliance, at: Option<DateTime<Utc>>) -> Self {
        Self {
            limite_monto: reglas.limite().to_string(),
            monedas_permitidas: reglas
                .monedas()
                .iter()
                .map(|m| m.as_str().to_owned())
                .collect(),
            partners_bloqueados: reglas.bloqueo().partner_ids.iter().copied().collect(),
            emails_bloqueados: reglas
                .bloqueo()
                .emails
                .iter()
                .map(|e| e.as_str().to_owned())
                .collect(),
            fecha_actualizacion: at.map(timestamp),
        }
    }
}

/// Body of `PUT /compliance/reglas`. A field left out (or `null`) keeps its current value; a
/// list that is sent replaces the current list.
#[derive(Debug, Clone, Default, Deserialize, ToSchema)]
pub struct ActualizarReglasRequest {
    /// A JSON number or a decimal string, not negative.
    #[schema(value_type = Option<String>, example = "50000.00")]
    pub limite_monto: Option<Value>,
    /// At least one ISO 4217 code.
    pub monedas_permitidas: Option<Vec<String>>,
    pub partners_bloqueados: Option<Vec<String>>,
    pub emails_bloqueados: Option<Vec<String>>,
}

impl ActualizarReglasRequest {
    pub fn parse(&self) -> Result<CambiosReglas, ApiError> {
        let mut issues = Vec::new();
        let limite = match &self.limite_monto {
            None | Some(Value::Null) => None,
            Some(value) => amount_field("limite_monto", Some(value), &mut issues),
        };
        fn each<T: Ord>(
            campo: &'static str,
            raw: &Option<Vec<String>>,
            parse: impl Fn(&str) -> Result<T, String>,
            issues: &mut Vec<FieldIssue>,
        ) -> Option<BTreeSet<T>> {
            let raw = raw.as_ref()?;
            let mut set = BTreeSet::new();
            for item in raw {
                match parse(item) {
                    Ok(value) => {
                        set.insert(value);
                    }
                    Err(error) => issues.push(FieldIssue::new(campo, format!("'{item}' {error}"))),
                }
            }
            Some(set)
        }
        let monedas = each(
            "monedas_permitidas",
            &self.monedas_permitidas,
            |raw| Moneda::parse(raw).map_err(|e| e.0),
            &mut issues,
        );
        let partner_ids = each(
            "partners_bloqueados",
            &self.partners_bloqueados,
            |raw| Uuid::parse_str(raw.trim()).map_err(|_| "is not a UUID".to_owned()),
            &mut issues,
        );
        let emails = each(
            "emails_bloqueados",
            &self.emails_bloqueados,
            |raw| EmailBloqueado::parse(raw).map_err(|e| e.0),
            &mut issues,
        );
        finish(
            Some(CambiosReglas {
                limite,
                monedas,
                partner_ids,
                emails,
            }),
            issues,
        )
    }
}

/// Query of `GET /reportes/financieros`.
#[derive(Debug, Clone, Default, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ReporteParams {
    /// First day included, `YYYY-MM-DD` (UTC).
    pub desde: Option<String>,
    /// Last day included, `YYYY-MM-DD` (UTC).
    pub hasta: Option<String>,
}

impl ReporteParams {
    pub fn parse(&self) -> Result<Periodo, ApiError> {
        let mut issues = Vec::new();
        let mut date = |campo, raw: &Option<String>| match given(raw) {
            None => Some(None),
            Some(raw) => date_field(campo, raw, &mut issues).map(Some),
        };
        let desde = date("desde", &self.desde);
        let hasta = date("hasta", &self.hasta);
        let periodo = match (desde, hasta) {
            (Some(desde), Some(hasta)) => match Periodo::new(desde, hasta) {
                Ok(periodo) => Some(periodo),
                Err(error) => {
                    issues.push(FieldIssue::new("desde", error.0));
                    None
                }
            },
            _ => None,
        };
        finish(periodo, issues)
    }
}

/// Totals of one currency in the period.
#[derive(Debug, Clone, Default, Serialize, Deserialize, ToSchema)]
pub struct TotalMonedaDto {
    pub moneda: String,
    pub contratos_aprobados: i64,
    pub contratos_rechazados: i64,
    /// Sum of the approved contracts' amounts (exact).
    pub monto_comprometido: String,
    /// Sum of the rejected contracts' amounts (exact).
    pub monto_rechazado: String,
    pub cuentas_activas: i64,
    pub cuentas_inactivas: i64,
    pub cuentas_suspendidas: i64,
}

/// Totals over every currency (amounts are per currency only: they do not add up).
#[derive(Debug, Clone, Default, Serialize, Deserialize, ToSchema)]
pub struct TotalesDto {
    pub contratos_aprobados: i64,
    pub contratos_rechazados: i64,
    pub cuentas_activas: i64,
    pub cuentas_inactivas: i64,
    pub cuentas_suspendidas: i64,
}

/// `GET /reportes/financieros`: contracts decided and accounts opened in the period, by
/// currency and state.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct ReporteDto {
    pub desde: Option<String>,
    pub hasta: Option<String>,
    pub totales: TotalesDto,
    pub por_moneda: Vec<TotalMonedaDto>,
    pub generado_en: String,
}

impl ReporteDto {
    pub fn from_domain(informe: &Informe) -> Self {
        let mut por_moneda: std::collections::BTreeMap<String, (TotalMonedaDto, Amount, Amount)> =
            std::collections::BTreeMap::new();
        let mut totales = TotalesDto::default();
        let mut entry = |moneda: &str| {
            por_moneda.entry(moneda.to_owned()).or_insert_with(|| {
                (
                    TotalMonedaDto {
                        moneda: moneda.to_owned(),
                        ..TotalMonedaDto::default()
                    },
                    Amount::ZERO,
                    Amount::ZERO,
                )
            });
        };
        for total in &informe.evaluaciones {
            entry(&total.moneda);
        }
        for total in &informe.cuentas {
            entry(&total.moneda);
        }
        for total in &informe.evaluaciones {
            if let Some((dto, comprometido, rechazado)) = por_moneda.get_mut(&total.moneda) {
                if total.aprobado {
                    dto.contratos_aprobados += total.contratos;
                    totales.contratos_aprobados += total.contratos;
                    *comprometido = comprometido
                        .checked_add(total.monto)
                        .unwrap_or(*comprometido);
                } else {
                    dto.contratos_rechazados += total.contratos;
                    totales.contratos_rechazados += total.contratos;
                    *rechazado = rechazado.checked_add(total.monto).unwrap_or(*rechazado);
                }
            }
        }
        for total in &informe.cuentas {
            if let Some((dto, _, _)) = por_moneda.get_mut(&total.moneda) {
                let (own, all) = match total.estado {
                    EstadoCuenta::Active => {
                        (&mut dto.cuentas_activas, &mut totales.cuentas_activas)
                    }
                    EstadoCuenta::Inactive => {
                        (&mut dto.cuentas_inactivas, &mut totales.cuentas_inactivas)
                    }
                    EstadoCuenta::Suspended => (
                        &mut dto.cuentas_suspendidas,
                        &mut totales.cuentas_suspendidas,
                    ),
                };
                *own += total.cuentas;
                *all += total.cuentas;
            }
        }
        Self {
            desde: informe.periodo.desde().map(|d| d.to_string()),
            hasta: informe.periodo.hasta().map(|d| d.to_string()),
            totales,
            por_moneda: por_moneda
                .into_values()
                .map(|(mut dto, comprometido, rechazado)| {
                    dto.monto_comprometido = comprometido.to_string();
                    dto.monto_rechazado = rechazado.to_string();
                    dto
                })
                .collect(),
            generado_en: timestamp(kernel::now()),
        }
    }
}
