//! Wire shapes of the BFF's own endpoints. The onboarding form holds raw JSON per field, so
//! that a field of the wrong type is reported against its name like any other invalid value,
//! and converts once into the domain's `SolicitudPartner`.

use serde::{Deserialize, Serialize};
use serde_json::Value;
use utoipa::ToSchema;
use uuid::Uuid;

use crate::domain::{RawSolicitud, SolicitudPartner};
use crate::http::error::ApiError;

/// Body of `POST /api/v1/partners`: the onboarding form.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct CrearPartnerRequest {
    /// 1 to 255 characters, trimmed.
    #[schema(value_type = String, example = "Ana Pérez")]
    pub nombre: Option<Value>,
    /// A valid e-mail address.
    #[schema(value_type = String, example = "ana@example.com")]
    pub email: Option<Value>,
    /// At most 50 characters.
    #[schema(value_type = Option<String>)]
    pub telefono: Option<Value>,
    /// At most 500 characters.
    #[schema(value_type = Option<String>)]
    pub direccion: Option<Value>,
    /// `AFILIADO` (default), `INFLUENCER`, `EMBAJADOR` or `CORPORATIVO`.
    #[schema(value_type = Option<String>, example = "INFLUENCER")]
    pub tipo: Option<Value>,
    /// Proposed contract terms (`tipo`, `monto`, `moneda`, `condiciones`, `fecha_inicio`,
    /// `fecha_fin`), merged by alianzas over its template; `monto` is a number or a decimal
    /// string with at most two places.
    #[schema(value_type = Option<Object>, example = json!({"monto": 60000}))]
    pub terminos: Option<Value>,
}

impl CrearPartnerRequest {
    pub fn parse(&self) -> Result<SolicitudPartner, ApiError> {
        SolicitudPartner::parse(RawSolicitud {
            nombre: self.nombre.as_ref(),
            email: self.email.as_ref(),
            telefono: self.telefono.as_ref(),
            direccion: self.direccion.as_ref(),
            tipo: self.tipo.as_ref(),
            terminos: self.terminos.as_ref(),
        })
        .map_err(ApiError::Invalid)
    }
}

/// The answer to `POST /api/v1/partners`: the onboarding started; follow `status_url`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct OnboardingIniciado {
    /// The temporary id to track until the real `partner_id` is known.
    pub onboarding_id: Uuid,
    pub saga_id: Uuid,
    #[schema(example = "INICIADA")]
    pub estado: String,
    #[schema(example = "/api/v1/onboarding/0190f5d2-7a3e-7c4b-9f00-1b2c3d4e5f60")]
    pub status_url: String,
}
