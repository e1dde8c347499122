//! Wire shapes of the contracts and templates API. Requests hold raw input (strings, JSON
//! values) so that an unknown enum value or a malformed amount is reported per field, and
//! convert once into domain types; responses are built by hand from the domain.

use chrono::{DateTime, NaiveDate, Utc};
use kernel::Amount;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use utoipa::{IntoParams, ToSchema};
use uuid::Uuid;

use crate::application::Punto;
use crate::domain::{
    parse_duracion_dias, parse_fecha, CambiosContrato, Condiciones, Contrato, EstadoContrato,
    FieldIssue, Moneda, Monto, Motivo, NuevoContrato, Plantilla, TipoContrato, TipoPartner,
};
use crate::http::error::{field_errors, ApiError};
use crate::storage::{ContratoFilter, StoredEvent};

pub use web::dto::timestamp;

use web::dto::{given, present};

/// Collects field issues while parsing a request.
#[derive(Default)]
struct Issues(Vec<FieldIssue>);

impl Issues {
    fn check<T, E: std::fmt::Display>(
        &mut self,
        campo: &'static str,
        result: Result<T, E>,
    ) -> Option<T> {
        result
            .map_err(|error| self.0.push(FieldIssue::new(campo, error.to_string())))
            .ok()
    }

    fn required<T>(&mut self, campo: &'static str, value: Option<T>) -> Option<T> {
        if value.is_none() {
            self.0.push(FieldIssue::new(campo, "is required"));
        }
        value
    }

    fn finish<T>(self, value: Option<T>) -> Result<T, ApiError> {
        match value {
            Some(value) if self.0.is_empty() => Ok(value),
            _ => Err(ApiError::Invalid(self.0)),
        }
    }
}

/// A non-negative amount from a JSON number or decimal string.
fn monto(value: &Value) -> Result<Monto, String> {
    let amount: Amount = serde_json::from_value(value.clone()).map_err(|e| e.to_string())?;
    Monto::new(amount).map_err(|e| e.0)
}

/// Body of `POST /contratos` (and the legacy `POST /posts/`).
#[derive(Debug, Clone, Default, Serialize, Deserialize, ToSchema)]
pub struct CrearContratoRequest {
    pub partner_id: Option<String>,
    /// `CPA`, `CPL`, `CPC`, `revshare` or `fijo`.
    #[schema(example = "CPA")]
    pub tipo: Option<String>,
    /// Zero or more, a JSON number or a decimal string with at most two places.
    #[schema(value_type = String, example = "25.00")]
    pub monto: Option<Value>,
    /// ISO 4217, e.g. `USD`.
    #[schema(example = "USD")]
    pub moneda: Option<String>,
    pub condiciones: Option<String>,
    /// `YYYY-MM-DD`; today when absent.
    pub fecha_inicio: Option<String>,
    /// `YYYY-MM-DD`, not before `fecha_inicio`.
    pub fecha_fin: Option<String>,
}

impl CrearContratoRequest {
    pub fn parse(&self, hoy: NaiveDate) -> Result<NuevoContrato, ApiError> {
        let mut issues = Issues::default();
        let partner_id = issues
            .required("partner_id", self.partner_id.as_deref())
            .and_then(|raw| {
                issues.check(
                    "partner_id",
                    Uuid::parse_str(raw.trim()).map_err(|_| "must be a UUID"),
                )
            });
        let tipo = issues
            .required("tipo", self.tipo.as_deref())
            .and_then(|raw| issues.check("tipo", TipoContrato::parse(raw.trim())));
        let monto = issues
            .required("monto", self.monto.as_ref().filter(|v| !v.is_null()))
            .and_then(|raw| issues.check("monto", monto(raw)));
        let moneda = issues
            .required("moneda", self.moneda.as_deref())
            .and_then(|raw| issues.check("moneda", Moneda::parse(raw)));
        let condiciones = issues
            .check(
                "condiciones",
                Condiciones::parse(self.condiciones.as_deref()),
            )
            .flatten();
        let fecha_inicio = match self
            .fecha_inicio
            .as_deref()
            .filter(|f| !f.trim().is_empty())
        {
            None => Some(hoy),
            Some(raw) => issues.check("fecha_inicio", parse_fecha(raw)),
        };
        let fecha_fin = match self.fecha_fin.as_deref().filter(|f| !f.trim().is_empty()) {
            None => Some(None),
            Some(raw) => issues.check("fecha_fin", parse_fecha(raw)).map(Some),
        };
        if let (Some(inicio), Some(Some(fin))) = (fecha_inicio, fecha_fin) {
            if fin < inicio {
                issues.0.push(FieldIssue::new(
                    "fecha_fin",
                    "must not be before fecha_inicio",
                ));
            }
        }
        let datos = match (partner_id, tipo, monto, moneda, fecha_inicio, fecha_fin) {
            (
                Some(partner_id),
                Some(tipo),
                Some(monto),
                Some(moneda),
                Some(fecha_inicio),
                Some(fecha_fin),
            ) => Some(NuevoContrato {
                partner_id,
                onboarding_id: None,
                tipo,
                monto,
                moneda,
                condiciones,
                fecha_inicio,
                fecha_fin,
            }),
            _ => None,
        };
        issues.finish(datos)
    }
}

