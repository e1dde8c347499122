//! The message handler this service runs under `kernel::run_consumer` on every topic it
//! follows: partners' onboarding outcomes, contract states, deletions and deactivations. It
//! dispatches on the event type; types it does not use (other partner events share
//! `eventos-partners`) are acknowledged and ignored. Database failures are retried;
//! undecodable payloads are dead-lettered.
//!
//! The handler writes into the transaction `storage::Transactional` gives it, so a batch of
//! events is one commit. Notifications are only stored (as rows, in that transaction); the
//! delivery worker sends them, woken by `Transactional` once the transaction committed, so
//! nothing leaves before the state that caused it is durable.

use std::sync::Arc;

use ::storage::{Tx, TxHandler};
use async_trait::async_trait;
use contracts::contratos::ContratoEstadoCambiado;
use contracts::partners::{PartnerDesactivado, PartnerEliminado};
use contracts::sagas::OnboardingEstadoCambiado;
use kernel::{Envelope, HandlerError, IntegrationEvent};

use crate::application::{AppError, Service};

fn handler_error(error: AppError) -> HandlerError {
    // Business outcomes never fail here; what reaches this point is a database or contention
    // problem, which a retry may get past.
    HandlerError::Transient(error.to_string())
}

/// Consumes `eventos-onboarding`, `eventos-contratos`, `eventos-partners` and
/// `partner-desactivado` for the group `campanias`.
pub struct PartnerEventsHandler {
    service: Arc<Service>,
}

impl PartnerEventsHandler {
    pub fn new(service: Arc<Service>) -> Self {
        Self { service }
    }
}

#[async_trait]
impl TxHandler for PartnerEventsHandler {
    async fn apply(&self, tx: &mut Tx, envelope: &Envelope) -> Result<(), HandlerError> {
        let event_type = envelope.event_type.as_str();
        let first = if event_type == OnboardingEstadoCambiado::TYPE {
            let event: OnboardingEstadoCambiado = envelope.decode()?;
            self.service.on_onboarding_in(tx, envelope, &event).await
        } else if event_type == ContratoEstadoCambiado::TYPE {
            let event: ContratoEstadoCambiado = envelope.decode()?;
            self.service.on_contrato_in(tx, envelope, &event).await
        } else if event_type == PartnerEliminado::TYPE {
            let event: PartnerEliminado = envelope.decode()?;
            self.service
                .on_partner_retirado_in(tx, envelope, event.partner_id)
                .await
        } else if event_type == PartnerDesactivado::TYPE {
            let event: PartnerDesactivado = envelope.decode()?;
            self.service
                .on_partner_retirado_in(tx, envelope, event.partner_id)
                .await
        } else {
            tracing::trace!(id = %envelope.id, event_type, "event not used by campanias");
            return Ok(());
        };
        let first = first.map_err(handler_error)?;
        tracing::debug!(id = %envelope.id, event_type, first, "event handled");
        Ok(())
    }
}
