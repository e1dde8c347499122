//! The onboarding saga: what each accepted step does to it (new state, cause, deadline) and
//! which messages it must send, decided here without I/O. The application layer logs, stores
//! and publishes what these methods return.

use chrono::{DateTime, TimeDelta, Utc};
use uuid::Uuid;

use super::rules::{allowed, causa, EstadoSaga, Paso};

/// One onboarding saga's current state.
#[derive(Debug, Clone, PartialEq)]
pub struct Saga {
    pub saga_id: Uuid,
    /// The temporary id the BFF gave the onboarding.
    pub onboarding_id: Uuid,
    /// The real partner, once `PartnerCreado` told it.
    pub partner_id: Option<Uuid>,
    pub contrato_id: Option<Uuid>,
    pub nombre: String,
    pub email: String,
    pub estado: EstadoSaga,
    pub causa: Option<String>,
    /// The last accepted step: the rules table decides what may follow it.
    pub ultimo_paso: Paso,
    /// When the saga times out unless another step arrives; `None` while it waits for a
    /// review or once it is final.
    pub paso_deadline: Option<DateTime<Utc>>,
    pub creada_en: DateTime<Utc>,
    pub actualizada_en: DateTime<Utc>,
    /// Incremented by every change, for optimistic concurrency.
    pub version: i64,
}

/// An incoming event, reduced to what the saga needs from it.
#[derive(Debug, Clone, PartialEq)]
pub enum Hecho {
    /// A second `CreatePartner` for an existing saga (never allowed: the saga has started).
    CreatePartner,
    PartnerCreado {
        partner_id: Uuid,
    },
    PartnerCreationFailed {
        error_code: String,
    },
    ContratoCreado {
        contrato_id: Uuid,
        partner_id: Uuid,
    },
    ContratoCreadoFailed {
        partner_id: Uuid,
    },
    ContratoAprobado {
        contrato_id: Uuid,
    },
    ContratoRechazado {
        contrato_id: Uuid,
        partner_id: Uuid,
        causa_rechazo: String,
        validacion_fallida: String,
    },
    PartnerDesactivado {
        partner_id: Uuid,
    },
}

impl Hecho {
    pub fn paso(&self) -> Paso {
        match self {
            Hecho::CreatePartner => Paso::CreatePartner,
            Hecho::PartnerCreado { .. } => Paso::PartnerCreated,
            Hecho::PartnerCreationFailed { .. } => Paso::PartnerCreationFailed,
            Hecho::ContratoCreado { .. } => Paso::ContratoCreado,
            Hecho::ContratoCreadoFailed { .. } => Paso::ContratoCreadoFailed,
            Hecho::ContratoAprobado { .. } => Paso::ContratoAprobado,
            Hecho::ContratoRechazado { .. } => Paso::ContratoRechazado,
            Hecho::PartnerDesactivado { .. } => Paso::PartnerDesactivado,
        }
    }
}

/// Something the saga must do after a change, in this order. Every variant but
/// `EstadoCambiado` is also a row of the saga's log.
#[derive(Debug, Clone, PartialEq)]
pub enum Efecto {
    /// Publish `RevisionContrato` (a step: it becomes the last one).
    RevisionContrato {
        contrato_id: Uuid,
        partner_id: Uuid,
        causa_rechazo: String,
        validacion_fallida: String,
    },
    /// Publish `RevisionAprobada` (a step).
    RevisionAprobada {
        contrato_id: Uuid,
        partner_id: Uuid,
        comentarios: Option<String>,
    },
    /// Publish `RevisionRechazada` (a step).
    RevisionRechazada {
        contrato_id: Uuid,
        partner_id: Uuid,
        comentarios: Option<String>,
    },
    /// Log the saga's own deadline (a step, not published): `paso` had not been followed by
    /// `deadline`.
    SagaTimeout { paso: Paso, deadline: DateTime<Utc> },
    /// Publish the compensation `DesactivarPartner` (a command, not a step).
    DesactivarPartner { partner_id: Uuid, motivo: String },
    /// Publish `OnboardingEstadoCambiado` with the saga's new state (not logged).
    EstadoCambiado {
        estado: EstadoSaga,
        causa: Option<String>,
    },
}

/// Why an event was not accepted: it is logged `ERROR` with this text and the saga is left
/// as it was.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{motivo}")]
pub struct Rechazo {
    pub motivo: String,
}

impl Rechazo {
    fn not_after(paso: Paso, ultimo: Paso) -> Self {
        Rechazo {
            motivo: format!("{paso} is not allowed after {ultimo}"),
        }
    }
}

/// The operator's decision on a contract under review.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DecisionRevision {
    Aprobar,
    Rechazar,
}

impl DecisionRevision {
    pub fn parse(text: &str) -> Option<DecisionRevision> {
        match text {
            "aprobar" => Some(DecisionRevision::Aprobar),
            "rechazar" => Some(DecisionRevision::Rechazar),
            _ => None,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            DecisionRevision::Aprobar => "aprobar",
            DecisionRevision::Rechazar => "rechazar",
        }
    }
}