/// Body of `PUT /contratos/{contrato_id}`: the expected `version` and the terms to change. An
/// absent field is left alone; `condiciones` or `fecha_fin` sent as `null` is cleared.
#[derive(Debug, Clone, Default, Deserialize, ToSchema)]
pub struct ActualizarContratoRequest {
    /// The contract's current version, as last read; a stale one is 409 `CONFLICTO_VERSION`.
    pub version: Option<i64>,
    #[schema(value_type = Option<String>, example = "30.00")]
    pub monto: Option<Value>,
    pub moneda: Option<String>,
    #[serde(default, deserialize_with = "present")]
    #[schema(value_type = Option<String>, nullable)]
    pub condiciones: Option<Option<String>>,
    #[serde(default, deserialize_with = "present")]
    #[schema(value_type = Option<String>, nullable)]
    pub fecha_fin: Option<Option<String>>,
}

impl ActualizarContratoRequest {
    pub fn parse(&self) -> Result<(i64, CambiosContrato), ApiError> {
        let mut issues = Issues::default();
        let version = issues.required("version", self.version).and_then(|v| {
            issues.check(
                "version",
                if v >= 1 {
                    Ok(v)
                } else {
                    Err("must be 1 or more")
                },
            )
        });
        let mut cambios = CambiosContrato::default();
        if let Some(raw) = self.monto.as_ref().filter(|v| !v.is_null()) {
            cambios.monto = issues.check("monto", monto(raw));
        }
        if let Some(raw) = &self.moneda {
            cambios.moneda = issues.check("moneda", Moneda::parse(raw));
        }
        if let Some(raw) = &self.condiciones {
            cambios.condiciones = issues.check("condiciones", Condiciones::parse(raw.as_deref()));
        }
        if let Some(raw) = &self.fecha_fin {
            cambios.fecha_fin = match raw.as_deref() {
                None => Some(None),
                Some(text) => issues.check("fecha_fin", parse_fecha(text)).map(Some),
            };
        }
        issues.finish(version.map(|v| (v, cambios)))
    }
}

/// Body of `/suspender`, `/reactivar` and `/terminar`; the body itself is optional.
#[derive(Debug, Clone, Default, Deserialize, ToSchema)]
pub struct MotivoRequest {
    pub motivo: Option<String>,
}

impl MotivoRequest {
    pub fn parse(&self) -> Result<Option<Motivo>, ApiError> {
        let mut issues = Issues::default();
        let motivo = issues.check("motivo", Motivo::parse(self.motivo.as_deref()));
        issues.finish(motivo)
    }
}

/// `GET /contratos/{contrato_id}`: without parameters, the read model; with `version` or `at`
/// (not both), the stream replayed to that point.
#[derive(Debug, Clone, Default, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ObtenerParams {
    /// Replay the first `version` events.
    pub version: Option<String>,
    /// Replay the events that occurred at or before this RFC 3339 instant.
    pub at: Option<String>,
}

