//! Wire shapes of the partners API. Requests hold raw input (strings, JSON values) so that an
//! unknown enum value or a blank field is reported per field, and convert once into domain
//! types; responses are built by hand from the domain (which never derives Serialize).

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use utoipa::{IntoParams, ToSchema};
use uuid::Uuid;

use crate::domain::{
    CambiosPartner, Comentarios, Descripcion, Direccion, EstadoKyc, EstadoPartner, FieldIssue,
    Integracion, Motivo, Nombre, NuevaIntegracion, NuevoPartner, Partner, RawPartner, Telefono,
    TipoIntegracion, TipoPartner,
};
use crate::http::error::ApiError;
use crate::storage::PartnerFilter;

pub use web::dto::timestamp;

use web::dto::present;

/// A JSON object field: absent or `null` is `None`, anything but an object is an issue.
fn object_field(
    campo: &'static str,
    value: Option<&Value>,
    issues: &mut Vec<FieldIssue>,
) -> Option<Map<String, Value>> {
    match value {
        None | Some(Value::Null) => None,
        Some(Value::Object(map)) => Some(map.clone()),
        Some(_) => {
            issues.push(FieldIssue::new(campo, "must be a JSON object"));
            None
        }
    }
}

/// Body of `POST /api/v1/partners`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct CrearPartnerRequest {
    /// 1 to 255 characters, trimmed.
    #[schema(example = "Ana Pérez")]
    pub nombre: Option<String>,
    /// Unique among partners not deleted, compared case-insensitively.
    #[schema(example = "ana@example.com")]
    pub email: Option<String>,
    /// At most 50 characters.
    pub telefono: Option<String>,
    /// At most 500 characters.
    pub direccion: Option<String>,
    /// `AFILIADO` (default), `INFLUENCER`, `EMBAJADOR` or `CORPORATIVO`.
    #[schema(example = "AFILIADO")]
    pub tipo: Option<String>,
}

impl CrearPartnerRequest {
    pub fn parse(&self) -> Result<NuevoPartner, ApiError> {
        NuevoPartner::parse(RawPartner {
            nombre: self.nombre.as_deref(),
            email: self.email.as_deref(),
            telefono: self.telefono.as_deref(),
            direccion: self.direccion.as_deref(),
            tipo: self.tipo.as_deref(),
        })
        .map_err(ApiError::invalid)
    }
}

/// Body of `PUT /api/v1/partners/{partner_id}`: an absent field is left alone, a field sent
/// as `null` is cleared (`tipo` goes back to `AFILIADO`; `nombre` cannot be cleared).
#[derive(Debug, Clone, Default, Deserialize, ToSchema)]
pub struct ActualizarPartnerRequest {
    #[serde(default, deserialize_with = "present")]
    #[schema(value_type = Option<String>, nullable)]
    pub nombre: Option<Option<String>>,
    #[serde(default, deserialize_with = "present")]
    #[schema(value_type = Option<String>, nullable)]
    pub telefono: Option<Option<String>>,
    #[serde(default, deserialize_with = "present")]
    #[schema(value_type = Option<String>, nullable)]
    pub direccion: Option<Option<String>>,
    #[serde(default, deserialize_with = "present")]
    #[schema(value_type = Option<String>, nullable)]
    pub tipo: Option<Option<String>>,
}

impl ActualizarPartnerRequest {
    pub fn parse(&self) -> Result<CambiosPartner, ApiError> {
        let mut issues = Vec::new();
        let mut cambios = CambiosPartner::default();
        match &self.nombre {
            None => {}
            Some(None) => issues.push(FieldIssue::new("nombre", "cannot be cleared")),
            Some(Some(raw)) => match Nombre::parse(raw) {
                Ok(nombre) => cambios.nombre = Some(nombre),
                Err(error) => issues.push(FieldIssue::new("nombre", error.0)),
            },
        }
        if let Some(raw) = &self.telefono {
            match Telefono::parse(raw.as_deref()) {
                Ok(telefono) => cambios.telefono = Some(telefono),
                Err(error) => issues.push(FieldIssue::new("telefono", error.0)),
            }
        }
        if let Some(raw) = &self.direccion {
            match Direccion::parse(raw.as_deref()) {
                Ok(direccion) => cambios.direccion = Some(direccion),
                Err(error) => issues.push(FieldIssue::new("direccion", error.0)),
            }
        }
        match &self.tipo {
            None => {}
            Some(None) => cambios.tipo = Some(TipoPartner::Afiliado),
            Some(Some(raw)) => match TipoPartner::parse(raw) {
                Ok(tipo) => cambios.tipo = Some(tipo),
                Err(error) => issues.push(FieldIssue::new("tipo", error.0)),
            },
        }
        if issues.is_empty() {
            Ok(cambios)
        } else {
            Err(ApiError::invalid(issues))
        }
    }
}

