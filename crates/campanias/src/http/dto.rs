//! Wire shapes of the programs and notifications API. Requests hold raw input (strings, JSON
//! values) so that every bad field is reported by name, and convert once into domain types;
//! responses are built by hand from the domain (which never derives Serialize).
//! `POST /programas` takes the nested body (`vigencia`, `terminos`) or the original's flat one
//! (`vigencia_inicio`, `term_modelo`, …); a nested field wins over its flat twin.

use kernel::Amount;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use utoipa::{IntoParams, ToSchema};
use uuid::Uuid;
use web::dto::{given, timestamp};

use crate::domain::{
    parse_date, Afiliacion, BrandId, EstadoInicial, EstadoNotificacion, EstadoPedido,
    EstadoPrograma, FieldIssue, ModeloComision, Moneda, Nombre, NuevoPrograma, Programa, Terminos,
    TerminosError, TipoPrograma, ValueError, Vigencia,
};
use crate::http::error::ApiError;
use crate::storage::{Notificacion, NotificacionFilter, ProgramaFilter};

/// `vigencia` of the nested body.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct VigenciaRequest {
    /// `YYYY-MM-DD`.
    #[schema(example = "2025-06-01")]
    pub inicio: Option<String>,
    /// `YYYY-MM-DD`, after `inicio`.
    #[schema(example = "2025-08-31")]
    pub fin: Option<String>,
}

/// `terminos` of the nested body.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct TerminosRequest {
    /// `CPA`, `CPL` or `CPC`.
    #[schema(example = "CPA")]
    pub modelo: Option<String>,
    /// ISO 4217.
    #[schema(example = "USD")]
    pub moneda: Option<String>,
    /// A number or a decimal string with at most two places, ≥ 0.
    #[schema(value_type = Option<String>, example = "25.50")]
    pub tarifa_base: Option<Value>,
    /// Optional cap, not below `tarifa_base`.
    #[schema(value_type = Option<String>, example = "100.00")]
    pub tope: Option<Value>,
}

/// Body of `POST /programas`, nested or flat.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct CrearProgramaRequest {
    /// 1 to 255 characters.
    #[schema(example = "Programa Verano")]
    pub nombre: Option<String>,
    /// The brand's id or code (any non-blank text).
    #[schema(example = "brand-1")]
    pub brand_id: Option<String>,
    /// `AFILIADOS` (default), `INFLUENCERS`, `ADVOCACY` or `SAAS`.
    #[schema(example = "AFILIADOS")]
    pub tipo: Option<String>,
    /// `BORRADOR` (default) or `ACTIVO`.
    #[schema(example = "BORRADOR")]
    pub estado: Option<String>,
    pub vigencia: Option<VigenciaRequest>,
    pub terminos: Option<TerminosRequest>,
    /// Optional budget, ≥ 0.
    #[schema(value_type = Option<String>)]
    pub presupuesto: Option<Value>,
    /// Flat form of `vigencia.inicio`.
    pub vigencia_inicio: Option<String>,
    /// Flat form of `vigencia.fin`.
    pub vigencia_fin: Option<String>,
    /// Flat form of `terminos.modelo`.
    pub term_modelo: Option<String>,
    /// Flat form of `terminos.moneda`.
    pub term_moneda: Option<String>,
    /// Flat form of `terminos.tarifa_base`.
    #[schema(value_type = Option<String>)]
    pub term_tarifa_base: Option<Value>,
    /// Flat form of `terminos.tope`.
    #[schema(value_type = Option<String>)]
    pub term_tope: Option<Value>,
    /// Partners to affiliate at once: their ids, or objects `{"afiliado_id": …}`.
    #[schema(value_type = Option<Vec<Object>>)]
    pub afiliaciones: Option<Vec<Value>>,
}

/// Collects the issues of one request.
#[derive(Default)]
struct Issues(Vec<FieldIssue>);

impl Issues {
    fn check<T>(&mut self, campo: &'static str, result: Result<T, ValueError>) -> Option<T> {
        result
            .map_err(|error| self.0.push(FieldIssue::new(campo, error.0)))
            .ok()
    }