impl ObtenerParams {
    pub fn parse(&self) -> Result<Option<Punto>, ApiError> {
        let mut issues = Issues::default();
        let version = self.version.as_deref().map(|raw| {
            issues.check(
                "version",
                raw.trim()
                    .parse::<i64>()
                    .ok()
                    .filter(|v| *v >= 1)
                    .ok_or("must be an integer of 1 or more"),
            )
        });
        let at = self.at.as_deref().map(|raw| {
            issues.check(
                "at",
                DateTime::parse_from_rfc3339(raw.trim())
                    .map(|at| at.with_timezone(&Utc))
                    .map_err(|_| "must be an RFC 3339 timestamp"),
            )
        });
        let punto = match (version, at) {
            (Some(_), Some(_)) => {
                issues
                    .0
                    .push(FieldIssue::new("at", "give either version or at, not both"));
                None
            }
            (Some(version), None) => version.map(|v| Some(Punto::Version(v))),
            (None, Some(at)) => at.map(|at| Some(Punto::At(at))),
            (None, None) => Some(None),
        };
        issues.finish(punto)
    }
}

/// Filters and paging of `GET /contratos`.
#[derive(Debug, Clone, Default, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ListarContratosParams {
    pub partner_id: Option<String>,
    /// `pendiente`, `activo`, `en_revision`, `suspendido`, `inactivo`, `vencido`, `cancelado`
    /// or `rechazado`.
    pub estado: Option<String>,
    /// `CPA`, `CPL`, `CPC`, `revshare` or `fijo`.
    pub tipo: Option<String>,
    /// Items per page, 1 to 500 (default 50).
    pub limit: Option<i64>,
    /// The `next_cursor` of the previous page.
    pub cursor: Option<String>,
}

impl ListarContratosParams {
    pub fn parse(&self) -> Result<(ContratoFilter, web::pagination::PageRequest), ApiError> {
        let mut issues = Issues::default();
        let filter = ContratoFilter {
            partner_id: given(&self.partner_id).and_then(|raw| {
                issues.check(
                    "partner_id",
                    Uuid::parse_str(raw).map_err(|_| "must be a UUID"),
                )
            }),
            estado: given(&self.estado)
                .and_then(|raw| issues.check("estado", EstadoContrato::parse(raw))),
            tipo: given(&self.tipo).and_then(|raw| issues.check("tipo", TipoContrato::parse(raw))),
        };
        let page = web::PageParams {
            limit: self.limit,
            cursor: self.cursor.clone(),
        }
        .parse_along(field_errors(issues.0))?;
        Ok((filter, page))
    }
}

/// A contract as shown.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct ContratoDto {
    pub id: Uuid,
    pub partner_id: Uuid,
    /// The onboarding that asked for it, when the saga did.
    pub onboarding_id: Option<Uuid>,
    #[schema(example = "CPA")]
    pub tipo: String,
    #[schema(example = "25.00")]
    pub monto: String,
    #[schema(example = "USD")]
    pub moneda: String,
    pub condiciones: Option<String>,
    #[schema(example = "2025-01-01")]
    pub fecha_inicio: String,
    pub fecha_fin: Option<String>,
    #[schema(example = "pendiente")]
    pub estado: String,
    /// The number of events applied.
    pub version: i64,
    pub fecha_creacion: String,
    pub fecha_actualizacion: String,
}

impl ContratoDto {
    /// `None` for a stream without a `ContratoCreado` (never served).
    pub fn from_domain(contrato: &Contrato) -> Option<Self> {
        let state = contrato.state()?;
        Some(Self {
            id: contrato.id(),
            partner_id: state.partner_id,
            onboarding_id: state.onboarding_id,
            tipo: state.tipo.as_str().to_owned(),
            monto: state.monto.amount().to_string(),
            moneda: state.moneda.as_str().to_owned(),
            condiciones: state.condiciones.as_ref().map(|c| c.as_str().to_owned()),
            fecha_inicio: state.fecha_inicio.to_string(),
            fecha_fin: state.fecha_fin.map(|f| f.to_string()),
            estado: state.estado.as_str().to_owned(),
            version: contrato.version(),
            fecha_creacion: timestamp(state.fecha_creacion),
            fecha_actualizacion: timestamp(state.fecha_actualizacion),
        })
    }
}

/// One stored event of a contract's stream, as written (older schema versions unchanged).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct EventoDto {
    pub version: i64,
    #[schema(example = "ContratoCreado")]
    pub tipo: String,
    pub schema_version: i32,
    pub ocurrido_en: String,
    #[schema(value_type = Object)]
    pub data: Value,
}

