//! Compliance outcomes: exactly one per `ContratoCreado`.

use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::integration_event;
use crate::topics;

/// Every rule passed; the partner's financial account exists.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ContratoAprobado {
    pub contrato_id: Uuid,
    pub partner_id: Uuid,
    #[serde(default)]
    pub onboarding_id: Option<Uuid>,
    pub validaciones_pasadas: Vec<String>,
}
integration_event!(ContratoAprobado, "ContratoAprobado", topics::CONTRACT_APPROVED, v 1, subject = |e| e.contrato_id.to_string());

/// A rule failed. `validacion_fallida` is `MONTO_INVALIDO`, `MONEDA_NO_PERMITIDA`,
/// `PARTNER_INVALIDO` or `ESTADO_INVALIDO`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ContratoRechazado {
    pub contrato_id: Uuid,
    pub partner_id: Uuid,
    #[serde(default)]
    pub onboarding_id: Option<Uuid>,
    pub causa_rechazo: String,
    pub validacion_fallida: String,
}
integration_event!(ContratoRechazado, "ContratoRechazado", topics::CONTRACT_REJECTED, v 1, subject = |e| e.contrato_id.to_string());
