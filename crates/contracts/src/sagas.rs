//! Events the onboarding saga publishes: the manual review it asks for, the operator's decision,
//! and the saga's outcome.

use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::integration_event;
use crate::topics;

/// Compliance rejected the contract: an operator must review it (alianzas moves the contract to
/// `en_revision`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RevisionContrato {
    pub saga_id: Uuid,
    pub contrato_id: Uuid,
    pub partner_id: Uuid,
    pub causa_rechazo: String,
    pub validacion_fallida: String,
}
integration_event!(RevisionContrato, "RevisionContrato", topics::CONTRACT_REVIEW, v 1, subject = |e| e.contrato_id.to_string());

/// The operator approved the reviewed contract: alianzas activates it, compliance registers the
/// financial account.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RevisionAprobada {
    pub saga_id: Uuid,
    pub contrato_id: Uuid,
    pub partner_id: Uuid,
    #[serde(default)]
    pub comentarios: Option<String>,
}
integration_event!(RevisionAprobada, "RevisionAprobada", topics::REVIEW_RESOLVED, v 1, subject = |e| e.contrato_id.to_string());

/// The operator rejected the reviewed contract: alianzas marks it `rechazado`; the saga
/// compensates with `DesactivarPartner`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RevisionRechazada {
    pub saga_id: Uuid,
    pub contrato_id: Uuid,
    pub partner_id: Uuid,
    #[serde(default)]
    pub comentarios: Option<String>,
}
integration_event!(RevisionRechazada, "RevisionRechazada", topics::REVIEW_RESOLVED, v 1, subject = |e| e.contrato_id.to_string());

/// The saga reached a final state or started waiting for a review. `estado` is `COMPLETADA`,
/// `FALLIDA` or `PENDIENTE_REVISION`; `causa` says why a saga failed (e.g. `TIMEOUT`,
/// `EMAIL_EXISTENTE`, `CONTRATO_NO_CREADO`, `REVISION_RECHAZADA`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct OnboardingEstadoCambiado {
    pub saga_id: Uuid,
    pub onboarding_id: Uuid,
    #[serde(default)]
    pub partner_id: Option<Uuid>,
    #[serde(default)]
    pub email: Option<String>,
    #[serde(default)]
    pub nombre: Option<String>,
    pub estado: String,
    #[serde(default)]
    pub causa: Option<String>,
}
integration_event!(OnboardingEstadoCambiado, "OnboardingEstadoCambiado", topics::ONBOARDING_EVENTS, v 1, subject = |e| e.saga_id.to_string());
