//! The message handler this service runs under `kernel::run_consumer` for every topic of the
//! onboarding: it decodes each event, reduces it to a domain `Hecho` with the ids that may name
//! its saga, and hands it to the service. A saga or cause that has not arrived yet is retried
//! (`Early`), an undecodable payload is dead-lettered (`Poison`). The handler writes into the
//! transaction `storage::Transactional` gives it, so a batch of events is one commit and an
//! event sees the writes of those before it in its batch (its saga, its logged cause).

use std::sync::Arc;

use ::storage::{Tx, TxHandler};
use async_trait::async_trait;
use contracts::compliance::{ContratoAprobado, ContratoRechazado};
use contracts::contratos::{ContratoCreado, ContratoCreadoFailed};
use contracts::partners::{
    CreatePartner, PartnerCreado, PartnerCreationFailed, PartnerDesactivado,
};
use kernel::{Envelope, HandlerError, IntegrationEvent};

use crate::application::{AppError, Claves, Outcome, Service};
use crate::domain::Hecho;

/// The topics the saga consumes.
pub const TOPICS: [&str; 8] = [
    contracts::topics::CREATE_PARTNER,
    contracts::topics::PARTNER_CREATED,
    contracts::topics::PARTNER_CREATION_FAILED,
    contracts::topics::CONTRACT_CREATED,
    contracts::topics::CONTRACT_CREATION_FAILED,
    contracts::topics::CONTRACT_APPROVED,
    contracts::topics::CONTRACT_REJECTED,
    contracts::topics::PARTNER_DEACTIVATED,
];

fn handler_error(error: AppError) -> HandlerError {
    // Every error that reaches here is worth retrying: an event that arrived before its saga or
    // its cause, a database or contention problem. Refused events were logged, not raised.
    match error {
        AppError::NotYetKnown(_) => HandlerError::Early(error.to_string()),
        other => HandlerError::Transient(other.to_string()),
    }
}

/// Consumes every onboarding event the saga follows.
pub struct SagaHandler {
    service: Arc<Service>,
}

impl SagaHandler {
    pub fn new(service: Arc<Service>) -> Self {
        Self { service }
    }

    /// Handles one envelope in a transaction of its own and says what it led to (the consumers
    /// run [`TxHandler::apply`], which drops the outcome).
    pub async fn dispatch(&self, envelope: &Envelope) -> Result<Outcome, HandlerError> {
        let mut tx = self
            .service
            .db()
            .begin()
            .await
            .map_err(::storage::consume::transient)?;
        // On an error `tx` is dropped, which rolls it back.
        let outcome = self.dispatch_in(&mut tx, envelope).await?;
        self.service.commit(tx).await.map_err(handler_error)?;
        Ok(outcome)
    }

    /// Handles one envelope inside `tx`, which the caller commits (or rolls back on an error).
    pub async fn dispatch_in(
        &self,
        tx: &mut Tx,
        envelope: &Envelope,
    ) -> Result<Outcome, HandlerError> {
        let service = &self.service;
        let (hecho, claves) = match envelope.event_type.as_str() {
            CreatePartner::TYPE => {
                let command: CreatePartner = envelope.decode()?;
                return service
                    .start_saga_in(tx, envelope, command)
                    .await
                    .map_err(handler_error);
            }
            PartnerCreado::TYPE => {
                let event: PartnerCreado = envelope.decode()?;
                (
                    Hecho::PartnerCreado {
                        partner_id: event.partner_id,
                    },
                    Claves {
                        onboarding_id: event.onboarding_id,
                        ..Claves::default()
                    },
                )
            }
            PartnerCreationFailed::TYPE => {
                let event: PartnerCreationFailed = envelope.decode()?;
                (
                    Hecho::PartnerCreationFailed {
                        error_code: event.error_code,
                    },
                    Claves {
                        onboarding_id: Some(event.onboarding_id),
                        ..Claves::default()
                    },
                )
            }
            ContratoCreado::TYPE => {
                let event: ContratoCreado = envelope.decode()?;
                // Without an onboarding the contract was made by hand, not by the saga.
                (
                    Hecho::ContratoCreado {
                        contrato_id: event.contrato_id,
                        partner_id: event.partner_id,
                    },
                    Claves {
                        onboarding_id: event.onboarding_id,
                        ..Claves::default()
                    },
                )
            }
            ContratoCreadoFailed::TYPE => {
                let event: ContratoCreadoFailed = envelope.decode()?;
                (
                    Hecho::ContratoCreadoFailed {
                        partner_id: event.partner_id,
                    },
                    Claves {
                        onboarding_id: event.onboarding_id,
                        partner_id: Some(event.partner_id),
                        contrato_id: None,
                    },
                )
            }
            ContratoAprobado::TYPE => {
                let event: ContratoAprobado = envelope.decode()?;
                (
                    Hecho::ContratoAprobado {
                        contrato_id: event.contrato_id,
                    },
                    Claves {
                        onboarding_id: event.onboarding_id,
                        partner_id: None,
                        contrato_id: Some(event.contrato_id),
                    },
                )
            }
            ContratoRechazado::TYPE => {
                let event: ContratoRechazado = envelope.decode()?;
                (
                    Hecho::ContratoRechazado {
                        contrato_id: event.contrato_id,
                        partner_id: event.partner_id,
                        causa_rechazo: event.causa_rechazo,
                        validacion_fallida: event.validacion_fallida,
                    },
                    Claves {
                        onboarding_id: event.onboarding_id,
                        partner_id: None,
                        contrato_id: Some(event.contrato_id),
                    },
                )
            }
            PartnerDesactivado::TYPE => {
                let event: PartnerDesactivado = envelope.decode()?;
                (
                    Hecho::PartnerDesactivado {
                        partner_id: event.partner_id,
                    },
                    Claves {
                        partner_id: Some(event.partner_id),
                        ..Claves::default()
                    },
                )
            }
            _ => return Ok(Outcome::Ignored),
        };
        service
            .handle_event_in(tx, envelope, hecho, claves)
            .await
            .map_err(handler_error)
    }
}

#[async_trait]
impl TxHandler for SagaHandler {
    async fn apply(&self, tx: &mut Tx, envelope: &Envelope) -> Result<(), HandlerError> {
        let outcome = self.dispatch_in(tx, envelope).await?;
        tracing::debug!(id = %envelope.id, event_type = %envelope.event_type, ?outcome, "saga event handled");
        Ok(())
    }

    async fn prepare(&self, tx: &mut Tx, envelopes: &[&Envelope]) -> Result<(), HandlerError> {
        self.service
            .prepare_batch(tx, envelopes)
            .await
            .map_err(handler_error)
    }

    async fn finish(&self, tx: &mut Tx) -> Result<(), HandlerError> {
        self.service.finish_batch(tx).await.map_err(handler_error)
    }
}