    fn required<'a>(&mut self, campo: &'static str, raw: Option<&'a str>) -> Option<&'a str> {
        let value = raw.map(str::trim).filter(|raw| !raw.is_empty());
        if value.is_none() {
            self.0.push(FieldIssue::new(campo, "is required"));
        }
        value
    }

    fn amount(&mut self, campo: &'static str, raw: Option<&Value>) -> Option<Option<Amount>> {
        match raw {
            None | Some(Value::Null) => Some(None),
            Some(value) => serde_json::from_value::<Amount>(value.clone())
                .map_err(|error| {
                    self.0.push(FieldIssue::new(
                        campo,
                        format!("is not an amount with at most two decimals: {error}"),
                    ))
                })
                .ok()
                .map(Some),
        }
    }
}

/// The field's nested name if the nested form was used, else its flat name.
fn pick<'a>(
    nested: Option<&'a str>,
    flat: Option<&'a str>,
    nested_name: &'static str,
    flat_name: &'static str,
) -> (Option<&'a str>, &'static str) {
    match (nested, flat) {
        (Some(value), _) => (Some(value), nested_name),
        (None, Some(value)) => (Some(value), flat_name),
        (None, None) => (None, nested_name),
    }
}

fn pick_value<'a>(
    nested: Option<&'a Value>,
    flat: Option<&'a Value>,
    nested_name: &'static str,
    flat_name: &'static str,
) -> (Option<&'a Value>, &'static str) {
    let nested = nested.filter(|v| !v.is_null());
    let flat = flat.filter(|v| !v.is_null());
    match (nested, flat) {
        (Some(value), _) => (Some(value), nested_name),
        (None, Some(value)) => (Some(value), flat_name),
        (None, None) => (None, nested_name),
    }
}

fn afiliado_of(value: &Value) -> Option<Uuid> {
    let raw = match value {
        Value::String(text) => text.as_str(),
        Value::Object(map) => map.get("afiliado_id")?.as_str()?,
        _ => return None,
    };
    Uuid::parse_str(raw.trim()).ok()
}