/// Body of `PUT /api/v1/partners/{partner_id}/kyc`.
#[derive(Debug, Clone, Default, Deserialize, ToSchema)]
pub struct KycRequest {
    /// `PENDIENTE`, `APROBADO`, `RECHAZADO` or `REQUIERE_DOCUMENTOS`.
    #[schema(example = "APROBADO")]
    pub estado_kyc: Option<String>,
    /// Replaces the stored KYC documents when given.
    #[schema(value_type = Option<Object>)]
    pub documentos: Option<Value>,
    /// Published as the `observaciones` of `KYCVerificado`.
    pub comentarios: Option<String>,
}

/// A validated KYC decision.
pub struct KycDecision {
    pub estado: EstadoKyc,
    pub documentos: Option<Map<String, Value>>,
    pub comentarios: Option<Comentarios>,
}

impl KycRequest {
    /// An unknown state is `ESTADO_KYC_INVALIDO`; other problems `DATOS_INVALIDOS`.
    pub fn parse(&self) -> Result<KycDecision, ApiError> {
        let mut issues = Vec::new();
        let mut codigo = crate::http::error::DATOS_INVALIDOS;
        let estado = match self.estado_kyc.as_deref() {
            None => {
                issues.push(FieldIssue::new("estado_kyc", "is required"));
                None
            }
            Some(raw) => match EstadoKyc::parse(raw.trim()) {
                Ok(estado) => Some(estado),
                Err(error) => {
                    codigo = "ESTADO_KYC_INVALIDO";
                    issues.push(FieldIssue::new("estado_kyc", error.0));
                    None
                }
            },
        };
        let documentos = object_field("documentos", self.documentos.as_ref(), &mut issues);
        let comentarios = Comentarios::parse(self.comentarios.as_deref())
            .map_err(|error| issues.push(FieldIssue::new("comentarios", error.0)))
            .ok()
            .flatten();
        match estado {
            Some(estado) if issues.is_empty() => Ok(KycDecision {
                estado,
                documentos,
                comentarios,
            }),
            _ => Err(ApiError::Invalid { codigo, issues }),
        }
    }
}

/// Body of `POST /api/v1/partners/{partner_id}/integraciones`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct CrearIntegracionRequest {
    /// `API`, `WEBHOOK`, `BATCH` or `REAL_TIME`.
    #[schema(example = "API")]
    pub tipo: Option<String>,
    #[schema(example = "Tienda online")]
    pub nombre: Option<String>,
    pub descripcion: Option<String>,
    /// Stored (it may hold secrets) and never returned.
    #[schema(value_type = Option<Object>)]
    pub configuracion: Option<Value>,
}

impl CrearIntegracionRequest {
    /// A missing or unknown `tipo` is `TIPO_INTEGRACION_INVALIDO`; other problems
    /// `DATOS_INVALIDOS`.
    pub fn parse(&self) -> Result<NuevaIntegracion, ApiError> {
        let mut issues = Vec::new();
        let mut codigo = crate::http::error::DATOS_INVALIDOS;
        let tipo = TipoIntegracion::parse(self.tipo.as_deref().unwrap_or_default().trim())
            .map_err(|error| {
                codigo = "TIPO_INTEGRACION_INVALIDO";
                issues.push(FieldIssue::new("tipo", error.0));
            })
            .ok();
        let nombre = Nombre::parse(self.nombre.as_deref().unwrap_or_default())
            .map_err(|error| issues.push(FieldIssue::new("nombre", error.0)))
            .ok();
        let descripcion = Descripcion::parse(self.descripcion.as_deref())
            .map_err(|error| issues.push(FieldIssue::new("descripcion", error.0)))
            .ok()
            .flatten();
        let configuracion = object_field("configuracion", self.configuracion.as_ref(), &mut issues)
            .unwrap_or_default();
        match (tipo, nombre) {
            (Some(tipo), Some(nombre)) if issues.is_empty() => Ok(NuevaIntegracion {
                tipo,
                nombre,
                descripcion,
                configuracion,
            }),
            _ => Err(ApiError::Invalid { codigo, issues }),
        }
    }
}

/// Body of the revocation routes; the body itself is optional.
#[derive(Debug, Clone, Default, Deserialize, ToSchema)]
pub struct RevocarRequest {
    pub motivo: Option<String>,
}

impl RevocarRequest {
    pub fn parse(&self) -> Result<Option<Motivo>, ApiError> {
        Motivo::parse(self.motivo.as_deref())
            .map_err(|error| ApiError::invalid(vec![FieldIssue::new("motivo", error.0)]))
    }
}

/// Filters and paging of `GET /api/v1/partners`. Without filters every partner is listed,
/// deleted ones included (filter with `estado` to hide them).
#[derive(Debug, Clone, Default, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ListarPartnersParams {
    /// `ACTIVO`, `INACTIVO`, `SUSPENDIDO` or `ELIMINADO`.
    pub estado: Option<String>,
    /// `AFILIADO`, `INFLUENCER`, `EMBAJADOR` or `CORPORATIVO`.
    pub tipo: Option<String>,
    /// `PENDIENTE`, `APROBADO`, `RECHAZADO` or `REQUIERE_DOCUMENTOS`.
    pub estado_kyc: Option<String>,
    /// Case-insensitive substring of the name or the e-mail.
    pub q: Option<String>,
    /// Items per page, 1 to 500 (default 50).
    pub limit: Option<i64>,
    /// The `next_cursor` of the previous page.
    pub cursor: Option<String>,
}

