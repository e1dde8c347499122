//! Partner events and commands (integraciones is their owner or their consumer).

use serde::{Deserialize, Serialize};
use serde_json::Value;
use uuid::Uuid;

use crate::integration_event;
use crate::topics;

/// The BFF's command that starts an onboarding. `onboarding_id` is the temporary id the client
/// tracks until the real `partner_id` is known.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CreatePartner {
    pub onboarding_id: Uuid,
    /// The saga that tracks this onboarding (also the envelope's `sagaid`).
    #[serde(default)]
    pub saga_id: Option<Uuid>,
    pub nombre: String,
    pub email: String,
    #[serde(default)]
    pub telefono: Option<String>,
    #[serde(default)]
    pub direccion: Option<String>,
    #[serde(default)]
    pub tipo: Option<String>,
    /// Contract terms the applicant proposes; alianzas uses them instead of its template.
    #[serde(default)]
    pub terminos: Option<Value>,
}
integration_event!(CreatePartner, "CreatePartner", topics::CREATE_PARTNER, v 1, subject = |e| e.onboarding_id.to_string());

/// A partner was registered. `onboarding_id` links it to the saga that asked for it (absent
/// when created directly through the API).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PartnerCreado {
    pub partner_id: Uuid,
    pub nombre: String,
    pub tipo: String,
    pub email: String,
    #[serde(default)]
    pub onboarding_id: Option<Uuid>,
    #[serde(default)]
    pub terminos: Option<Value>,
}
integration_event!(PartnerCreado, "PartnerCreado", topics::PARTNER_CREATED, v 1, subject = |e| e.partner_id.to_string());

/// `CreatePartner` failed for a business reason (duplicate e-mail, invalid data).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PartnerCreationFailed {
    pub onboarding_id: Uuid,
    pub error_code: String,
    pub error_message: String,
}
integration_event!(PartnerCreationFailed, "PartnerCreationFailed", topics::PARTNER_CREATION_FAILED, v 1, subject = |e| e.onboarding_id.to_string());

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PartnerActualizado {
    pub partner_id: Uuid,
    pub nombre: String,
    pub tipo: String,
}
integration_event!(PartnerActualizado, "PartnerActualizado", topics::PARTNER_EVENTS, v 1, subject = |e| e.partner_id.to_string());

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PartnerEliminado {
    pub partner_id: Uuid,
}
integration_event!(PartnerEliminado, "PartnerEliminado", topics::PARTNER_EVENTS, v 1, subject = |e| e.partner_id.to_string());

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct KycVerificado {
    pub partner_id: Uuid,
    pub estado_kyc_anterior: String,
    pub estado_kyc_nuevo: String,
    #[serde(default)]
    pub observaciones: Option<String>,
}
integration_event!(KycVerificado, "KYCVerificado", topics::PARTNER_EVENTS, v 1, subject = |e| e.partner_id.to_string());

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct IntegracionCreada {
    pub partner_id: Uuid,
    pub integracion_id: Uuid,
    pub tipo: String,
    pub nombre: String,
}
integration_event!(IntegracionCreada, "IntegracionCreada", topics::PARTNER_EVENTS, v 1, subject = |e| e.partner_id.to_string());

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct IntegracionRevocada {
    pub partner_id: Uuid,
    pub integracion_id: Uuid,
    #[serde(default)]
    pub motivo: Option<String>,
}
integration_event!(IntegracionRevocada, "IntegracionRevocada", topics::PARTNER_EVENTS, v 1, subject = |e| e.partner_id.to_string());

/// The saga's compensation: deactivate a partner whose onboarding failed.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DesactivarPartner {
    pub partner_id: Uuid,
    #[serde(default)]
    pub motivo: Option<String>,
}
integration_event!(DesactivarPartner, "DesactivarPartner", topics::DEACTIVATE_PARTNER, v 1, subject = |e| e.partner_id.to_string());

/// The compensation is done: the partner is `INACTIVO`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PartnerDesactivado {
    pub partner_id: Uuid,
    #[serde(default)]
    pub motivo: Option<String>,
}
integration_event!(PartnerDesactivado, "PartnerDesactivado", topics::PARTNER_DEACTIVATED, v 1, subject = |e| e.partner_id.to_string());