impl CrearProgramaRequest {
    /// The new program and the partners to affiliate, or every invalid field.
    pub fn parse(&self) -> Result<(NuevoPrograma, Vec<Uuid>), ApiError> {
        let mut issues = Issues::default();
        let nombre = issues.check(
            "nombre",
            Nombre::parse(self.nombre.as_deref().unwrap_or_default()),
        );
        let brand_id = issues.check(
            "brand_id",
            BrandId::parse(self.brand_id.as_deref().unwrap_or_default()),
        );
        let tipo = match given(&self.tipo) {
            None => Some(TipoPrograma::Afiliados),
            Some(raw) => issues.check("tipo", TipoPrograma::parse(raw)),
        };
        let estado = match given(&self.estado) {
            None => Some(EstadoInicial::Borrador),
            Some(raw) => match issues.check("estado", EstadoPrograma::parse(raw)) {
                Some(EstadoPrograma::Borrador) => Some(EstadoInicial::Borrador),
                Some(EstadoPrograma::Activo) => Some(EstadoInicial::Activo),
                Some(_) => {
                    issues.0.push(FieldIssue::new(
                        "estado",
                        "a program starts as BORRADOR or ACTIVO",
                    ));
                    None
                }
                None => None,
            },
        };

        let vigencia = self.vigencia.clone().unwrap_or_default();
        let (inicio, inicio_name) = pick(
            vigencia.inicio.as_deref(),
            self.vigencia_inicio.as_deref(),
            "vigencia.inicio",
            "vigencia_inicio",
        );
        let (fin, fin_name) = pick(
            vigencia.fin.as_deref(),
            self.vigencia_fin.as_deref(),
            "vigencia.fin",
            "vigencia_fin",
        );
        let inicio = issues
            .required(inicio_name, inicio)
            .and_then(|raw| issues.check(inicio_name, parse_date(raw)));
        let fin = issues
            .required(fin_name, fin)
            .and_then(|raw| issues.check(fin_name, parse_date(raw)));
        let vigencia = match (inicio, fin) {
            (Some(inicio), Some(fin)) => issues.check(fin_name, Vigencia::new(inicio, fin)),
            _ => None,
        };

        let terminos = self.terminos.clone().unwrap_or_default();
        let (modelo, modelo_name) = pick(
            terminos.modelo.as_deref(),
            self.term_modelo.as_deref(),
            "terminos.modelo",
            "term_modelo",
        );
        let (moneda, moneda_name) = pick(
            terminos.moneda.as_deref(),
            self.term_moneda.as_deref(),
            "terminos.moneda",
            "term_moneda",
        );
        let (tarifa, tarifa_name) = pick_value(
            terminos.tarifa_base.as_ref(),
            self.term_tarifa_base.as_ref(),
            "terminos.tarifa_base",
            "term_tarifa_base",
        );
        let (tope, tope_name) = pick_value(
            terminos.tope.as_ref(),
            self.term_tope.as_ref(),
            "terminos.tope",
            "term_tope",
        );
        let modelo = issues
            .required(modelo_name, modelo)
            .and_then(|raw| issues.check(modelo_name, ModeloComision::parse(raw)));
        let moneda = issues
            .required(moneda_name, moneda)
            .and_then(|raw| issues.check(moneda_name, Moneda::parse(raw)));
        let tarifa = match tarifa {
            None => {
                issues.0.push(FieldIssue::new(tarifa_name, "is required"));
                None
            }
            Some(value) => issues.amount(tarifa_name, Some(value)).flatten(),
        };
        let tope = issues.amount(tope_name, tope);
        let terminos = match (modelo, moneda, tarifa, tope) {
            (Some(modelo), Some(moneda), Some(tarifa), Some(tope)) => {
                match Terminos::new(modelo, moneda, tarifa, tope) {
                    Ok(terminos) => Some(terminos),
                    Err(TerminosError::TarifaBase(error)) => {
                        issues.0.push(FieldIssue::new(tarifa_name, error.0));
                        None
                    }
                    Err(TerminosError::Tope(error)) => {
                        issues.0.push(FieldIssue::new(tope_name, error.0));
                        None
                    }
                }
            }
            _ => None,
        };

        let presupuesto = issues
            .amount("presupuesto", self.presupuesto.as_ref())
            .and_then(|presupuesto| match presupuesto {
                Some(amount) if amount.is_negative() => {
                    issues
                        .0
                        .push(FieldIssue::new("presupuesto", "must be zero or more"));
                    None
                }
                other => Some(other),
            });

        let mut afiliados = Vec::new();
        for value in self.afiliaciones.iter().flatten() {
            match afiliado_of(value) {
                Some(id) if afiliados.contains(&id) => issues.0.push(FieldIssue::new(
                    "afiliaciones",
                    format!("partner {id} is listed twice"),
                )),
                Some(id) => afiliados.push(id),
                None => issues.0.push(FieldIssue::new(
                    "afiliaciones",
                    format!("{value} is not a partner id nor {{\"afiliado_id\": <id>}}"),
                )),
            }
        }

        match (
            nombre,
            brand_id,
            tipo,
            estado,
            vigencia,
            terminos,
            presupuesto,
        ) {
            (
                Some(nombre),
                Some(brand_id),
                Some(tipo),
                Some(estado),
                Some(vigencia),
                Some(terminos),
                Some(presupuesto),
            ) if issues.0.is_empty() => Ok((
                NuevoPrograma {
                    nombre,
                    brand_id,
                    tipo,
                    estado,
                    vigencia,
                    terminos,
                    presupuesto,
                },
                afiliados,
            )),
            _ => Err(ApiError::Invalid(issues.0)),
        }
    }
}

/// Body of `POST /programas/{programa_id}/afiliaciones`.
#[derive(Debug, Clone, Default, Deserialize, ToSchema)]
pub struct AfiliarRequest {
    /// The partner's id.
    pub afiliado_id: Option<String>,
}

impl AfiliarRequest {
    pub fn parse(&self) -> Result<Uuid, ApiError> {
        let invalid =
            |mensaje: &str| ApiError::Invalid(vec![FieldIssue::new("afiliado_id", mensaje)]);
        let raw = given(&self.afiliado_id).ok_or_else(|| invalid("is required"))?;
        Uuid::parse_str(raw).map_err(|_| invalid("is not a partner id (UUID)"))
    }
}