/// What resolving a review did.
#[derive(Debug, Clone, PartialEq)]
pub enum Revision {
    Resuelta(Vec<Efecto>),
    /// The saga was already resolved with this same decision: nothing to do (a retry).
    YaResuelta,
}

/// The saga is not waiting for a review (or was resolved the other way).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("the saga is {estado} after {ultimo_paso}: no review to resolve")]
pub struct TransicionInvalida {
    pub estado: EstadoSaga,
    pub ultimo_paso: Paso,
}

/// The motive a compensation carries to integraciones.
fn motivo(causa: &str) -> String {
    format!("onboarding fallido: {causa}")
}

impl Saga {
    /// A saga started by `CreatePartner`: `INICIADA`, waiting for the partner until
    /// `now + plazo`.
    pub fn start(
        saga_id: Uuid,
        onboarding_id: Uuid,
        nombre: String,
        email: String,
        now: DateTime<Utc>,
        plazo: TimeDelta,
    ) -> Saga {
        Saga {
            saga_id,
            onboarding_id,
            partner_id: None,
            contrato_id: None,
            nombre,
            email,
            estado: EstadoSaga::Iniciada,
            causa: None,
            ultimo_paso: Paso::CreatePartner,
            paso_deadline: deadline(now, plazo),
            creada_en: now,
            actualizada_en: now,
            version: 1,
        }
    }

    /// Moves to `paso` with `estado`; only `INICIADA` steps wait with a deadline.
    fn advance(&mut self, paso: Paso, estado: EstadoSaga, now: DateTime<Utc>, plazo: TimeDelta) {
        self.ultimo_paso = paso;
        self.estado = estado;
        self.paso_deadline = if estado == EstadoSaga::Iniciada {
            deadline(now, plazo)
        } else {
            None
        };
        self.touch(now);
    }

    fn touch(&mut self, now: DateTime<Utc>) {
        self.actualizada_en = now;
        self.version += 1;
    }

    fn estado_cambiado(&self) -> Efecto {
        Efecto::EstadoCambiado {
            estado: self.estado,
            causa: self.causa.clone(),
        }
    }

    /// `FALLIDA` with `causa`; the partner (if known) is compensated.
    fn fail(&mut self, paso: Paso, causa: &str, now: DateTime<Utc>) -> Vec<Efecto> {
        self.causa = Some(causa.to_owned());
        self.advance(paso, EstadoSaga::Fallida, now, TimeDelta::zero());
        let mut efectos = Vec::new();
        if let Some(partner_id) = self.partner_id {
            efectos.push(Efecto::DesactivarPartner {
                partner_id,
                motivo: motivo(causa),
            });
        }
        efectos.push(self.estado_cambiado());
        efectos
    }

    /// Applies an incoming event. `Err` means the rules forbid it after the last step: the
    /// saga is unchanged and the event is to be logged `ERROR`.
    pub fn handle(
        &mut self,
        hecho: Hecho,
        now: DateTime<Utc>,
        plazo: TimeDelta,
    ) -> Result<Vec<Efecto>, Rechazo> {
        let paso = hecho.paso();
        if !allowed(self.ultimo_paso, paso) {
            return self.late(hecho, now);
        }
        Ok(match hecho {
            Hecho::CreatePartner => return Err(Rechazo::not_after(paso, self.ultimo_paso)),
            Hecho::PartnerCreado { partner_id } => {
                self.partner_id = Some(partner_id);
                self.advance(paso, EstadoSaga::Iniciada, now, plazo);
                Vec::new()
            }
            Hecho::PartnerCreationFailed { error_code } => self.fail(paso, &error_code, now),
            Hecho::ContratoCreado {
                contrato_id,
                partner_id,
            } => {
                self.check_partner(partner_id)?;
                self.contrato_id = Some(contrato_id);
                self.advance(paso, EstadoSaga::Iniciada, now, plazo);
                Vec::new()
            }
            Hecho::ContratoCreadoFailed { partner_id } => {
                self.check_partner(partner_id)?;
                self.fail(paso, causa::CONTRATO_NO_CREADO, now)
            }
            Hecho::ContratoAprobado { contrato_id } => {
                self.check_contrato(contrato_id)?;
                self.causa = None;
                self.advance(paso, EstadoSaga::Completada, now, plazo);
                vec![self.estado_cambiado()]
            }
            Hecho::ContratoRechazado {
                contrato_id,
                partner_id,
                causa_rechazo,
                validacion_fallida,
            } => {
                self.check_contrato(contrato_id)?;
                // The rejection and the review request it causes are one change: the saga
                // never rests after `ContratoRechazado`.
                self.causa = Some(validacion_fallida.clone());
                self.advance(
                    Paso::RevisionContrato,
                    EstadoSaga::PendienteRevision,
                    now,
                    plazo,
                );
                vec![
                    Efecto::RevisionContrato {
                        contrato_id,
                        partner_id,
                        causa_rechazo,
                        validacion_fallida,
                    },
                    self.estado_cambiado(),
                ]
            }
            Hecho::PartnerDesactivado { partner_id } => {
                self.check_partner(partner_id)?;
                // The compensation is done; the saga stays as it failed.
                self.advance(paso, self.estado, now, plazo);
                Vec::new()
            }
        })
    }

