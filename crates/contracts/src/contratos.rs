//! Contract events published by alianzas, and the terms a contract carries.

use kernel::Amount;
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::integration_event;
use crate::topics;

/// A contract was created (for a new partner, or by hand). `onboarding_id` is present when the
/// onboarding saga caused it. `estado` is its state at creation (`pendiente`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ContratoCreado {
    pub contrato_id: Uuid,
    pub partner_id: Uuid,
    #[serde(default)]
    pub onboarding_id: Option<Uuid>,
    /// `CPA`, `CPL`, `CPC`, `revshare` or `fijo`.
    pub tipo: String,
    pub monto: Amount,
    /// ISO 4217.
    pub moneda: String,
    #[serde(default)]
    pub condiciones: Option<String>,
    /// `YYYY-MM-DD`.
    pub fecha_inicio: String,
    #[serde(default)]
    pub fecha_fin: Option<String>,
    pub estado: String,
}
integration_event!(ContratoCreado, "ContratoCreado", topics::CONTRACT_CREATED, v 1, subject = |e| e.contrato_id.to_string());

/// alianzas could not create the partner's contract (e.g. the proposed terms are unusable).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ContratoCreadoFailed {
    pub partner_id: Uuid,
    #[serde(default)]
    pub onboarding_id: Option<Uuid>,
    pub error_code: String,
    pub error_message: String,
}
integration_event!(ContratoCreadoFailed, "ContratoCreadoFailed", topics::CONTRACT_CREATION_FAILED, v 1, subject = |e| e.partner_id.to_string());

/// A contract changed state after creation (`activo`, `en_revision`, `suspendido`, `cancelado`,
/// `rechazado`, `vencido`, …); `evento` is the contract event that caused it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ContratoEstadoCambiado {
    pub contrato_id: Uuid,
    pub partner_id: Uuid,
    pub evento: String,
    pub estado_anterior: String,
    pub estado_nuevo: String,
    #[serde(default)]
    pub motivo: Option<String>,
}
integration_event!(ContratoEstadoCambiado, "ContratoEstadoCambiado", topics::CONTRACT_EVENTS, v 1, subject = |e| e.contrato_id.to_string());
