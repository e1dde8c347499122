//! Program (campaign) events published by campanias on `eventos-programas`: a program's
//! lifecycle and its partners' affiliations. Thin payloads: ids and the new states only.

use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::integration_event;
use crate::topics;

/// A program was created. `estado` is `BORRADOR` or `ACTIVO`; `tipo` is `AFILIADOS`,
/// `INFLUENCERS`, `ADVOCACY` or `SAAS`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ProgramaCreado {
    pub programa_id: Uuid,
    pub nombre: String,
    pub brand_id: String,
    pub tipo: String,
    pub estado: String,
}
integration_event!(ProgramaCreado, "ProgramaCreado", topics::PROGRAM_EVENTS, v 1, subject = |e| e.programa_id.to_string());

/// A program became `ACTIVO` (from `BORRADOR` or `SUSPENDIDO`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ProgramaActivado {
    pub programa_id: Uuid,
    pub nombre: String,
}
integration_event!(ProgramaActivado, "ProgramaActivado", topics::PROGRAM_EVENTS, v 1, subject = |e| e.programa_id.to_string());

/// A program became `SUSPENDIDO`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ProgramaSuspendido {
    pub programa_id: Uuid,
    pub nombre: String,
}
integration_event!(ProgramaSuspendido, "ProgramaSuspendido", topics::PROGRAM_EVENTS, v 1, subject = |e| e.programa_id.to_string());

/// A program became `CERRADO` (final).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ProgramaCerrado {
    pub programa_id: Uuid,
    pub nombre: String,
}
integration_event!(ProgramaCerrado, "ProgramaCerrado", topics::PROGRAM_EVENTS, v 1, subject = |e| e.programa_id.to_string());

/// A partner was affiliated to a program. `estado` is `ACTIVA` (the partner's onboarding is
/// complete), `PENDIENTE` (not yet) or `SUSPENDIDA` (the partner was deleted or deactivated).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AfiliacionCreada {
    pub programa_id: Uuid,
    pub afiliado_id: Uuid,
    pub estado: String,
}
integration_event!(AfiliacionCreada, "AfiliacionCreada", topics::PROGRAM_EVENTS, v 1, subject = |e| e.programa_id.to_string());

/// An affiliation changed state (`PENDIENTE`, `ACTIVA`, `SUSPENDIDA`, `BAJA`), by an operator
/// or because the partner's onboarding completed or the partner was removed upstream.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AfiliacionActualizada {
    pub programa_id: Uuid,
    pub afiliado_id: Uuid,
    pub estado_anterior: String,
    pub estado_nuevo: String,
}
integration_event!(AfiliacionActualizada, "AfiliacionActualizada", topics::PROGRAM_EVENTS, v 1, subject = |e| e.programa_id.to_string());