impl ListarPartnersParams {
    pub fn parse(&self) -> Result<(PartnerFilter, web::pagination::PageRequest), ApiError> {
        let mut issues = Vec::new();
        fn filter<T>(
            campo: &'static str,
            raw: &Option<String>,
            parse: fn(&str) -> Result<T, crate::domain::ValueError>,
            issues: &mut Vec<FieldIssue>,
        ) -> Option<T> {
            let raw = web::dto::given(raw)?;
            parse(raw)
                .map_err(|error| issues.push(FieldIssue::new(campo, error.0)))
                .ok()
        }
        let partner_filter = PartnerFilter {
            estado: filter("estado", &self.estado, EstadoPartner::parse, &mut issues),
            tipo: filter("tipo", &self.tipo, TipoPartner::parse, &mut issues),
            estado_kyc: filter(
                "estado_kyc",
                &self.estado_kyc,
                EstadoKyc::parse,
                &mut issues,
            ),
            q: self.q.clone(),
        };
        let page = web::PageParams {
            limit: self.limit,
            cursor: self.cursor.clone(),
        }
        .parse_along(web::field_errors(issues))?;
        Ok((partner_filter, page))
    }
}

/// An integration as shown: never its `configuracion`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct IntegracionDto {
    pub id: Uuid,
    pub partner_id: Uuid,
    #[schema(example = "API")]
    pub tipo: String,
    pub nombre: String,
    pub descripcion: Option<String>,
    pub activa: bool,
    pub fecha_creacion: String,
    pub fecha_revocacion: Option<String>,
    pub motivo_revocacion: Option<String>,
}

impl From<&Integracion> for IntegracionDto {
    fn from(integracion: &Integracion) -> Self {
        Self {
            id: integracion.id,
            partner_id: integracion.partner_id,
            tipo: integracion.tipo.as_str().to_owned(),
            nombre: integracion.nombre.as_str().to_owned(),
            descripcion: integracion
                .descripcion
                .as_ref()
                .map(|d| d.as_str().to_owned()),
            activa: integracion.activa,
            fecha_creacion: timestamp(integracion.fecha_creacion),
            fecha_revocacion: integracion.fecha_revocacion.map(timestamp),
            motivo_revocacion: integracion
                .motivo_revocacion
                .as_ref()
                .map(|m| m.as_str().to_owned()),
        }
    }
}

/// A partner as shown. `integraciones` is present on single-partner answers, absent in lists.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct PartnerDto {
    pub id: Uuid,
    pub nombre: String,
    pub email: String,
    pub telefono: Option<String>,
    pub direccion: Option<String>,
    #[schema(example = "AFILIADO")]
    pub tipo: String,
    #[schema(example = "ACTIVO")]
    pub estado: String,
    #[schema(example = "PENDIENTE")]
    pub estado_kyc: String,
    #[schema(value_type = Option<Object>)]
    pub documentos_kyc: Option<Value>,
    /// The saga's temporary id when the partner came from an onboarding.
    pub onboarding_id: Option<Uuid>,
    pub fecha_creacion: String,
    pub fecha_actualizacion: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub integraciones: Option<Vec<IntegracionDto>>,
}

impl PartnerDto {
    /// The partner without its integrations (list items).
    pub fn summary(partner: &Partner) -> Self {
        let state = partner.state();
        Self {
            id: state.id,
            nombre: state.nombre.as_str().to_owned(),
            email: state.email.as_str().to_owned(),
            telefono: state.telefono.as_ref().map(|t| t.as_str().to_owned()),
            direccion: state.direccion.as_ref().map(|d| d.as_str().to_owned()),
            tipo: state.tipo.as_str().to_owned(),
            estado: state.estado.as_str().to_owned(),
            estado_kyc: state.estado_kyc.as_str().to_owned(),
            documentos_kyc: state.documentos_kyc.clone().map(Value::Object),
            onboarding_id: state.onboarding_id,
            fecha_creacion: timestamp(state.fecha_creacion),
            fecha_actualizacion: timestamp(state.fecha_actualizacion),
            integraciones: None,
        }
    }

    /// The partner with its integrations.
    pub fn detail(partner: &Partner) -> Self {
        Self {
            integraciones: Some(
                partner
                    .state()
                    .integraciones
                    .iter()
                    .map(IntegracionDto::from)
                    .collect(),
            ),
            ..Self::summary(partner)
        }
    }
}

/// Answer of `DELETE /api/v1/partners/{partner_id}`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct PartnerEliminadoDto {
    pub partner_id: Uuid,
}