/// Body of `PUT /programas/{programa_id}/afiliaciones/{afiliado_id}`.
#[derive(Debug, Clone, Default, Deserialize, ToSchema)]
pub struct CambiarAfiliacionRequest {
    /// `ACTIVA` (only for a partner whose onboarding completed), `SUSPENDIDA` or `BAJA`.
    #[schema(example = "BAJA")]
    pub estado: Option<String>,
}

impl CambiarAfiliacionRequest {
    pub fn parse(&self) -> Result<EstadoPedido, ApiError> {
        let invalid = |mensaje: String| ApiError::Invalid(vec![FieldIssue::new("estado", mensaje)]);
        match given(&self.estado) {
            None => Err(invalid("is required".to_owned())),
            Some("ACTIVA") => Ok(EstadoPedido::Activa),
            Some("SUSPENDIDA") => Ok(EstadoPedido::Suspendida),
            Some("BAJA") => Ok(EstadoPedido::Baja),
            Some(other) => Err(invalid(format!(
                "unknown value {other:?}; expected one of ACTIVA, SUSPENDIDA, BAJA"
            ))),
        }
    }
}

/// Filters and paging of `GET /programas`.
#[derive(Debug, Clone, Default, Deserialize, IntoParams)]
pub struct ListarProgramasParams {
    /// `BORRADOR`, `ACTIVO`, `SUSPENDIDO` or `CERRADO`.
    pub estado: Option<String>,
    /// Exact brand id.
    pub brand_id: Option<String>,
    /// `AFILIADOS`, `INFLUENCERS`, `ADVOCACY` or `SAAS`.
    pub tipo: Option<String>,
    /// Only programs this partner is affiliated to (in any state).
    pub afiliado_id: Option<String>,
    /// Items per page, 1 to 500 (default 50).
    pub limit: Option<i64>,
    /// The `next_cursor` of the previous page.
    pub cursor: Option<String>,
}

impl ListarProgramasParams {
    pub fn parse(&self) -> Result<(ProgramaFilter, web::pagination::PageRequest), ApiError> {
        let mut issues = Issues::default();
        let filter = ProgramaFilter {
            estado: given(&self.estado)
                .and_then(|raw| issues.check("estado", EstadoPrograma::parse(raw))),
            brand_id: given(&self.brand_id).map(str::to_owned),
            tipo: given(&self.tipo).and_then(|raw| issues.check("tipo", TipoPrograma::parse(raw))),
            afiliado_id: given(&self.afiliado_id).and_then(|raw| {
                issues.check(
                    "afiliado_id",
                    Uuid::parse_str(raw)
                        .map_err(|_| ValueError("is not a partner id (UUID)".into())),
                )
            }),
        };
        let page = web::PageParams {
            limit: self.limit,
            cursor: self.cursor.clone(),
        }
        .parse_along(web::field_errors(issues.0))?;
        Ok((filter, page))
    }
}

/// Filters and paging of `GET /notificaciones`.
#[derive(Debug, Clone, Default, Deserialize, IntoParams)]
pub struct ListarNotificacionesParams {
    /// `PENDIENTE`, `ENVIADA` or `FALLIDA`.
    pub estado: Option<String>,
    /// Exact recipient address.
    pub destinatario: Option<String>,
    /// Items per page, 1 to 500 (default 50).
    pub limit: Option<i64>,
    /// The `next_cursor` of the previous page.
    pub cursor: Option<String>,
}