impl From<&StoredEvent> for EventoDto {
    fn from(event: &StoredEvent) -> Self {
        Self {
            version: event.version,
            tipo: event.tipo.clone(),
            schema_version: event.schema_version,
            ocurrido_en: timestamp(event.ocurrido_en),
            data: event.data.clone(),
        }
    }
}

/// The list of a contract's events, oldest first.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct EventosDto {
    pub contrato_id: Uuid,
    pub items: Vec<EventoDto>,
    pub total: i64,
}

/// Body of `POST /plantillas` (with `tipo_partner`) and `PUT /plantillas/{tipo_partner}`.
#[derive(Debug, Clone, Default, Deserialize, ToSchema)]
pub struct PlantillaRequest {
    /// `AFILIADO`, `INFLUENCER`, `EMBAJADOR` or `CORPORATIVO`; taken from the path on `PUT`.
    pub tipo_partner: Option<String>,
    #[schema(example = "CPA")]
    pub tipo: Option<String>,
    #[schema(value_type = String, example = "25.00")]
    pub monto: Option<Value>,
    #[schema(example = "USD")]
    pub moneda: Option<String>,
    pub condiciones: Option<String>,
    /// 1 to 36 500.
    #[schema(example = 365)]
    pub duracion_dias: Option<i64>,
}

impl PlantillaRequest {
    /// Parses a complete template; `path_tipo` (from `PUT`'s path) wins over the body's.
    pub fn parse(&self, path_tipo: Option<&str>) -> Result<Plantilla, ApiError> {
        let mut issues = Issues::default();
        let tipo_partner = issues
            .required("tipo_partner", path_tipo.or(self.tipo_partner.as_deref()))
            .and_then(|raw| issues.check("tipo_partner", TipoPartner::parse(raw.trim())));
        let tipo = issues
            .required("tipo", self.tipo.as_deref())
            .and_then(|raw| issues.check("tipo", TipoContrato::parse(raw.trim())));
        let monto = issues
            .required("monto", self.monto.as_ref().filter(|v| !v.is_null()))
            .and_then(|raw| issues.check("monto", monto(raw)));
        let moneda = issues
            .required("moneda", self.moneda.as_deref())
            .and_then(|raw| issues.check("moneda", Moneda::parse(raw)));
        let condiciones = issues
            .check(
                "condiciones",
                Condiciones::parse(self.condiciones.as_deref()),
            )
            .flatten();
        let duracion_dias = issues
            .required("duracion_dias", self.duracion_dias)
            .and_then(|raw| issues.check("duracion_dias", parse_duracion_dias(raw)));
        let plantilla = match (tipo_partner, tipo, monto, moneda, duracion_dias) {
            (Some(tipo_partner), Some(tipo), Some(monto), Some(moneda), Some(duracion_dias)) => {
                Some(Plantilla {
                    tipo_partner,
                    tipo,
                    monto,
                    moneda,
                    condiciones,
                    duracion_dias,
                })
            }
            _ => None,
        };
        issues.finish(plantilla)
    }
}

/// A template as shown.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct PlantillaDto {
    #[schema(example = "AFILIADO")]
    pub tipo_partner: String,
    #[schema(example = "CPA")]
    pub tipo: String,
    #[schema(example = "25.00")]
    pub monto: String,
    pub moneda: String,
    pub condiciones: Option<String>,
    pub duracion_dias: u32,
}

impl From<&Plantilla> for PlantillaDto {
    fn from(plantilla: &Plantilla) -> Self {
        Self {
            tipo_partner: plantilla.tipo_partner.as_str().to_owned(),
            tipo: plantilla.tipo.as_str().to_owned(),
            monto: plantilla.monto.amount().to_string(),
            moneda: plantilla.moneda.as_str().to_owned(),
            condiciones: plantilla
                .condiciones
                .as_ref()
                .map(|c| c.as_str().to_owned()),
            duracion_dias: plantilla.duracion_dias,
        }
    }
}

/// Every template (there is one per partner kind, so the list is never paged further).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct PlantillasDto {
    pub items: Vec<PlantillaDto>,
    pub total: i64,
    pub next_cursor: Option<String>,
}
