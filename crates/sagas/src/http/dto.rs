//! Wire shapes of the `/sagas` API. Requests hold raw strings so that an unknown decision or
//! state is reported per field and converted once into domain types; responses are built by
//! hand from the stored saga (the domain never derives Serialize).

use kernel::Payload;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use uuid::Uuid;
use web::pagination::PageRequest;
use web::{FieldError, PageParams};

use crate::domain::{DecisionRevision, EstadoSaga};
use crate::http::error::ApiError;
use crate::storage::{LogEntry, SagaFilter, StoredSaga};

/// The longest review comment accepted.
pub const MAX_COMENTARIOS: usize = 2000;

pub use web::dto::timestamp;

/// A saga's state.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct SagaDto {
    pub saga_id: Uuid,
    pub onboarding_id: Uuid,
    pub partner_id: Option<Uuid>,
    pub contrato_id: Option<Uuid>,
    pub nombre: String,
    pub email: String,
    /// `INICIADA`, `COMPLETADA`, `FALLIDA` or `PENDIENTE_REVISION`.
    #[schema(example = "INICIADA")]
    pub estado: String,
    /// Why it failed or awaits review (e.g. `EMAIL_EXISTENTE`, `CONTRATO_NO_CREADO`,
    /// `REVISION_RECHAZADA`, `TIMEOUT`, or the failed compliance rule).
    pub causa: Option<String>,
    /// The last step the saga accepted (e.g. `PartnerCreado`).
    pub ultimo_paso: String,
    /// When it times out unless its next step arrives; null while awaiting a review or once final.
    pub paso_deadline: Option<String>,
    pub creada_en: String,
    pub actualizada_en: String,
    pub version: i64,
}

impl SagaDto {
    pub fn from_stored(stored: &StoredSaga) -> Self {
        let saga = &stored.saga;
        Self {
            saga_id: saga.saga_id,
            onboarding_id: saga.onboarding_id,
            partner_id: saga.partner_id,
            contrato_id: saga.contrato_id,
            nombre: saga.nombre.clone(),
            email: saga.email.clone(),
            estado: saga.estado.as_str().to_owned(),
            causa: saga.causa.clone(),
            ultimo_paso: saga.ultimo_paso.as_str().to_owned(),
            paso_deadline: saga.paso_deadline.map(timestamp),
            creada_en: timestamp(saga.creada_en),
            actualizada_en: timestamp(saga.actualizada_en),
            version: saga.version,
        }
    }
}

/// One row of a saga's log.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct SagaEventoDto {
    pub saga_evento_id: Uuid,
    pub event_id: Uuid,
    /// The message type, e.g. `PartnerCreado`, `RevisionContrato`, `SagaTimeout`.
    pub tipo_evento: String,
    /// `RECIBIDO`, `PROCESADO` or `ERROR`.
    pub estado_procesamiento: String,
    /// Why an `ERROR` row was refused.
    pub error: Option<String>,
    pub recibido_en: String,
    pub procesado_en: Option<String>,
    /// The message's full payload.
    #[schema(value_type = Object)]
    pub evento_data: Payload,
    pub partner_id: Option<Uuid>,
    pub onboarding_id: Option<Uuid>,
}

impl SagaEventoDto {
    pub fn from_entry(entry: &LogEntry) -> Self {
        Self {
            saga_evento_id: entry.saga_evento_id,
            event_id: entry.event_id,
            tipo_evento: entry.tipo_evento.clone(),
            estado_procesamiento: entry.estado_procesamiento.as_str().to_owned(),
            error: entry.error.clone(),
            recibido_en: timestamp(entry.recibido_en),
            procesado_en: entry.procesado_en.map(timestamp),
            evento_data: entry.evento_data.clone(),
            partner_id: entry.partner_id,
            onboarding_id: entry.onboarding_id,
        }
    }
}

/// A saga's state and its log, oldest row first.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct SagaDetalleDto {
    #[serde(flatten)]
    pub saga: SagaDto,
    pub eventos: Vec<SagaEventoDto>,
}

