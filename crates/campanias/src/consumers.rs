//! The message handler this service runs under `kernel::run_consumer` on every topic it
//! follows: partners' onboarding outcomes, contract states, deletions and deactivations. It
//! dispatches on the event type; types it does not use (other partner events share
//! `eventos-partners`) are acknowledged and ignored. Database failures are retried;
//! undecodable payloads are dead-lettered.

use std::sync::Arc;

use async_trait::async_trait;
use contracts::contratos::ContratoEstadoCambiado;
use contracts::partners::{PartnerDesactivado, PartnerEliminado};
use contracts::sagas::OnboardingEstadoCambiado;
use kernel::{Envelope, HandlerError, IntegrationEvent, MessageHandler};

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
impl MessageHandler for PartnerEventsHandler {
    async fn handle(&self, envelope: &Envelope) -> Result<(), HandlerError> {
        let event_type = envelope.event_type.as_str();
        let first = if event_type == OnboardingEstadoCambiado::TYPE {
            let event: OnboardingEstadoCambiado = envelope.decode()?;
            self.service.on_onboarding(envelope, &event).await
        } else if event_type == ContratoEstadoCambiado::TYPE {
            let event: ContratoEstadoCambiado = envelope.decode()?;
            self.service.on_contrato(envelope, &event).await
        } else if event_type == PartnerEliminado::TYPE {
            let event: PartnerEliminado = envelope.decode()?;
            self.service
                .on_partner_retirado(envelope, event.partner_id)
                .await
        } else if event_type == PartnerDesactivado::TYPE {
            let event: PartnerDesactivado = envelope.decode()?;
            self.service
                .on_partner_retirado(envelope, event.partner_id)
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