    /// An event the table does not allow. One is still acted on: the partner created after
    /// the saga timed out is compensated, so no orphan active partner remains.
    fn late(&mut self, hecho: Hecho, now: DateTime<Utc>) -> Result<Vec<Efecto>, Rechazo> {
        match hecho {
            Hecho::PartnerCreado { partner_id }
                if self.ultimo_paso == Paso::SagaTimeout && self.partner_id.is_none() =>
            {
                self.partner_id = Some(partner_id);
                self.touch(now);
                Ok(vec![Efecto::DesactivarPartner {
                    partner_id,
                    motivo: motivo(causa::TIMEOUT),
                }])
            }
            other => Err(Rechazo::not_after(other.paso(), self.ultimo_paso)),
        }
    }

    fn check_partner(&self, partner_id: Uuid) -> Result<(), Rechazo> {
        match self.partner_id {
            Some(known) if known != partner_id => Err(Rechazo {
                motivo: format!("partner {partner_id} is not this saga's partner {known}"),
            }),
            _ => Ok(()),
        }
    }

    fn check_contrato(&self, contrato_id: Uuid) -> Result<(), Rechazo> {
        match self.contrato_id {
            Some(known) if known != contrato_id => Err(Rechazo {
                motivo: format!("contract {contrato_id} is not this saga's contract {known}"),
            }),
            _ => Ok(()),
        }
    }

    /// Whether the saga's deadline has passed at `now`.
    pub fn is_due(&self, now: DateTime<Utc>) -> bool {
        self.estado == EstadoSaga::Iniciada
            && allowed(self.ultimo_paso, Paso::SagaTimeout)
            && self.paso_deadline.is_some_and(|deadline| deadline < now)
    }

    /// Fires the deadline: `FALLIDA` with cause `TIMEOUT`, the partner compensated. `None`
    /// when the saga is not due (it advanced, or another replica fired it first).
    pub fn time_out(&mut self, now: DateTime<Utc>) -> Option<Vec<Efecto>> {
        if !self.is_due(now) {
            return None;
        }
        let timeout = Efecto::SagaTimeout {
            paso: self.ultimo_paso,
            deadline: self.paso_deadline?,
        };
        let mut efectos = vec![timeout];
        efectos.extend(self.fail(Paso::SagaTimeout, causa::TIMEOUT, now));
        Some(efectos)
    }

    /// The operator's decision on a saga `PENDIENTE_REVISION`. The same decision again on a
    /// saga already resolved that way is `YaResuelta`; anything else is refused.
    pub fn resolve_review(
        &mut self,
        decision: DecisionRevision,
        comentarios: Option<String>,
        now: DateTime<Utc>,
    ) -> Result<Revision, TransicionInvalida> {
        let refused = TransicionInvalida {
            estado: self.estado,
            ultimo_paso: self.ultimo_paso,
        };
        if self.resolved_as(decision) {
            return Ok(Revision::YaResuelta);
        }
        let paso = match decision {
            DecisionRevision::Aprobar => Paso::RevisionAprobada,
            DecisionRevision::Rechazar => Paso::RevisionRechazada,
        };
        if self.estado != EstadoSaga::PendienteRevision || !allowed(self.ultimo_paso, paso) {
            return Err(refused);
        }
        let (Some(contrato_id), Some(partner_id)) = (self.contrato_id, self.partner_id) else {
            return Err(refused);
        };
        Ok(Revision::Resuelta(match decision {
            DecisionRevision::Aprobar => {
                self.causa = None;
                self.advance(paso, EstadoSaga::Completada, now, TimeDelta::zero());
                vec![
                    Efecto::RevisionAprobada {
                        contrato_id,
                        partner_id,
                        comentarios,
                    },
                    self.estado_cambiado(),
                ]
            }
            DecisionRevision::Rechazar => {
                let mut efectos = vec![Efecto::RevisionRechazada {
                    contrato_id,
                    partner_id,
                    comentarios,
                }];
                efectos.extend(self.fail(paso, causa::REVISION_RECHAZADA, now));
                efectos
            }
        }))
    }

    fn resolved_as(&self, decision: DecisionRevision) -> bool {
        match decision {
            DecisionRevision::Aprobar => self.ultimo_paso == Paso::RevisionAprobada,
            DecisionRevision::Rechazar => {
                self.estado == EstadoSaga::Fallida
                    && self.causa.as_deref() == Some(causa::REVISION_RECHAZADA)
            }
        }
    }
}

fn deadline(now: DateTime<Utc>, plazo: TimeDelta) -> Option<DateTime<Utc>> {
    now.checked_add_signed(plazo)
}

/// Converts a configured duration; an absurdly long one means "practically never".
pub fn plazo(duration: std::time::Duration) -> TimeDelta {
    TimeDelta::from_std(duration).unwrap_or(TimeDelta::MAX)
}