impl SagaDetalleDto {
    pub fn new(stored: &StoredSaga, log: &[LogEntry]) -> Self {
        Self {
            saga: SagaDto::from_stored(stored),
            eventos: log.iter().map(SagaEventoDto::from_entry).collect(),
        }
    }
}

/// Body of `POST /sagas/{saga_id}/revision`.
#[derive(Debug, Clone, Default, Deserialize, ToSchema)]
pub struct RevisionRequest {
    /// `aprobar` or `rechazar`.
    #[schema(example = "aprobar")]
    pub decision: Option<String>,
    /// At most 2000 characters; passed on with the decision.
    pub comentarios: Option<String>,
}

impl RevisionRequest {
    pub fn parse(&self) -> Result<(DecisionRevision, Option<String>), ApiError> {
        let mut errores = Vec::new();
        let decision = match self.decision.as_deref().map(str::trim) {
            None | Some("") => {
                errores.push(FieldError::new(
                    "decision",
                    "is required: aprobar or rechazar",
                ));
                None
            }
            Some(raw) => {
                let parsed = DecisionRevision::parse(raw);
                if parsed.is_none() {
                    errores.push(FieldError::new(
                        "decision",
                        format!("{raw:?} is not aprobar or rechazar"),
                    ));
                }
                parsed
            }
        };
        let comentarios = self
            .comentarios
            .as_deref()
            .map(str::trim)
            .filter(|c| !c.is_empty())
            .map(str::to_owned);
        if comentarios
            .as_ref()
            .is_some_and(|c| c.chars().count() > MAX_COMENTARIOS)
        {
            errores.push(FieldError::new(
                "comentarios",
                format!("must be at most {MAX_COMENTARIOS} characters"),
            ));
        }
        match decision {
            Some(decision) if errores.is_empty() => Ok((decision, comentarios)),
            _ => Err(ApiError::invalid(errores)),
        }
    }
}

/// Query of `GET /sagas`.
#[derive(Debug, Clone, Default, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ListarSagasParams {
    /// `INICIADA`, `COMPLETADA`, `FALLIDA` or `PENDIENTE_REVISION`.
    pub estado: Option<String>,
    pub partner_id: Option<String>,
    pub onboarding_id: Option<String>,
    /// Items per page, 1 to 500 (default 50).
    pub limit: Option<i64>,
    /// The `next_cursor` of the previous page.
    pub cursor: Option<String>,
}

fn uuid_field(campo: &str, raw: Option<&str>, errores: &mut Vec<FieldError>) -> Option<Uuid> {
    let raw = raw.map(str::trim).filter(|r| !r.is_empty())?;
    match Uuid::parse_str(raw) {
        Ok(id) => Some(id),
        Err(_) => {
            errores.push(FieldError::new(campo, "must be a UUID"));
            None
        }
    }
}

impl ListarSagasParams {
    pub fn parse(&self) -> Result<(SagaFilter, PageRequest), ApiError> {
        let mut errores = Vec::new();
        let estado = match self
            .estado
            .as_deref()
            .map(str::trim)
            .filter(|e| !e.is_empty())
        {
            None => None,
            Some(raw) => {
                let parsed = EstadoSaga::parse(raw);
                if parsed.is_none() {
                    errores.push(FieldError::new(
                        "estado",
                        "must be INICIADA, COMPLETADA, FALLIDA or PENDIENTE_REVISION",
                    ));
                }
                parsed
            }
        };
        let partner_id = uuid_field("partner_id", self.partner_id.as_deref(), &mut errores);
        let onboarding_id =
            uuid_field("onboarding_id", self.onboarding_id.as_deref(), &mut errores);
        let page = PageParams {
            limit: self.limit,
            cursor: self.cursor.clone(),
        }
        .parse_along(errores)?;
        Ok((
            SagaFilter {
                estado,
                partner_id,
                onboarding_id,
            },
            page,
        ))
    }
}