impl ListarNotificacionesParams {
    pub fn parse(&self) -> Result<(NotificacionFilter, web::pagination::PageRequest), ApiError> {
        let mut issues = Issues::default();
        let filter = NotificacionFilter {
            estado: given(&self.estado)
                .and_then(|raw| issues.check("estado", EstadoNotificacion::parse(raw))),
            destinatario: given(&self.destinatario).map(str::to_owned),
        };
        let page = web::PageParams {
            limit: self.limit,
            cursor: self.cursor.clone(),
        }
        .parse_along(web::field_errors(issues.0))?;
        Ok((filter, page))
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct VigenciaDto {
    #[schema(example = "2025-06-01")]
    pub inicio: String,
    #[schema(example = "2025-08-31")]
    pub fin: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct TerminosDto {
    pub modelo: String,
    pub moneda: String,
    /// Exact decimal string, e.g. "25.50".
    #[schema(value_type = String, example = "25.50")]
    pub tarifa_base: Amount,
    #[schema(value_type = Option<String>, example = "100.00")]
    pub tope: Option<Amount>,
}

/// One affiliation as shown.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct AfiliacionDto {
    pub programa_id: Uuid,
    pub afiliado_id: Uuid,
    /// `PENDIENTE`, `ACTIVA`, `SUSPENDIDA` or `BAJA`.
    pub estado: String,
    pub fecha_alta: String,
    pub fecha_baja: Option<String>,
}

impl AfiliacionDto {
    pub fn new(programa_id: Uuid, afiliacion: &Afiliacion) -> Self {
        Self {
            programa_id,
            afiliado_id: afiliacion.afiliado_id,
            estado: afiliacion.estado.as_str().to_owned(),
            fecha_alta: timestamp(afiliacion.fecha_alta),
            fecha_baja: afiliacion.fecha_baja.map(timestamp),
        }
    }
}

/// A program as shown, with its affiliations.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct ProgramaDto {
    pub id: Uuid,
    pub nombre: String,
    pub brand_id: String,
    pub tipo: String,
    pub estado: String,
    pub vigencia: VigenciaDto,
    pub terminos: TerminosDto,
    #[schema(value_type = Option<String>)]
    pub presupuesto: Option<Amount>,
    pub afiliaciones: Vec<AfiliacionDto>,
    pub fecha_creacion: String,
    pub fecha_actualizacion: String,
}

impl From<&Programa> for ProgramaDto {
    fn from(programa: &Programa) -> Self {
        let state = programa.state();
        Self {
            id: state.id,
            nombre: state.nombre.as_str().to_owned(),
            brand_id: state.brand_id.as_str().to_owned(),
            tipo: state.tipo.as_str().to_owned(),
            estado: state.estado.as_str().to_owned(),
            vigencia: VigenciaDto {
                inicio: state.vigencia.inicio().format("%Y-%m-%d").to_string(),
                fin: state.vigencia.fin().format("%Y-%m-%d").to_string(),
            },
            terminos: TerminosDto {
                modelo: state.terminos.modelo().as_str().to_owned(),
                moneda: state.terminos.moneda().as_str().to_owned(),
                tarifa_base: state.terminos.tarifa_base(),
                tope: state.terminos.tope(),
            },
            presupuesto: state.presupuesto,
            afiliaciones: state
                .afiliaciones
                .iter()
                .map(|a| AfiliacionDto::new(state.id, a))
                .collect(),
            fecha_creacion: timestamp(state.fecha_creacion),
            fecha_actualizacion: timestamp(state.fecha_actualizacion),
        }
    }
}

/// A notification with its delivery state.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct NotificacionDto {
    pub id: Uuid,
    /// The event that caused it.
    pub evento_id: Uuid,
    pub tipo_evento: String,
    pub destinatario: String,
    pub asunto: String,
    pub contenido: String,
    /// `ALTA`, `NORMAL` or `BAJA`.
    pub prioridad: String,
    /// `PENDIENTE`, `ENVIADA` or `FALLIDA`.
    pub estado: String,
    pub intentos: i32,
    pub ultimo_error: Option<String>,
    pub creada_en: String,
    pub enviada_en: Option<String>,
}

impl From<&Notificacion> for NotificacionDto {
    fn from(n: &Notificacion) -> Self {
        Self {
            id: n.id,
            evento_id: n.evento_id,
            tipo_evento: n.tipo_evento.clone(),
            destinatario: n.destinatario.clone(),
            asunto: n.asunto.clone(),
            contenido: n.contenido.clone(),
            prioridad: n.prioridad.as_str().to_owned(),
            estado: n.estado.as_str().to_owned(),
            intentos: n.intentos,
            ultimo_error: n.ultimo_error.clone(),
            creada_en: timestamp(n.creada_en),
            enviada_en: n.enviada_en.map(timestamp),
        }
    }
}
